'use strict';
// The recording drawn as a waveform (peaks computed by the server) with every slice marked on it: a shaded
// band per slice, coloured by state, and below it a labelled chip per slice saying who has it.

import { clock, sliceState } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 1000; // the SVG's viewBox width; times map onto 0..WIDTH
const MID = 50;

export class Waveform {
  /**
   * @param {object} parts svg (the SVG), path (its waveform), marks (its slice group), track (the list of
   *   slice labels under it), axis (the time labels under that)
   */
  constructor(parts) {
    Object.assign(this, parts);
  }

  clear() {
    this.path.setAttribute('d', '');
    this.marks.replaceChildren();
    this.track.replaceChildren();
    this.axis.replaceChildren();
    this.axisFor = null;
  }

  /** Draw the waveform from {min: [...], max: [...]} (values -1..1), scaled so the loudest part fills it. */
  setPeaks({ min, max }) {
    const n = Math.min(min.length, max.length);
    if (n === 0) { this.path.setAttribute('d', ''); return; }
    let loudest = 0.05;
    for (let i = 0; i < n; i++) loudest = Math.max(loudest, -min[i], max[i]);
    const scale = (MID - 4) / loudest;
    const x = (i) => ((i + 0.5) / n * WIDTH).toFixed(1);
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
    const span = Math.max(duration, 1e-3);
    const marks = [];
    const chips = [];
    for (const s of slices) {
      const state = sliceState(s);
      const x0 = (s.start / span) * WIDTH;
      const w = Math.max(((s.end - s.start) / span) * WIDTH, 1);
      const label = `Slice ${s.index + 1}, ${clock(s.start, true)}–${clock(s.end, true)}: ${state.word}`;

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

      const chip = document.createElement('li');
      chip.className = 'slice-chip';
      chip.dataset.index = s.index;
      chip.dataset.status = s.status;
      chip.style.left = `${(x0 / WIDTH) * 100}%`;
      chip.style.width = `${(w / WIDTH) * 100}%`;
      chip.title = label;
      const symbol = document.createElement('span');
      symbol.className = 'chip-symbol';
      symbol.setAttribute('aria-hidden', 'true');
      symbol.textContent = state.symbol;
      const text = document.createElement('span');
      text.className = 'chip-text';
      text.textContent = `${s.index + 1} · ${state.word}`;
      const hidden = document.createElement('span');
      hidden.className = 'visually-hidden';
      hidden.textContent = `, ${clock(s.start)} to ${clock(s.end)}`;
      chip.append(symbol, text, hidden);
      chips.push(chip);
    }
    this.marks.replaceChildren(...marks);
    this.track.replaceChildren(...chips);
    if (this.axisFor !== duration) this.drawAxis(duration);
  }

  /** Time labels under the waveform at a round step, about six of them. */
  drawAxis(duration) {
    this.axisFor = duration;
    const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    const step = steps.find((s) => duration / s <= 6) || 7200;
    const labels = [];
    for (let t = 0; t < duration - step * 0.5; t += step) labels.push(t);
    labels.push(duration);
    this.axis.replaceChildren(...labels.map((t) => {
      const span = document.createElement('span');
      span.textContent = clock(t, duration < 10);
      span.style.left = `${(t / Math.max(duration, 1e-3)) * 100}%`;
      return span;
    }));
  }
}
