'use strict';
// Getting a recording in: record from the microphone (level meter, elapsed time) or choose/drop an audio or
// video file (checked by its first bytes before any of it is sent).
// A recording is streamed to the server while it is made (live mode, live.js) and shown as a job from its
// first chunk; if live mode cannot start, it is uploaded at Stop like a chosen file, with a progress bar.

import { clock } from './format.js';
import { sniffFile } from './sniff.js';
import { LiveStream } from './live.js';
import { PcmRecorder, microphoneProblem } from './recorder.js';
import { uploadRecording } from './upload.js';
import { encodeWav } from './wav.js';

const $ = (id) => document.getElementById(id);
const MIN_RECORDING_S = 0.5;

/** Why Record cannot work on this page, and how to fix it, when the browser will not give it the microphone. */
export function insecureReason(location = window.location) {
  const https = `https://${location.hostname}${location.port ? `:${location.port}` : ''}/`;
  return 'Recording needs a secure page: browsers give the microphone only to https:// pages or to pages ' +
    `opened on the server's own machine. Start the server with --self-signed (or --certfile and --keyfile) and ` +
    `open ${https} instead. Uploading a file works here.`;
}

export class Intake {
  /**
   * @param {object} hooks
   * @param {(id: string, opts?: {recording: boolean}) => void} hooks.onJob a job was created: show it
   *   (`recording`: it is the live recording in progress, so the focus stays on the Stop button)
   * @param {(text: string) => void} hooks.announce say a change out loud (aria-live)
   * @param {object} hooks.socket the page's Socket.IO connection (live mode streams through it)
   */
  constructor({ onJob, announce, socket }) {
    this.onJob = onJob;
    this.announce = announce;
    this.socket = socket;
    this.busy = false;
    this.switching = false; // the microphone is being opened or closed: Record/Stop presses wait
    this.awaited = null; // {job, seconds}: a finished live recording whose last words are being transcribed
    this.chunks = [];
    this.live = null; // the LiveStream of the recording in progress; null when it will be uploaded instead
    this.frames = 0;
    this.rate = 0;
    this.recorder = new PcmRecorder({
      onLevel: (peak) => this.showLevel(peak),
      onEnded: () => this.stopRecording('The microphone went away; what was recorded is being sent.'),
    });
    // Over plain http from another machine the browser has no microphone to give: say so before any click.
    this.insecure = !window.isSecureContext;
    if (this.insecure) {
      $('record-panel').dataset.mic = 'insecure';
      this.recordMessage(insecureReason(), true);
      $('record').disabled = true;
    }
    $('record').addEventListener('click', () => this.toggleRecording());
    $('file').addEventListener('change', () => {
      const file = $('file').files[0];
      $('file').value = ''; // so choosing the same file again still counts as a change
      if (file) this.send(file, file.name);
    });
    this.acceptDrops($('drop-zone'));
  }

