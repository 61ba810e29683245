'use strict';
// Find in the transcript: every match highlighted (the CSS Custom Highlight API, so the transcript's own
// elements are left alone), "3 of 12", Enter and Shift+Enter to move, and the player can jump to a match.

const $ = (id) => document.getElementById(id);
const SUPPORTED = typeof Highlight === 'function' && typeof CSS !== 'undefined' && !!CSS.highlights;

export class Find {
  /**
   * @param {HTMLElement} root the paragraphs (#transcript-body)
   * @param {(seconds: number) => void} onPlay play from a time
   */
  constructor(root, onPlay) {
    this.root = root;
    this.onPlay = onPlay;
    this.matches = []; // Range objects, in reading order
    this.at = -1;
    const input = $('find-input');
    let timer = 0;
    input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.search(true), 120);
    });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        clearTimeout(timer);
        if (this.query !== this.lastQuery) this.search(true); // typed, not searched yet: its first match
        else this.move(e.shiftKey ? -1 : 1);
      }
      if (e.key === 'Escape' && input.value) { e.preventDefault(); input.value = ''; this.search(true); }
    });
    $('find-next').addEventListener('click', () => this.move(1));
    $('find-prev').addEventListener('click', () => this.move(-1));
    $('find-play').addEventListener('click', () => this.playCurrent());
  }

  get query() { return $('find-input').value.trim().toLowerCase(); }

  /** Find every match again (the transcript was redrawn, or the words changed); `fresh`: a new query, so
   * the first match after the top becomes the current one. */
  search(fresh = false) {
    const query = this.query;
    if (query === this.lastQuery && !fresh && this.matchesFresh) return;
    const was = fresh || query !== this.lastQuery ? -1 : this.at;
    this.lastQuery = query;
    this.matches = query ? this.collect(query) : [];
    this.matchesFresh = true;
    this.at = this.matches.length ? Math.min(Math.max(was, 0), this.matches.length - 1) : -1;
    this.paint(fresh && this.at >= 0);
  }

  /** The transcript was drawn again: its text nodes are new. */
  refresh() {
    this.matchesFresh = false;
    if (this.query) this.search(false);
  }

  collect(query) {
    // The text of every paragraph, as one string per paragraph, with where each text node starts in it.
    const found = [];
    for (const para of this.root.querySelectorAll('.para-text')) {
      const nodes = [];
      let text = '';
      const walker = document.createTreeWalker(para, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        nodes.push({ node, at: text.length });
        text += node.data;
      }
      const lower = text.toLowerCase();
      for (let i = lower.indexOf(query); i >= 0; i = lower.indexOf(query, i + query.length)) {
        const range = document.createRange();
        const place = (offset, end) => {
          let k = nodes.length - 1;
          while (k > 0 && (end ? nodes[k].at >= offset : nodes[k].at > offset)) k -= 1;
          return [nodes[k].node, offset - nodes[k].at];
        };
        range.setStart(...place(i, false));
        range.setEnd(...place(i + query.length, true));
        found.push(range);
      }
    }
    return found;
  }

  move(step) {
    if (!this.matches.length) return;
    this.at = (this.at + step + this.matches.length) % this.matches.length;
    this.paint(true);
  }

  paint(scroll) {
    const n = this.matches.length;
    $('find-count').textContent = !this.query ? '' : n ? `${this.at + 1} of ${n}` : 'no match';
    for (const id of ['find-next', 'find-prev', 'find-play']) $(id).disabled = n === 0;
    if (SUPPORTED) {
      CSS.highlights.set('find', new Highlight(...this.matches));
      CSS.highlights.set('find-current', new Highlight(...(n ? [this.matches[this.at]] : [])));
    }
    if (scroll && n) {
      const node = this.matches[this.at].startContainer.parentElement;
      node.scrollIntoView({ block: 'center', behavior: 'instant' });
    }
  }

  /** The time of the current match: its word's, else its sentence's start. */
  currentTime() {
    if (this.at < 0) return null;
    const node = this.matches[this.at].startContainer.parentElement;
    const timed = node && node.closest('[data-start]');
    return timed ? Number(timed.dataset.start) : null;
  }

  playCurrent() {
    const t = this.currentTime();
    if (t !== null) this.onPlay(t);
  }
}
