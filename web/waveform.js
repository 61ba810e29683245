'use strict';
// The recording drawn as a waveform (peaks computed by the server) with every slice marked on it: a shaded
// band per slice, coloured by state, and below it a labelled chip per slice saying who has it. A chip shows
// its state and worker on two lines; one too narrow for them shows only its number rather than cut words.
// Every chip says it all in the caption under the timeline when pointed at or focused (the chips are one Tab
// stop; the arrow keys move between them), and the list of every slice says it too.

import { clock, sliceEngine, sliceState } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 1000; // the SVG's viewBox width; times map onto 0..WIDTH
const MID = 50;
const CAPTION_HINT = 'Point at a slice, or Tab to the slices and use the arrow keys, to see who took it.';

export class Waveform {
  /**
   * @param {object} parts svg (the SVG), path (its waveform), marks (its slice group), track (the list of
   *   slice labels under it), axis (the time labels under that), caption (the focused slice in words), and
   *   optionally onSeek(seconds), called when the waveform is clicked
   */
  constructor(parts) {
    Object.assign(this, parts);
    this.peaks = null;
    this.duration = 0;
    this.current = 0; // the chip that takes the focus when Tab reaches the timeline
    this.labels = [];
    this.track.addEventListener('keydown', (e) => this.moveFocus(e));
    this.track.addEventListener('focusin', (e) => this.focused(e.target.closest('.slice-chip')));
    this.track.addEventListener('focusout', () => this.describe(null));
    this.track.addEventListener('mouseover', (e) => this.describe(e.target.closest('.slice-chip')));
    this.track.addEventListener('mouseleave',
      () => this.describe(this.track.querySelector('.slice-chip:focus')));
    this.describe(null);
    // Clicking the waveform plays the recording from there.
    if (this.onSeek) {
      this.svg.addEventListener('click', (e) => {
        const box = this.svg.getBoundingClientRect();
        if (this.duration > 0 && box.width > 0) this.onSeek(((e.clientX - box.left) / box.width) * this.duration);
      });
    }
    // Whether a chip's words fit depends on the page's width too.
    if (window.ResizeObserver) {
      new ResizeObserver(() => {
        this.fitLabels();
        if (this.axisFor !== undefined && this.axis.clientWidth !== this.axisWidth) this.drawAxis(this.axisFor);
      }).observe(this.track);
    }
  }

  /** Mark where the player is (seconds), on the waveform. */
  setPlayhead(t) {
    const head = this.svg.querySelector('.playhead');
    if (!head) return;
    const x = this.duration > 0 ? Math.min(WIDTH, Math.max(0, (t / this.duration) * WIDTH)) : 0;
    head.setAttribute('x1', x);
    head.setAttribute('x2', x);
    head.style.visibility = t > 0 ? 'visible' : 'hidden';
  }

  clear() {
    this.peaks = null;
    this.duration = 0;
    this.path.setAttribute('d', '');
    this.marks.replaceChildren();
    this.track.replaceChildren();
    this.axis.replaceChildren();
    this.axisFor = null;
    this.describe(null);
  }

  /** Keep the waveform {min: [...], max: [...], duration} (values -1..1) and draw it. */
  setPeaks(peaks) {
    this.peaks = peaks;
    this.drawPeaks();
  }

  /** The peaks span their own duration: while a live recording grows, the part after it stays empty until
   * the next peaks come, and the slices still line up with the sound. */
  drawPeaks() {
    const { min = [], max = [], duration } = this.peaks || {};
    const n = Math.min(min.length, max.length);
    if (n === 0) { this.path.setAttribute('d', ''); return; }
    const width = duration && this.duration > duration ? WIDTH * (duration / this.duration) : WIDTH;
    let loudest = 0.05;
    for (let i = 0; i < n; i++) loudest = Math.max(loudest, -min[i], max[i]);
    const scale = (MID - 4) / loudest;
    const x = (i) => ((i + 0.5) / n * width).toFixed(1);
    const top = [];
    const bottom = [];
    for (let i = 0; i < n; i++) {
      // At least a hairline, so silence still reads as a line rather than a gap.
      top.push(`${x(i)} ${(MID - Math.max(max[i] * scale, 0.6)).toFixed(1)}`);
      bottom.push(`${x(i)} ${(MID - Math.min(min[i] * scale, -0.6)).toFixed(1)}`);
    }
    this.path.setAttribute('d', `M${top.join('L')}L${bottom.reverse().join('L')}Z`);
  }

  /** Mark each slice on the timeline of a recording `duration` seconds long. */
  setSlices(slices, duration) {
    const grew = duration !== this.duration;
    this.duration = duration;
    if (grew && this.peaks) this.drawPeaks();
    const span = Math.max(duration, 1e-3);
    const focused = this.track.contains(document.activeElement);
    this.current = Math.min(this.current, Math.max(slices.length - 1, 0));
    const marks = [];
    const chips = [];
    this.labels = [];
    for (const s of slices) {
      const state = sliceState(s);
      const x0 = (s.start / span) * WIDTH;
      const w = Math.max(((s.end - s.start) / span) * WIDTH, 1);
      const engine = sliceEngine(s);
      const label = `Slice ${s.index + 1}, ${clock(s.start, true)}–${clock(s.end, true)}: ${state.word}` +
        (engine && s.status === 'done' ? ` (${engine})` : '');
      this.labels.push(label);

      const g = document.createElementNS(SVG, 'g');
      g.setAttribute('class', 'slice-mark');
      g.dataset.index = s.index;
      g.dataset.status = s.status;
      const rect = document.createElementNS(SVG, 'rect');
      Object.entries({ x: x0, y: 0, width: w, height: 100 }).forEach(([k, v]) => rect.setAttribute(k, v));
      const edge = document.createElementNS(SVG, 'line');
      Object.entries({ x1: x0, x2: x0, y1: 0, y2: 100, class: 'slice-edge' })
        .forEach(([k, v]) => edge.setAttribute(k, v));
      const title = document.createElementNS(SVG, 'title');
      title.textContent = label;
      g.append(rect, edge, title);
      marks.push(g);
      chips.push(this.chip(s, state, x0, w, label));
    }
    this.marks.replaceChildren(...marks);
    this.track.replaceChildren(...chips);
    this.fitLabels();
    // A push redraws every chip: the one that had the focus keeps it, and the caption follows its news.
    if (focused && chips.length) chips[this.current].focus({ preventScroll: true });
    else this.describe(this.described === null ? null : chips[this.described] || null);
    if (this.axisFor !== duration) this.drawAxis(duration);
  }

