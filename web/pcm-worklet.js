'use strict';
// Runs on the browser's audio thread. Turns the microphone's float blocks (128 frames each) into 16-bit PCM
// chunks of a fixed length and reports the input level often enough to drive a meter. Posting every
// 128-frame block to the page would mean ~125 messages a second; a chunk of ~250 ms is what the page, an
// upload or a live stream wants.

class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.chunkFrames = Math.max(128, opts.chunkFrames | 0);
    this.levelFrames = Math.max(128, opts.levelFrames | 0);
    this.buffer = new Int16Array(this.chunkFrames);
    this.filled = 0;
    this.peak = 0;
    this.sumSquares = 0;
    this.levelCount = 0;
    this.port.onmessage = (event) => {
      if (event.data === 'flush') {
        this.postChunk();
        this.port.postMessage({ type: 'flushed' });
      }
    };
  }

  postChunk() {
    if (this.filled === 0) return;
    const chunk = this.buffer.slice(0, this.filled);
    this.port.postMessage({ type: 'chunk', pcm: chunk }, [chunk.buffer]);
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true; // no input yet: keep the node alive
    const frames = channels[0].length;
    for (let i = 0; i < frames; i++) {
      let x = 0;
      for (let c = 0; c < channels.length; c++) x += channels[c][i];
      x /= channels.length; // a stereo microphone is mixed down to mono
      const clipped = x < -1 ? -1 : x > 1 ? 1 : x;
      this.buffer[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
      if (this.filled === this.chunkFrames) this.postChunk();
      const a = Math.abs(clipped);
      if (a > this.peak) this.peak = a;
      this.sumSquares += clipped * clipped;
      if (++this.levelCount === this.levelFrames) {
        const rms = Math.sqrt(this.sumSquares / this.levelCount);
        this.port.postMessage({ type: 'level', peak: this.peak, rms });
        this.peak = 0;
        this.sumSquares = 0;
        this.levelCount = 0;
      }
    }
    return true;
  }
}

registerProcessor('pcm-capture', PcmCapture);
