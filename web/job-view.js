'use strict';
// The job card: status, progress and ETA, the waveform with its slices, the transcript filling in, results.

import { JOB_STATUS_WORDS, clock, roughly, sliceEngine, sliceState } from './format.js';
import { Waveform } from './waveform.js';

const $ = (id) => document.getElementById(id);
const FORMATS = ['txt', 'srt', 'vtt', 'json'];

export class JobView {
  /** @param {(text: string) => void} announce says a change out loud (aria-live) */
  constructor(announce) {
    this.announce = announce;
    this.job = null;
    this.receivedAt = 0;
    this.peaksFor = null;
    this.peaksAt = 0;
    this.quietFor = null; // a job shown without announcing it (the page's own recording, just started)
    this.waveform = new Waveform({ svg: $('waveform'), path: $('waveform-path'), marks: $('waveform-slices'),
      track: $('slice-track'), axis: $('time-axis'), caption: $('slice-caption') });
    $('copy').addEventListener('click', () => this.copy());
    // The ETA counts down between pushes; pushes only come when a slice changes hands.
    setInterval(() => { if (this.job && !this.finished) this.renderProgress(); }, 1000);
  }

  get finished() { return this.job && (this.job.status === 'done' || this.job.status === 'failed'); }

  /** Show a job missing from the server (deleted, or a mistyped link). */
  showMissing(id) {
    this.job = null;
    $('job').hidden = false;
    $('job-h').textContent = 'Job not found';
    $('job-meta').textContent = `This server has no job ${id}: it may have been deleted. Record or upload ` +
      'again.';
    for (const part of ['job-status', 'waiting', 'actions', 'partial-note']) $(part).hidden = true;
    $('job-progress').value = 0;
    $('job-progress-text').textContent = '';
    $('transcript').replaceChildren();
    $('slice-list').replaceChildren();
    this.waveform.clear();
  }

  /** Render a job view (the `job` event / GET /api/jobs/<id>); announces what changed since the last one. */
  render(view, workers) {
    const before = this.job && this.job.id === view.id ? this.job : null;
    this.job = view;
    this.receivedAt = performance.now();
    $('job').hidden = false;
    $('job-status').hidden = false;
    $('actions').hidden = false;
    $('job-h').textContent = view.name;
    this.renderMeta();
    this.renderProgress();
    this.renderWaiting(workers);
    this.waveform.setSlices(view.slices, view.duration);
    this.renderSliceList();
    this.renderTranscript();
    for (const ext of FORMATS) $(`dl-${ext}`).href = `/api/jobs/${view.id}/transcript.${ext}`;
    $('partial-note').hidden = this.finished || view.progress.done === 0;
    // A live job's audio grows (its length comes once a second): its waveform is fetched again now and then
    // while it records, each time reading the whole file, and once more when it ends.
    const stale = this.peaksDuration !== view.duration;
    const pause = Math.min(30000, Math.max(2000, view.duration * 50)); // ms: a 20th of its length
    if (this.peaksFor !== view.id ||
        (stale && (!view.recording || performance.now() - this.peaksAt >= pause))) {
      this.loadPeaks(view.id, view.duration);
    }
    this.announceChanges(before, view);
  }

  renderMeta() {
    const v = this.job;
    const n = v.progress.total;
    const parts = [`${clock(v.duration)} of audio`, `${n} slice${n === 1 ? '' : 's'}`];
    if (v.source && v.source !== 'upload') parts.push(v.source);
    parts.push(`started ${new Date(v.created_at * 1000).toLocaleTimeString()}`);
    if (v.finished_at) parts.push(`took ${roughly(v.finished_at - v.created_at)}`);
    $('job-meta').textContent = parts.join(' · ');
    const badge = $('job-status');
    const waiting = v.waiting_for_workers && !this.finished;
    badge.dataset.status = v.recording ? 'recording' : waiting ? 'waiting' : v.status;
    badge.textContent = v.recording ? 'Recording' : waiting ? 'Waiting for workers'
      : JOB_STATUS_WORDS[v.status] || v.status;
  }

  renderProgress() {
    const v = this.job;
    const { done, failed, total } = v.progress;
    const bar = $('job-progress');
    // While it records, its slices so far are no measure of the whole: the bar shows no amount (nor when
    // there is nothing to count yet); a finished job's is full.
    if (v.recording || (!total && !this.finished)) {
      bar.removeAttribute('value');
      bar.dataset.state = 'open';
    } else {
      bar.max = Math.max(total, 1);
      bar.value = total ? done : 1;
      bar.dataset.state = this.finished ? 'finished' : 'running';
    }
    let text = `${done} of ${total} slices done`;
    if (v.recording) {
      text = total ? `${total} slice${total === 1 ? '' : 's'} so far, ${done} done` : 'No slice yet';
    }
    if (failed) text += `, ${failed} failed`;
    if (v.recording) text += ' · still recording: each pause sends a slice';
    else if (!this.finished) {
      if (v.waiting_for_workers) text += ' · waiting for a worker';
      else if (v.eta_s === null || v.eta_s === undefined) text += ' · estimating time left…';
      else {
        const left = v.eta_s - (performance.now() - this.receivedAt) / 1000;
        text += left >= 1 ? ` · ${roughly(left)} left` : ' · finishing…';
      }
    }
    if (v.note) text += ` · ${v.note}`;
    if (v.error) text += ` · ${v.error}`;
    $('job-progress-text').textContent = text;
  }