  /** A chip whose two lines do not fit whole shows its symbol and number alone (its words stay for screen
   * readers); one too narrow for that too shows its symbol alone, and one too narrow for a symbol shows its
   * colour alone (its title and the caption still say it all). Never a cut-off character. */
  fitLabels() {
    // Each stage: clear, then measure every chip, then mark: one layout per stage for all the chips.
    const chips = [...this.track.children];
    for (const chip of chips) chip.classList.remove('narrow', 'tiny', 'bare');
    const overflows = (chip) => chip.scrollWidth > chip.clientWidth + 1;
    const narrow = chips.filter((chip) => [...chip.querySelectorAll('.chip-line')]
      .some((line) => line.scrollWidth > line.clientWidth + 1));
    for (const chip of narrow) chip.classList.add('narrow');
    const tiny = narrow.filter(overflows);
    for (const chip of tiny) chip.classList.add('tiny');
    for (const chip of tiny.filter(overflows)) chip.classList.add('bare');
  }

  chip(s, state, x0, w, label) {
    const chip = document.createElement('li');
    chip.className = 'slice-chip';
    chip.dataset.index = s.index;
    chip.dataset.status = s.status;
    chip.style.left = `${(x0 / WIDTH) * 100}%`;
    chip.style.width = `${(w / WIDTH) * 100}%`;
    chip.title = label;
    chip.tabIndex = s.index === this.current ? 0 : -1;
    const symbol = document.createElement('span');
    symbol.className = 'chip-symbol';
    symbol.setAttribute('aria-hidden', 'true');
    symbol.textContent = state.symbol;
    const text = document.createElement('span');
    text.className = 'chip-text';
    const first = document.createElement('span');
    first.className = 'chip-line';
    first.textContent = `${s.index + 1} · ${state.short}`;
    text.append(first);
    if (state.who) {
      const second = document.createElement('span');
      second.className = 'chip-line chip-worker';
      second.textContent = state.who;
      text.append(' ', second); // read as one sentence: "2 · done by alpha"
    }
    const number = document.createElement('span');
    number.className = 'chip-number';
    number.setAttribute('aria-hidden', 'true');
    number.textContent = String(s.index + 1);
    const hidden = document.createElement('span');
    hidden.className = 'visually-hidden';
    hidden.textContent = `, ${clock(s.start)} to ${clock(s.end)}`;
    chip.append(symbol, number, text, hidden);
    return chip;
  }

  /** Say in the caption who has the slice of `chip` (null: how to get that). */
  describe(chip) {
    const index = chip ? Number(chip.dataset.index) : null;
    this.described = index;
    const hint = this.track.children.length ? CAPTION_HINT : ''; // nothing to point at yet
    this.caption.textContent = index === null ? hint : this.labels[index] || '';
    this.caption.classList.toggle('hint', index === null);
  }

  /** A chip got the focus (keys or a click): it becomes the timeline's one Tab stop, and is described. */
  focused(chip) {
    if (!chip) return;
    this.current = Number(chip.dataset.index);
    for (const c of this.track.querySelectorAll('.slice-chip')) c.tabIndex = c === chip ? 0 : -1;
    this.describe(chip);
  }

  /** Arrow keys, Home and End move the focus between the chips. */
  moveFocus(event) {
    const chips = this.track.querySelectorAll('.slice-chip');
    if (!chips.length) return;
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    let next = this.current;
    if (step) next = Math.min(chips.length - 1, Math.max(0, this.current + step));
    else if (event.key === 'Home') next = 0;
    else if (event.key === 'End') next = chips.length - 1;
    else return;
    event.preventDefault();
    chips[next].focus();
  }

  /** Time labels under the waveform at a round step, as many as fit the width without touching; none for an
   * empty recording. */
  drawAxis(duration) {
    this.axisFor = duration;
    this.axisWidth = this.axis.clientWidth;
    if (!(duration > 0)) {
      this.axis.replaceChildren();
      return;
    }
    const tenths = duration < 10;
    const labelPx = (clock(duration, tenths).length + 1) * 7.5; // a label's width at the axis's 0.75rem
    const pxPerS = (this.axis.clientWidth || 600) / duration;
    const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];
    const step = steps.find((s) => s * pxPerS >= labelPx * 1.5) || steps[steps.length - 1];
    const labels = [];
    // The end's label is drawn right-aligned: a tick closer to it than that would overlap it.
    for (let t = 0; (duration - t) * pxPerS >= labelPx * 1.6; t += step) labels.push(t);
    labels.push(duration);
    this.axis.replaceChildren(...labels.map((t) => {
      const span = document.createElement('span');
      span.textContent = clock(t, tenths);
      span.style.left = `${(t / duration) * 100}%`;
      return span;
    }));
  }
}
