'use strict';
// Tentative text of a live recording (the job view's `partial`; README "Live mode"): what a worker heard in
// the part not yet in a closed slice, shown after the final text in a lighter, slanted style, in
// #transcript-tail (transcript.js draws the paragraphs in #transcript-body and leaves the tail alone). When a
// slice closes over those words they stay, in the place of its "[… on worker…]" placeholder (hidden
// meanwhile), until its own text comes and replaces them; after Stop, once the last slice is done, none remain.
//
//   const captions = new Captions(body, tail, { recordingHere: () => … });
//   captions.render(view);            // after the job card drew its transcript (every `job` push)
//   captions.update(jobId, partial);  // a `partial` push, between job pushes
//
// A word that stays the same from one decode to the next keeps its element, so it never flickers; only the
// words after the first change are replaced. While this page records on a narrow screen, the newest words
// are kept in view above the recording bar, unless the reader has just scrolled away.

const NARROW = '(max-width: 40rem)';
const READER_PAUSE_MS = 4000; // after the reader scrolls, following waits this long
const EPSILON_S = 0.05;

export class Captions {
  /**
   * @param {HTMLElement} body the paragraphs, which the job card redraws on every job push
   * @param {HTMLElement} tail where the tentative words go, after them
   * @param {{recordingHere: () => boolean}} hooks whether this page is recording now
   */
  constructor(body, tail, { recordingHere = () => false } = {}) {
    this.body = body;
    this.tail = tail;
    this.recordingHere = recordingHere;
    this.view = null;
    this.partial = null; // {start, end, text}: the open part's tentative text
    this.held = null; // the same for a part a slice has closed over, shown until the slice's text comes
    this.made = 0; // word elements made so far (each carries its number: tests check stable words keep theirs)
    this.open = block('open');
    this.closed = block('held');
    this.narrow = window.matchMedia(NARROW);
    this.readerAt = -Infinity;
    for (const type of ['wheel', 'touchmove', 'keydown']) {
      window.addEventListener(type, () => { this.readerAt = performance.now(); }, { passive: true });
    }
  }

  /** A job view was drawn: its `partial` is the latest word. */
  render(view) {
    if (!this.view || this.view.id !== view.id) this.clear();
    this.view = view;
    this.take(view.partial);
    this.draw();
  }

  /** No job is shown (it was deleted, or is not on this server): no tentative words either. */
  clear() {
    this.view = null;
    this.partial = null;
    this.held = null;
    words(this.open, '', this);
    words(this.closed, '', this);
    this.open.remove();
    this.closed.remove();
  }

  /** A `partial` push for a job; ignored unless it is the job shown. */
  update(jobId, partial) {
    if (!this.view || this.view.id !== jobId) return;
    this.take(partial);
    this.draw();
  }

  take(partial) {
    const before = this.partial;
    if (before && (!partial || partial.start > before.start + EPSILON_S)) {
      this.held = before; // the open part moved on: a slice closed over these words (or they were silence)
      words(this.closed, before.text, this);
    }
    this.partial = partial || null;
  }

  draw() {
    const { slices } = this.view;
    const heldOver = this.held ? slices.filter((s) => s.end > this.held.start + EPSILON_S &&
      s.start < this.held.end - EPSILON_S) : [];
    // Held words go as soon as a slice they lie in has its text (or failed), or when none covers them.
    if (this.held && (!heldOver.length || heldOver.some((s) => s.status === 'done' || s.status === 'failed'))) {
      this.held = null;
    }
    if (this.held) {
      // In the place of those slices' "[0:10–0:18 on worker…]" placeholders: the last ones of the paragraphs,
      // as the slices closed last; the tail follows them.
      for (const s of heldOver) {
        const mark = this.body.querySelector(`.placeholder[data-slice="${s.index}"]`);
        if (mark) mark.hidden = true;
      }
      this.closed.dataset.slices = heldOver.map((s) => s.index).join(' ');
      if (this.closed.parentNode !== this.tail) this.tail.prepend(this.closed);
    } else {
      this.closed.remove();
    }
    words(this.open, this.partial ? this.partial.text : '', this);
    if (this.partial) {
      this.open.dataset.start = String(this.partial.start);
      if (this.open.parentNode !== this.tail) this.tail.append(this.open);
      // "The words appear here as …" stands in for text only while there is none.
      const empty = this.body.querySelector('.placeholder.empty');
      if (empty) empty.hidden = true;
    } else {
      this.open.remove();
    }
    this.follow();
  }

  /** While this page records on a phone, keep the newest words in view (unless the reader scrolled away). */
  follow() {
    if (!this.recordingHere() || !this.narrow.matches || performance.now() - this.readerAt < READER_PAUSE_MS) {
      return;
    }
    const last = this.tail.querySelector('.word:last-child') || this.body.lastElementChild;
    if (last) last.scrollIntoView({ block: 'nearest' });
  }
}

function block(kind) {
  const span = document.createElement('span');
  span.className = 'tentative';
  span.dataset.kind = kind;
  span.title = 'Tentative: the slice\'s own transcription replaces these words when a pause closes it';
  const label = document.createElement('span');
  label.className = 'visually-hidden';
  label.textContent = '(tentative) ';
  span.append(label);
  return span;
}

/** The word as compared: "Gold," and "gold" are the same word (the server's rule for stable words too). */
const bare = (word) => word.toLowerCase().replace(/[^\p{L}\p{N}']+/gu, '');

/** Show `text` in a tentative block: the words that are the same as shown keep their elements (a change of
 * case or punctuation only updates the element's text). */
function words(target, text, counter) {
  const wanted = text.split(/\s+/).filter(Boolean);
  const shown = [...target.querySelectorAll('.word')];
  let same = 0;
  while (same < Math.min(wanted.length, shown.length) && bare(shown[same].dataset.word) === bare(wanted[same])) {
    same += 1;
  }
  for (const old of shown.slice(same)) old.remove();
  shown.slice(0, same).forEach((kept, i) => {
    kept.classList.remove('fresh');
    if (kept.dataset.word !== wanted[i]) {
      kept.dataset.word = wanted[i];
      kept.textContent = `${wanted[i]} `;
    }
  });
  for (const word of wanted.slice(same)) {
    const span = document.createElement('span');
    span.className = 'word fresh';
    span.dataset.word = word;
    span.dataset.n = String(++counter.made);
    span.textContent = `${word} `;
    target.append(span);
  }
}