  /** The "start a worker" notice; shown while the job's slices have nobody to go to. */
  renderWaiting(workers) {
    if (!this.job) return;
    const waiting = this.job.waiting_for_workers && !this.finished;
    $('waiting').hidden = !waiting;
    document.body.classList.toggle('job-waiting', waiting);
    if (!waiting) return;
    const wanted = [this.job.engine, this.job.model].filter(Boolean).join(' ');
    $('waiting-reason').textContent = workers.length === 0
      ? 'No worker is connected to this server.'
      : `None of the ${workers.length} connected worker${workers.length === 1 ? '' : 's'} can take its ` +
        'slices' +
        (wanted ? ` (it asks for ${wanted}).` : '.');
  }

  renderSliceList() {
    const items = this.job.slices.map((s) => {
      const li = document.createElement('li');
      li.dataset.status = s.status;
      li.dataset.engine = s.engine || '';
      li.dataset.model = s.model || '';
      const state = sliceState(s);
      let text = `${clock(s.start, true)}–${clock(s.end, true)}: ${state.word}`;
      const engine = sliceEngine(s);
      if (s.status === 'done' && engine) text += ` with ${engine}`;
      if (s.status === 'done' && s.elapsed) text += ` in ${s.elapsed.toFixed(1)} s`;
      if (s.attempts > 1) text += ` (attempt ${s.attempts})`;
      if (s.error && s.status !== 'done') text += ` — ${s.error}`;
      const symbol = document.createElement('span');
      symbol.className = 'chip-symbol';
      symbol.setAttribute('aria-hidden', 'true');
      symbol.textContent = state.symbol;
      li.append(symbol, ` ${text}`);
      return li;
    });
    $('slice-list').replaceChildren(...items);
  }

  /** Done slices' text in order, with a visible placeholder for each slice still out. */
  renderTranscript() {
    const parts = [];
    for (const s of this.job.slices) {
      const span = document.createElement('span');
      span.dataset.index = s.index;
      if (s.status === 'done') {
        if (!s.text) continue;
        span.className = 'piece';
        span.textContent = s.text;
      } else if (s.status === 'failed') {
        span.className = 'piece failed';
        const why = s.error || 'failed';
        span.textContent = `[${clock(s.start)}–${clock(s.end)} could not be transcribed: ${why}]`;
      } else {
        span.className = 'piece placeholder';
        span.textContent = `[${clock(s.start)}–${clock(s.end)} ${sliceState(s).word}…]`;
      }
      parts.push(span, ' ');
    }
    if (parts.length === 0 && (this.finished || this.job.recording)) {
      const empty = document.createElement('span');
      empty.className = 'piece placeholder';
      empty.textContent = this.job.recording ? 'The words appear here as each pause sends a slice.'
        : this.job.note || 'No text.';
      parts.push(empty);
    }
    $('transcript').replaceChildren(...parts);
  }

  async loadPeaks(id, duration) {
    if (this.peaksFor !== id) this.waveform.setPeaks({ min: [], max: [] }); // a live job's keeps its old one
    this.peaksFor = id;
    this.peaksDuration = duration;
    this.peaksAt = performance.now();
    const svg = $('waveform');
    const bins = Math.min(2000, Math.max(200, Math.round(svg.clientWidth * (window.devicePixelRatio || 1))));
    try {
      const response = await fetch(`/api/jobs/${id}/peaks.json?bins=${bins}`);
      if (!response.ok || this.peaksFor !== id) return;
      this.waveform.setPeaks(await response.json());
      svg.dataset.loaded = 'true';
    } catch {
      // No waveform is no reason to stop: the slices and transcript still show.
    }
  }

  announceChanges(before, view) {
    const { done, total } = view.progress;
    if (!before) {
      if (view.id !== this.quietFor) this.announce(`Showing ${view.name}: ${done} of ${total} slices done.`);
    } else if (view.status !== before.status && (view.status === 'done' || view.status === 'failed')) {
      this.announce(view.status === 'done' ? `Transcript of ${view.name} is ready.`
        : `Transcription of ${view.name} failed: ${view.error}`);
    } else if (view.waiting_for_workers && !before.waiting_for_workers) {
      this.announce('The job is waiting for a worker to connect.');
    } else if (done !== before.progress.done) {
      this.announce(`${done} of ${total} slices done.`);
    }
  }

  async copy() {
    if (!this.job) return;
    const ok = await copyText(this.job.transcript);
    const button = $('copy');
    button.textContent = ok ? 'Copied ✓' : 'Copy failed';
    this.announce(ok ? 'Transcript copied to the clipboard.'
      : 'The browser refused to copy; select the text.');
    setTimeout(() => { button.textContent = 'Copy text'; }, 2000);
  }
}

/** Put text on the clipboard; the Clipboard API only exists on secure pages, so fall back to a selection. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}
