'use strict';
// The transcript as paragraphs: each with its start time in a margin (and, once speakers are known, who
// speaks), made of sentences (segments) that play from where they start when clicked, words the model was
// unsure of marked, the sentence and word being played highlighted. The server decides where paragraphs break
// (the job view's `paragraphs`, the same rule as the .txt download); this module only draws them.
//
// Hooks for other parts of the page: `paragraphHead(paragraph, side)` draws a paragraph's margin (its time
// button, then its speaker); #transcript-tail, after the paragraphs, is never touched here (live captions
// put their tentative words there).

import { clock, sliceState } from './format.js';
import { colourOf } from './speakers.js';

/** A word whose probability is below this is marked as unsure. */
export const UNSURE_BELOW = 0.5;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Position of the last item whose start is at or before `t` in a list sorted by start (-1: none). */
function lastStartingBy(items, t) {
  let lo = 0;
  let hi = items.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].start <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found;
}

/**
 * The time and probability of each of a sentence's words (`tokens`) from the engine's timed `words` (the same
 * rule as the server's subtitles.token_times): several timed words make one word of the text when together
 * they spell it (Whisper times "self-government" as "self" and "-government"; the least sure part counts);
 * when they spell something else, one per word if the counts agree (a correction that fixed a spelling); else
 * null.
 */
export function tokenTimes(tokens, words) {
  const out = [];
  let k = 0;
  for (const token of tokens) {
    const first = k;
    let joined = '';
    while (k < words.length && joined.length < token.length) joined += String(words[k++].word || '').trim();
    if (joined !== token) { k = -1; break; }
    const parts = words.slice(first, k);
    out.push({ start: parts[0].start, end: parts[parts.length - 1].end,
      probability: Math.min(...parts.map((w) => (typeof w.probability === 'number' ? w.probability : 1))) });
  }
  if (k === words.length) return out;
  if (words.length === tokens.length) {
    return words.map((w) => ({ start: w.start, end: w.end, probability: w.probability }));
  }
  return null;
}

export class TranscriptView {
  /**
   * @param {HTMLElement} root where the paragraphs go (#transcript-body)
   * @param {object} hooks
   * @param {(seconds: number) => void} hooks.onPlay play from a time (a sentence, a word or a margin time)
   * @param {(segment: HTMLElement) => void} hooks.onEdit start correcting a sentence
   */
  constructor(root, { onPlay, onEdit }) {
    this.root = root;
    this.onPlay = onPlay;
    this.onEdit = onEdit;
    this.view = null;
    this.editing = false; // a sentence is being corrected: redraws wait until it is saved or cancelled
    this.pending = null; // the view that came while editing
    this.timed = []; // [{start, end, el}] of every sentence, in order
    this.words = []; // [{start, end, el}] of every timed word, in order
    this.current = { seg: null, word: null };
    this.focusKey = null; // "slice:segment" of the sentence that is the transcript's Tab stop
    this.unsure = 0;
    root.addEventListener('click', (e) => this.clicked(e));
    root.addEventListener('dblclick', (e) => {
      const seg = e.target.closest('.seg[data-seg]');
      if (seg && !this.editing) { e.preventDefault(); this.onEdit(seg); }
    });
    root.addEventListener('keydown', (e) => this.keyed(e));
    root.addEventListener('focusin', (e) => {
      const seg = e.target.closest('.seg');
      if (seg && !this.editing) this.makeTabStop(seg);
    });
  }

  /** Draw a job view's transcript (or keep it for later while a sentence is being corrected). */
  render(view) {
    if (this.editing) { this.pending = view; return; }
    this.view = view;
    const slices = new Map(view.slices.map((s) => [s.index, s]));
    const hadFocus = this.root.contains(document.activeElement);
    this.timed = [];
    this.words = [];
    this.unsure = 0;
    const paras = (view.paragraphs || []).map((p) => this.paragraph(p, slices));
    if (paras.length === 0 && (view.status === 'done' || view.status === 'failed' || view.recording)) {
      const empty = el('p', 'piece placeholder empty', view.recording
        ? 'The words appear here as each pause sends a slice.' : view.note || 'No text.');
      paras.push(empty);
    }
    // A line break between paragraphs, so the transcript's text reads as words, never "end.Start".
    this.root.replaceChildren(...paras.flatMap((p, i) => (i ? ['\n', p] : [p])));
    this.current = { seg: null, word: null };
    // One sentence is the transcript's Tab stop: the one that had it, else the first.
    const stop = (this.focusKey && this.root.querySelector(`.seg[data-key="${this.focusKey}"]`)) ||
      this.root.querySelector('.seg');
    if (stop) {
      stop.tabIndex = 0;
      if (hadFocus) stop.focus({ preventScroll: true });
    }
  }

  /** The view that waited while a sentence was corrected, drawn now. */
  flush() {
    const view = this.pending || this.view;
    this.pending = null;
    if (view) this.render(view);
  }

  paragraph(p, slices) {
    const box = el('div', 'para');
    box.dataset.start = p.start;
    const side = el('div', 'para-side');
    this.paragraphHead(p, side);
    const text = el('p', 'para-text');
    const parts = [];
    for (const [index, n] of p.items) {
      const s = slices.get(index);
      if (!s) continue;
      parts.push(n >= 0 ? this.segment(s, n) : this.wholeSlice(s), ' ');
    }
    parts.pop();
    text.append(...parts);
    box.append(side, text);
    return box;
  }

