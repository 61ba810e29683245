'use strict';
// The job card: status, progress and ETA, the waveform with its slices, the transcript (transcript.js) with
// its player (player.js), find (find.js) and corrections (editor.js), results.

import { SegmentEditor } from './editor.js';
import { Find } from './find.js';
import { Follow } from './follow.js';
import { JOB_STATUS_WORDS, clock, roughly, sliceEngine, sliceState } from './format.js';
import { installKeys } from './keys.js';
import { Player } from './player.js';
import { SpeakerPanel } from './speakers.js';
import { TranscriptView } from './transcript.js';
import { Waveform } from './waveform.js';

const $ = (id) => document.getElementById(id);
const DOWNLOADS = { txt: 'transcript.txt', 'txt-times': 'transcript.txt?timestamps=1', srt: 'transcript.srt',
  vtt: 'transcript.vtt', json: 'transcript.json' };

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
      track: $('slice-track'), axis: $('time-axis'), caption: $('slice-caption'),
      onSeek: (t) => this.player.playFrom(t) });
    const play = (t) => this.player.playFrom(t);
    this.transcript = new TranscriptView($('transcript-body'), { onPlay: play, onEdit: (seg) => this.editor.start(seg) });
    this.editor = new SegmentEditor({ transcript: this.transcript, job: () => this.job, announce,
      onSaved: (answer) => this.saved(answer) });
    this.speakers = new SpeakerPanel({ job: () => this.job, announce });
    this.follow = new Follow();
    this.player = new Player((t, playing) => this.playing(t, playing));
    this.find = new Find($('transcript-body'), play);
    installKeys({
      k: () => this.player.toggle(), ' ': () => this.player.toggle(),
      j: () => this.player.skip(-5), l: () => this.player.skip(5),
      '<': () => this.announce(`Speed ${this.player.faster(-1)}×`),
      '>': () => this.announce(`Speed ${this.player.faster(1)}×`),
      n: () => this.nextUnsure(), '/': () => $('find-input').focus(),
      f: () => { this.follow.set(true); this.follow.show(this.transcript.current.seg, true); },
    });
    $('next-uncertain').addEventListener('click', () => this.nextUnsure());
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
    for (const part of ['job-status', 'job-tools', 'waiting', 'actions', 'partial-note', 'empty-note',
      'transcript-help', 'rename-form', 'speakers']) $(part).hidden = true;
    $('job-progress').value = 0;
    $('job-progress-text').textContent = '';
    $('transcript-body').replaceChildren();
    $('slice-list').replaceChildren();
    this.waveform.clear();
    this.player.clear();
    document.title = 'Scatterscribe';
  }

  /** Render a job view (the `job` event / GET /api/jobs/<id>); announces what changed since the last one. */
  render(view, workers) {
    const before = this.job && this.job.id === view.id ? this.job : null;
    this.job = view;
    this.receivedAt = performance.now();
    $('job').hidden = false;
    $('job-status').hidden = false;
    $('job-tools').hidden = false;
    $('actions').hidden = false;
    $('job-h').textContent = view.name;
    this.renderMeta();
    this.renderProgress();
    this.renderWaiting(workers);
    this.waveform.setSlices(view.slices, view.duration);
    this.renderSliceList();
    this.speakers.render(view);
    this.transcript.render(view);
    this.find.refresh();
    this.player.setJob(view);
    this.renderResults();
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
    // The browser tab says how far the job is, for someone working in another tab.
    const open = !this.finished && total ? `(${done}/${total}) ` : '';
    document.title = `${v.recording ? '● ' : open}${v.name} — Scatterscribe`;
  }

  /** Copy and the downloads only once there is text; the help and the unsure-word control once it is timed. */
  renderResults() {
    const v = this.job;
    const hasText = !!(v.transcript && v.transcript.trim());
    $('copy').disabled = !hasText;
    for (const [id, path] of Object.entries(DOWNLOADS)) {
      const link = $(`dl-${id}`);
      if (hasText) {
        link.href = `/api/jobs/${v.id}/${path}`;
        link.removeAttribute('aria-disabled');
      } else {
        link.removeAttribute('href'); // a link without href cannot be followed
        link.setAttribute('aria-disabled', 'true');
      }
    }
    $('empty-note').hidden = hasText || v.recording;
    $('partial-note').hidden = !hasText || this.finished;
    $('transcript-help').hidden = !this.transcript.timed.length;
    const unsure = this.transcript.unsure;
    $('uncertain-note').hidden = unsure === 0;
    $('next-uncertain').hidden = unsure === 0;
    $('next-uncertain').textContent = `Next unsure word (${unsure})`;
  }

  /** The player's time moved: highlight what is said then, and keep it in view while following. */
  playing(t, playing) {
    const seg = this.transcript.highlight(t);
    this.follow.active = playing;
    if (playing) this.follow.show(seg);
    this.waveform.setPlayhead(t);
  }

  /** Focus the next word the model was unsure of after the playhead, and move the playhead there. */
  nextUnsure() {
    const word = this.transcript.nextUnsure(this.player.audio.currentTime);
    if (!word) return;
    this.player.seek(Number(word.dataset.start));
    word.focus();
    word.scrollIntoView({ block: 'center', behavior: 'instant' });
  }

  /** A correction the server took: shown at once (the job's push follows). */
  saved(answer) {
    const s = this.job && this.job.slices.find((x) => x.index === answer.slice);
    if (!s) return;
    s.segments[answer.segment] = { ...s.segments[answer.segment], text: answer.text };
    s.edits = { ...s.edits };
    if (answer.edited) s.edits[String(answer.segment)] = { original: answer.original };
    else delete s.edits[String(answer.segment)];
    s.text = s.segments.map((seg) => seg.text).filter((t) => t && t.trim()).join(' ');
    this.transcript.render(this.job);
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
      if (s.error) text += ` — ${s.error}`; // on a done slice: a new try that failed (it kept its text)
      if (s.asked_engine || s.asked_model) text += ` (asked of ${[s.asked_engine, s.asked_model].join(' ').trim()})`;
      const symbol = document.createElement('span');
      symbol.className = 'chip-symbol';
      symbol.setAttribute('aria-hidden', 'true');
      symbol.textContent = state.symbol;
      li.append(symbol, ` ${text}`);
      if ((s.status === 'done' || s.status === 'failed') && !this.job.recording) {
        const again = document.createElement('button');
        again.type = 'button';
        again.className = 'button small secondary redo';
        again.dataset.redo = s.index;
        again.textContent = 'Transcribe again…';
        again.setAttribute('aria-label', `Transcribe again… (slice ${s.index + 1})`);
        li.append(' ', again);
      } else if (s.redo_of && (s.status === 'queued' || s.status === 'leased')) {
        const stop = document.createElement('button');
        stop.type = 'button';
        stop.className = 'button small secondary redo';
        stop.dataset.cancelRedo = s.index;
        stop.textContent = 'Stop transcribing again';
        stop.setAttribute('aria-label', `Stop transcribing again (slice ${s.index + 1})`);
        li.append(' ', stop);
      }
      return li;
    });
    $('slice-list').replaceChildren(...items);
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
    // What the page shows, as the .txt has it: paragraphs with a blank line between them.
    const paragraphs = [...$('transcript-body').querySelectorAll('.para-text')]
      .map((p) => [...p.querySelectorAll('.seg, .piece.failed')].map((e) => e.textContent.trim())
        .filter(Boolean).join(' '))
      .filter(Boolean);
    const ok = await copyText(paragraphs.join('\n\n') || this.job.transcript);
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
