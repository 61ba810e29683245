'use strict';
// Correcting a sentence in place: it becomes editable where it stands; Enter (or leaving it) saves it to the
// server, Esc cancels, and a corrected sentence can be put back as the worker wrote it. The server keeps the
// worker's text and refuses an edit made on a stale page (another page changed the sentence first): the page
// then says so, shows what it now reads, and keeps the person's words to save again if they still apply.

import { clock } from './format.js';

const $ = (id) => document.getElementById(id);

function button(text, className) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = `button small ${className}`;
  b.textContent = text;
  return b;
}

export class SegmentEditor {
  /**
   * @param {object} parts
   * @param {import('./transcript.js').TranscriptView} parts.transcript
   * @param {() => object|null} parts.job the job view shown now
   * @param {(answer: object) => void} parts.onSaved the server took a correction ({slice, segment, text, edited,
   *   original}): show it at once, before the job's next push
   * @param {(text: string) => void} parts.announce
   */
  constructor({ transcript, job, onSaved, announce }) {
    Object.assign(this, { transcript, job, onSaved, announce });
    this.active = null;
  }

  /** Start correcting sentence `span` (an element of the transcript with data-slice and data-seg). */
  start(span) {
    const view = this.job();
    if (this.active || !view) return;
    const slice = view.slices.find((s) => s.index === Number(span.dataset.slice));
    const n = Number(span.dataset.seg);
    const segment = slice && slice.segments[n];
    if (!segment) return;
    this.transcript.editing = true;
    const edited = !!(slice.edits && slice.edits[String(n)]);
    this.active = { span, job: view.id, slice: slice.index, n, was: segment.text || '', edited };
    this.hideMessage();
    span.textContent = segment.text || '';
    span.classList.add('editing');
    span.contentEditable = 'plaintext-only';
    span.setAttribute('role', 'textbox');
    span.setAttribute('aria-label',
      `Correct the sentence at ${clock(Number(span.dataset.start))}; Enter saves, Esc cancels`);
    const bar = document.createElement('span');
    bar.className = 'edit-bar';
    const save = button('Save', '');
    const cancel = button('Cancel', 'secondary');
    bar.append(save, cancel);
    if (edited) {
      const restore = button('Put back the worker’s text', 'secondary');
      restore.addEventListener('click', () => this.save({ restore: true }));
      bar.append(restore);
    }
    save.addEventListener('click', () => this.save());
    cancel.addEventListener('click', () => this.finish(false));
    // Leaving the sentence saves it, unless the focus went to its own buttons.
    span.addEventListener('focusout', this.onBlur = (e) => {
      if (!bar.contains(e.relatedTarget) && this.active && !this.saving) this.save();
    });
    span.addEventListener('keydown', this.onKey = (e) => {
      if (e.key === 'Enter') { e.preventDefault(); this.save(); }
      if (e.key === 'Escape') { e.preventDefault(); this.finish(false); }
    });
    span.after(bar);
    this.active.bar = bar;
    span.focus();
    const range = document.createRange();
    range.selectNodeContents(span);
    range.collapse(false);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  /** Send the correction (or, with `restore`, the request to put the worker's text back). */
  async save({ restore = false } = {}) {
    const a = this.active;
    if (!a || this.saving) return;
    const text = a.span.textContent.replace(/\s+/g, ' ').trim();
    if (!restore && text === a.was.trim()) { this.finish(false); return; }
    this.saving = true;
    let response;
    let answer = {};
    try {
      response = await fetch(`/api/jobs/${a.job}/slices/${a.slice}/segments/${a.n}`, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(restore ? { restore: true, was: a.was } : { text, was: a.was }),
      });
      answer = await response.json().catch(() => ({}));
    } catch {
      this.saving = false;
      this.showMessage('The correction could not be sent: the server cannot be reached. It is still here; ' +
        'press Enter to try again.');
      return;
    }
    this.saving = false;
    if (response.ok) {
      this.onSaved(answer); // drawn once editing ends, just below
      this.finish(true);
      this.announce(restore ? 'The worker’s text is back.' : 'Correction saved.');
    } else if (response.status === 409 && typeof answer.current === 'string') {
      // Someone else changed it: keep this person's words, and base a second save on what it reads now.
      a.was = answer.current;
      this.showMessage(`${answer.error} Your version is still in the box: press Enter to save it over theirs, ` +
        'or Esc to keep theirs.');
      a.span.focus();
    } else {
      this.showMessage(answer.error || `The server refused the correction (${response.status}).`);
      a.span.focus();
    }
  }

  /** Stop editing; `saved`: the text went to the server (else the sentence is drawn as it was). */
  finish(saved) {
    const a = this.active;
    if (!a) return;
    this.active = null;
    a.span.removeEventListener('focusout', this.onBlur);
    a.span.removeEventListener('keydown', this.onKey);
    a.span.contentEditable = 'false';
    a.span.removeAttribute('role');
    a.span.removeAttribute('aria-label');
    a.bar.remove();
    if (!saved) this.hideMessage();
    this.transcript.editing = false;
    this.transcript.focusKey = `${a.slice}:${a.n}`;
    this.transcript.flush();
    const again = this.transcript.root.querySelector(`.seg[data-key="${a.slice}:${a.n}"]`);
    if (again) again.focus({ preventScroll: true });
  }

  showMessage(text) {
    $('edit-message').textContent = text;
    $('edit-message').hidden = false;
  }

  hideMessage() {
    $('edit-message').hidden = true;
    $('edit-message').textContent = '';
  }
}
