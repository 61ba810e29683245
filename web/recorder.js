'use strict';
// Microphone capture as 16-bit PCM, through an AudioWorklet (MediaRecorder only gives compressed webm/ogg).
//
//   const rec = new PcmRecorder({ onLevel: (peak, rms) => … });
//   await rec.start((pcm, sampleRate) => …);   // pcm: Int16Array of ~chunkMs, mono; throws MicrophoneError
//   await rec.stop();                           // delivers the last partial chunk, then frees the microphone
//
// Chunks come at 16 kHz where the browser can resample the microphone itself (Chromium, Firefox), else at
// the device's rate; `sampleRate` says which, and the server accepts 8–48 kHz either way.

const WANTED_RATE = 16000;

/** Why the microphone could not be used; `kind` is one of denied, absent, busy, insecure, unsupported. */
export class MicrophoneError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'MicrophoneError';
    this.kind = kind;
  }
}

/** A plain sentence for a getUserMedia failure, so the page never shows a bare DOMException name. */
export function microphoneProblem(error) {
  if (error instanceof MicrophoneError) return error;
  switch (error && error.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return new MicrophoneError('denied', 'Microphone access was denied. Allow the microphone for this ' +
        'site in the browser (the icon at the left of the address bar) and press Record again.');
    case 'NotFoundError':
    case 'OverconstrainedError':
      return new MicrophoneError('absent', 'No microphone was found. Plug one in (or enable it in the ' +
        'system settings) and press Record again, or upload a .wav instead.');
    case 'NotReadableError':
    case 'AbortError':
      return new MicrophoneError('busy', 'The microphone could not be opened: another application may be ' +
        'using it. Close that application and press Record again.');
    default:
      return new MicrophoneError('unsupported', `The microphone could not be started: ${error}`);
  }
}

function requireMediaDevices() {
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) return;
  if (!window.isSecureContext) {
    throw new MicrophoneError('insecure', 'Browsers only allow the microphone on https:// pages or on this ' +
      `computer itself (http://127.0.0.1 or http://localhost); this page is ${location.origin}. ` +
      'Upload a .wav instead, or open the page through https.');
  }
  throw new MicrophoneError('unsupported', 'This browser cannot record audio; upload a .wav instead.');
}

function newContext(rate) {
  try {
    return rate ? new AudioContext({ sampleRate: rate }) : new AudioContext();
  } catch (error) {
    if (rate) return new AudioContext();
    throw error;
  }
}

export class PcmRecorder {
  /**
   * @param {object} options
   * @param {number} [options.chunkMs=250] length of each chunk handed to onChunk
   * @param {(peak: number, rms: number) => void} [options.onLevel] input level, 0..1, about 20 times a second
   * @param {() => void} [options.onEnded] the microphone went away while recording (unplugged, revoked)
   */
  constructor({ chunkMs = 250, onLevel = null, onEnded = null } = {}) {
    this.chunkMs = chunkMs;
    this.onLevel = onLevel;
    this.onEnded = onEnded;
    this.frames = 0;
    this.context = null;
  }

  get sampleRate() { return this.context ? this.context.sampleRate : 0; }
  get recording() { return this.context !== null; }

  /** Ask for the microphone and start calling onChunk(Int16Array, sampleRate). Throws MicrophoneError. */
  async start(onChunk) {
    if (this.context) throw new Error('already recording');
    requireMediaDevices();
    this.frames = 0;
    // Created before the permission prompt, while the click still counts as a user gesture (autoplay rules).
    let context = newContext(WANTED_RATE);
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (error) {
      context.close();
      throw microphoneProblem(error);
    }
    try {
      let source;
      try {
        source = context.createMediaStreamSource(stream);
      } catch (error) { // some browsers cannot resample a microphone: record at its own rate
        context.close();
        context = newContext(0);
        source = context.createMediaStreamSource(stream);
      }
      await context.audioWorklet.addModule(new URL('./pcm-worklet.js', import.meta.url));
      const rate = context.sampleRate;
      const node = new AudioWorkletNode(context, 'pcm-capture', {
        numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
        processorOptions: {
          chunkFrames: Math.round((rate * this.chunkMs) / 1000),
          levelFrames: Math.round(rate / 20),
        },
      });
      node.port.onmessage = ({ data }) => {
        if (data.type === 'chunk') {
          this.frames += data.pcm.length;
          onChunk(data.pcm, rate);
        } else if (data.type === 'level' && this.onLevel) {
          this.onLevel(data.peak, data.rms);
        } else if (data.type === 'flushed' && this.flushed) {
          this.flushed();
        }
      };
      source.connect(node);
      node.connect(context.destination); // the node writes silence; being connected keeps it running
      for (const track of stream.getAudioTracks()) {
        track.addEventListener('ended', () => { if (this.context && this.onEnded) this.onEnded(); });
      }
      await context.resume();
      Object.assign(this, { context, stream, source, node });
    } catch (error) {
      stream.getTracks().forEach((t) => t.stop());
      context.close();
      throw microphoneProblem(error);
    }
  }

  /** Stop recording: the last partial chunk is delivered before this resolves; the microphone is released. */
  async stop() {
    if (!this.context) return;
    const { context, stream, source, node } = this;
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 1000); // a suspended context never answers; do not hang on it
      this.flushed = () => { clearTimeout(timer); resolve(); };
      node.port.postMessage('flush');
    });
    this.flushed = null;
    source.disconnect();
    node.disconnect();
    node.port.onmessage = null;
    stream.getTracks().forEach((t) => t.stop());
    this.context = null;
    await context.close();
  }
}