  /** A paragraph's margin: the time it starts (a button that plays from there), then its speaker. The time is
   * drawn from data-time by the style sheet, so the transcript's text is its words alone (to copy, to read). */
  paragraphHead(p, side) {
    const time = el('button', 'para-time');
    time.type = 'button';
    time.dataset.start = p.start;
    time.dataset.time = clock(p.start);
    time.setAttribute('aria-label', `Play from ${clock(p.start)}`);
    side.append(time);
    if (p.speaker) {
      const who = el('span', 'para-speaker', p.speaker);
      if (p.speaker_id) who.dataset.colour = colourOf(p.speaker_id); // the speakers list's colour (speakers.js)
      side.append(who);
    }
  }

  /** One sentence of a done slice: its words (marked when unsure) or, without word times, its text. */
  segment(s, n) {
    const seg = s.segments[n];
    const span = el('span', 'piece seg');
    span.dataset.slice = s.index;
    span.dataset.seg = n;
    span.dataset.key = `${s.index}:${n}`;
    span.dataset.start = seg.start;
    span.dataset.end = seg.end;
    span.tabIndex = -1;
    const edit = s.edits && s.edits[String(n)];
    const text = seg.text || '';
    if (edit) {
      span.classList.add('edited');
      span.title = `Corrected. The worker wrote: “${edit.original}”`;
    }
    if (!text) span.classList.add('removed');
    this.timed.push({ start: seg.start, end: seg.end, el: span });
    const tokens = text.split(/\s+/).filter(Boolean);
    const times = Array.isArray(seg.words) && seg.words.length ? tokenTimes(tokens, seg.words) : null;
    if (times) {
      tokens.forEach((token, k) => {
        const w = times[k];
        const word = el('span', 'w', token);
        word.dataset.start = w.start;
        word.dataset.end = w.end;
        if (!edit && typeof w.probability === 'number' && w.probability < UNSURE_BELOW) {
          const sure = `${Math.round(w.probability * 100)} % sure`;
          word.classList.add('unsure');
          word.dataset.tip = sure;
          word.title = sure;
          word.tabIndex = -1;
          this.unsure += 1;
        }
        this.words.push({ start: w.start, end: w.end, el: word });
        span.append(word);
        if (k < tokens.length - 1) span.append(' ');
      });
    } else {
      span.textContent = text;
    }
    return span;
  }

  /** A slice shown whole: one still out (its old text, if it is being done again), a failed one, or one whose
   * text came without times. */
  wholeSlice(s) {
    if (s.status === 'done') {
      const span = el('span', 'piece seg', s.text);
      span.dataset.start = s.start;
      span.dataset.end = s.end;
      span.tabIndex = -1;
      this.timed.push({ start: s.start, end: s.end, el: span });
      return span;
    }
    if (s.status === 'failed') {
      return el('span', 'piece failed',
        `[${clock(s.start)}–${clock(s.end)} could not be transcribed: ${s.error || 'failed'}]`);
    }
    if (s.text) { // transcribed again: the old text stays until the new one comes
      const span = el('span', 'piece redoing', s.text);
      span.title = `Being transcribed again (${sliceState(s).word})`;
      return span;
    }
    const mark = el('span', 'piece placeholder', `[${clock(s.start)}–${clock(s.end)} ${sliceState(s).word}…]`);
    mark.dataset.slice = s.index; // live captions show a closed slice's tentative words in its place (partial.js)
    return mark;
  }

  clicked(event) {
    const time = event.target.closest('.para-time');
    if (time) { this.onPlay(Number(time.dataset.start)); return; }
    if (this.editing) return;
    const selection = window.getSelection();
    if (selection && !selection.isCollapsed && this.root.contains(selection.anchorNode)) return; // selecting
    const target = event.target.closest('.w, .seg');
    if (target && target.dataset.start !== undefined) this.onPlay(Number(target.dataset.start));
  }

  keyed(event) {
    const seg = event.target.closest && event.target.closest('.seg');
    if (!seg || this.editing || event.altKey || event.ctrlKey || event.metaKey) return;
    const all = [...this.root.querySelectorAll('.seg')];
    const at = all.indexOf(seg);
    const step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[event.key];
    if (step) {
      event.preventDefault();
      const next = all[Math.min(all.length - 1, Math.max(0, at + step))];
      if (next) next.focus();
    } else if (event.key === 'Home' || event.key === 'End') {
      event.preventDefault();
      all[event.key === 'Home' ? 0 : all.length - 1].focus();
    } else if (event.key === 'Enter') {
      event.preventDefault();
      this.onPlay(Number(seg.dataset.start));
    } else if ((event.key === 'F2' || event.key === 'e') && seg.dataset.seg !== undefined) {
      event.preventDefault();
      this.onEdit(seg);
    }
  }

  makeTabStop(seg) {
    for (const other of this.root.querySelectorAll('.seg[tabindex="0"]')) if (other !== seg) other.tabIndex = -1;
    seg.tabIndex = 0;
    this.focusKey = seg.dataset.key || null;
  }

  /** Highlight the sentence and word at `t` (seconds); returns the sentence's element, or null. */
  highlight(t) {
    const pick = (list, which) => {
      const i = lastStartingBy(list, t);
      const hit = i >= 0 && t <= Math.max(list[i].end, list[i].start + 0.05) ? list[i].el : null;
      if (hit !== this.current[which]) {
        if (this.current[which]) this.current[which].classList.remove('current');
        if (hit) hit.classList.add('current');
        this.current[which] = hit;
      }
      return hit;
    };
    pick(this.words, 'word');
    return pick(this.timed, 'seg');
  }

  /** The next word marked unsure after time `t` (wrapping round to the first), or null when there is none. */
  nextUnsure(t) {
    const marked = this.words.filter((w) => w.el.classList.contains('unsure'));
    return (marked.find((w) => w.start > t + 0.01) || marked[0] || {}).el || null;
  }
}