  acceptDrops(zone) {
    // A file dropped anywhere else would make the browser navigate away to it.
    for (const type of ['dragover', 'drop']) window.addEventListener(type, (e) => e.preventDefault());
    zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('dragging'); });
    zone.addEventListener('dragleave', (e) => {
      if (!zone.contains(e.relatedTarget)) zone.classList.remove('dragging');
    });
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      zone.classList.remove('dragging');
      const file = e.dataTransfer && e.dataTransfer.files[0];
      if (file) this.send(file, file.name);
    });
  }

  setBusy(busy) {
    this.busy = busy;
    $('file').disabled = busy;
    // Never `disabled` while the button has the focus for a recording: the focus would fall to the page's
    // body and the keyboard could not reach Stop. A button that waits says so with aria-disabled.
    $('record').disabled = this.insecure || (busy && !this.recorder.recording && !this.switching);
    $('drop-zone').classList.toggle('disabled', busy);
  }

  /** The microphone is being opened or closed: the button keeps its focus and ignores presses meanwhile. */
  setSwitching(switching) {
    this.switching = switching;
    $('record').setAttribute('aria-disabled', String(switching));
    $('record').classList.toggle('waiting', switching);
  }

  recordMessage(text, problem = false) {
    const msg = $('record-message');
    msg.textContent = text;
    msg.classList.toggle('error', problem);
  }

  async toggleRecording() {
    if (this.switching) return undefined;
    if (this.recorder.recording) return this.stopRecording();
    if (this.busy) return undefined;
    this.awaited = null;
    this.setSwitching(true);
    this.setBusy(true);
    this.recordMessage('Asking for the microphone…');
    this.chunks = [];
    this.frames = 0;
    const live = new LiveStream(this.socket, { onEnded: (problem) => this.liveEnded(problem) });
    this.live = live;
    try {
      await this.recorder.start((pcm, rate) => {
        this.frames += pcm.length;
        this.rate = rate;
        if (this.live) this.live.push(pcm);
        else this.chunks.push(pcm);
      });
    } catch (error) {
      live.abandon();
      this.live = null;
      const problem = microphoneProblem(error);
      this.recordMessage(problem.message, true);
      $('record-panel').dataset.mic = problem.kind;
      this.announce(problem.message);
      this.setSwitching(false);
      this.setBusy(false);
      return undefined;
    }
    $('record-panel').dataset.mic = 'recording';
    this.setSwitching(false);
    $('record').disabled = false;
    $('record-label').textContent = 'Stop';
    $('record').classList.add('recording');
    $('meter-row').hidden = false;
    this.recordMessage('Recording. Press Stop when you are done.');
    this.announce('Recording started.');
    this.tick = setInterval(() => this.showElapsed(), 200);
    this.showElapsed();
    try {
      const job = await live.open(this.recordingName(), this.recorder.sampleRate);
      this.onJob(job, { recording: this.recorder.recording });
      if (this.live === live) {
        $('record-panel').dataset.live = 'true';
        this.recordMessage('Recording live: each pause sends what was said to the workers, and its text ' +
          'appears below while you speak. Press Stop when you are done.');
      }
    } catch (error) { // live mode is not available: the recording is uploaded at Stop instead
      const stopped = this.live !== live;
      const chunks = live.unacknowledged();
      live.abandon();
      $('record-panel').dataset.live = 'false';
      if (stopped) {
        await this.send(encodeWav(chunks, this.rate), this.recordingName());
      } else {
        this.live = null;
        this.chunks = chunks.concat(this.chunks);
        this.recordMessage(`Recording (not live: ${error.message}). Press Stop to send the recording.`);
      }
    }
    return undefined;
  }

  recordingName() {
    const stamp = new Date().toISOString().slice(0, 19).replace('T', ' ').replace(/:/g, '-');
    return `Recording ${stamp}.wav`;
  }

  /** The server ended a live recording early (its length limit, a deleted job, a restart): stop here too. */
  liveEnded(problem) {
    if (!this.recorder.recording) {
      this.recordMessage(problem, true);
      return;
    }
    this.stopRecording(problem, true);
  }

  showElapsed(seconds = this.rate ? this.frames / this.rate : 0) {
    $('elapsed').textContent = clock(seconds);
    $('elapsed').dataset.seconds = seconds.toFixed(2);
  }

  showLevel(peak) {
    // Decibels read the way ears do: -60 dBFS is an empty meter, 0 dBFS a full one.
    const db = 20 * Math.log10(Math.max(peak, 1e-6));
    const fill = Math.min(1, Math.max(0, (db + 60) / 60));
    $('meter-fill').style.clipPath = `inset(0 ${(100 - fill * 100).toFixed(1)}% 0 0)`;
    $('meter-fill').dataset.level = fill.toFixed(3);
  }

  async stopRecording(reason, problem = false) {
    if (!this.recorder.recording || this.switching) return;
    clearInterval(this.tick);
    this.setSwitching(true);
    await this.recorder.stop(); // delivers the last chunk first
    this.setSwitching(false);
    const live = this.live;
    this.live = null;
    $('record').classList.remove('recording');
    $('record-label').textContent = 'Record';
    $('meter-row').hidden = true;
    $('record-panel').dataset.mic = 'ready';
    const seconds = this.rate ? this.frames / this.rate : 0;
    this.showElapsed(seconds);
    this.announce(`Recording stopped after ${clock(seconds)}.`);
    if (live) {
      this.setBusy(false);
      this.recordMessage(reason || `Recorded ${clock(seconds)} live; the last words are being transcribed.`,
        problem);
      if (!reason) this.awaited = { job: live.job, seconds };
      const ended = await live.finish();
      if (ended) {
        this.awaited = null;
        this.recordMessage(ended, true);
      }
      return;
    }
    if (seconds < MIN_RECORDING_S) {
      this.recordMessage('That was too short to transcribe: record at least a second.', true);
      this.setBusy(false);
      return;
    }
    this.recordMessage(reason || `Recorded ${clock(seconds)}.`, problem);
    const blob = encodeWav(this.chunks, this.rate);
    this.chunks = [];
    this.setBusy(false);
    await this.send(blob, this.recordingName());
  }

  /** A job's news (its view, or its line in the jobs list): once the live recording just made is
   * transcribed, the message under the button says so instead of "being transcribed". */
  jobChanged(job) {
    const awaited = this.awaited;
    if (!awaited || job.id !== awaited.job || (job.status !== 'done' && job.status !== 'failed')) return;
    this.awaited = null;
    const recorded = `Recorded ${clock(awaited.seconds)} live`;
    if (job.status === 'done') this.recordMessage(`${recorded}; its transcript is ready below.`);
    else {
      this.recordMessage(`${recorded}; its transcription failed${job.error ? `: ${job.error}` : '.'}`, true);
    }
  }

  /** Upload a recording as a new job; on refusal show the server's own words. A file whose first bytes are
   * no audio or video is refused here, in the server's words, and none of it is sent. */
  async send(blob, name) {
    if (this.busy) return;
    this.setBusy(true);
    const error = $('upload-error');
    error.hidden = true;
    const kind = await sniffFile(blob);
    if (!kind.audio) {
      this.setBusy(false);
      this.refused(name, kind.refusal);
      return;
    }
    const row = $('upload-progress-row');
    const bar = $('upload-progress');
    const text = $('upload-progress-text');
    row.hidden = false;
    bar.value = 0;
    text.textContent = `Uploading ${name}…`;
    this.announce(`Uploading ${name}.`);
    const answer = await uploadRecording(blob, name, (sent, total) => {
      bar.value = total ? (100 * sent) / total : 100;
      text.textContent = sent < total
        ? `Uploading ${name}: ${Math.floor(bar.value)} % of ${(total / 1e6).toFixed(1)} MB`
        : `Uploaded ${name}; the server is cutting it at its silences…`;
    });
    row.hidden = true;
    this.setBusy(false);
    if (!answer.ok) {
      this.refused(name, answer.body.error);
      return;
    }
    this.onJob(answer.body.id);
  }

  refused(name, message) {
    const error = $('upload-error');
    error.textContent = `${name} was not accepted: ${message}`;
    error.dataset.serverMessage = message;
    error.hidden = false; // role=alert: read out as it appears
  }
}
