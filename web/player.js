'use strict';
// The player: the job's stored recording (/api/jobs/<id>/audio.wav, served with HTTP range requests so a long
// recording seeks at once) in an <audio> element, with play/pause, 5 s back and forward, speed 0.5–2×, the time,
// and the keyboard shortcuts listed on the page. While it plays it reports the time many times a second, so
// the transcript can highlight the sentence and word being said.

import { clock } from './format.js';

const $ = (id) => document.getElementById(id);
export const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];
export const SKIP_S = 5;

/** Whether a key press belongs to what has the focus (typing, a button's Space) rather than to the page. */
export function typing(event) {
  const t = event.target;
  if (!(t instanceof Element)) return false;
  if (t.isContentEditable || t.closest('input, textarea, select, [contenteditable]:not([contenteditable=false])')) {
    return true;
  }
  return (event.key === ' ' || event.key === 'Enter') && !!t.closest('button, a, summary, [role=button]');
}

export class Player {
  /** @param {(seconds: number, playing: boolean) => void} onTime called while playing and on every seek */
  constructor(onTime) {
    this.audio = $('audio');
    this.onTime = onTime;
    this.jobId = null;
    this.frame = 0;
    this.shownSecond = -1;
    $('play').addEventListener('click', () => this.toggle());
    $('back').addEventListener('click', () => this.skip(-SKIP_S));
    $('forward').addEventListener('click', () => this.skip(SKIP_S));
    $('speed').addEventListener('change', () => { this.audio.playbackRate = Number($('speed').value); });
    const audio = this.audio;
    audio.addEventListener('play', () => { this.showPlaying(); this.loop(); });
    audio.addEventListener('pause', () => this.showPlaying());
    audio.addEventListener('ended', () => this.showPlaying());
    audio.addEventListener('seeked', () => this.tick());
    audio.addEventListener('loadedmetadata', () => this.showTime(true));
    audio.addEventListener('durationchange', () => this.showTime(true));
  }

  get playing() { return !this.audio.paused && !this.audio.ended; }

  /** Show a job's recording (kept when it is the same job; hidden while it is still being recorded). */
  setJob(view) {
    const recording = !!view.recording;
    $('toolbar').hidden = recording || !(view.duration > 0);
    if (recording) { if (this.playing) this.audio.pause(); return; }
    if (this.jobId === view.id && this.durationShown === view.duration) return;
    const sameJob = this.jobId === view.id;
    this.jobId = view.id;
    this.durationShown = view.duration;
    // A finished live recording's file grew since the page first loaded it: load it again, where it was.
    const at = sameJob ? this.audio.currentTime : 0;
    this.audio.src = `/api/jobs/${view.id}/audio.wav${sameJob ? `?v=${view.duration}` : ''}`;
    if (at) this.audio.currentTime = at;
    this.showPlaying();
    this.showTime(true);
  }

  clear() {
    this.audio.pause();
    this.audio.removeAttribute('src');
    this.audio.load();
    this.jobId = null;
    $('toolbar').hidden = true;
  }

  /** Play from `seconds` (a sentence or a word clicked, a margin time, a search match). */
  playFrom(seconds) {
    this.seek(seconds);
    this.audio.play().catch(() => {}); // the browser may refuse autoplay before any click: the button stays
  }

  /** Move to `seconds` without starting or stopping. */
  seek(seconds) {
    const end = Number.isFinite(this.audio.duration) ? this.audio.duration : Infinity;
    this.audio.currentTime = Math.max(0, Math.min(seconds, end));
    this.tick();
  }

  toggle() {
    if (this.playing) this.audio.pause();
    else this.audio.play().catch(() => {});
  }

  skip(seconds) { this.seek(this.audio.currentTime + seconds); }

  /** One step slower (-1) or faster (+1) through SPEEDS. */
  faster(step) {
    const now = SPEEDS.indexOf(Number($('speed').value));
    const next = SPEEDS[Math.min(SPEEDS.length - 1, Math.max(0, now + step))];
    $('speed').value = String(next);
    this.audio.playbackRate = next;
    return next;
  }

  loop() {
    cancelAnimationFrame(this.frame);
    const step = () => {
      this.tick();
      if (this.playing) this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  }

  tick() {
    this.showTime(false);
    this.onTime(this.audio.currentTime, this.playing);
  }

  showPlaying() {
    const playing = this.playing;
    $('play-label').textContent = playing ? 'Pause' : 'Play';
    $('play').dataset.playing = String(playing);
  }

  showTime(force) {
    const second = Math.floor(this.audio.currentTime);
    if (!force && second === this.shownSecond) return;
    this.shownSecond = second;
    const total = Number.isFinite(this.audio.duration) ? this.audio.duration : this.durationShown || 0;
    $('play-time').textContent = `${clock(this.audio.currentTime)} / ${clock(total)}`;
  }
}
