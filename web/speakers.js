'use strict';
// Who speaks: the job's speakers above its transcript, each in its colour and with its name, how long they
// speak, and a Rename button; or, when the job has no speaker labels, the sentence that says why. The
// transcript's paragraphs show their speaker in the same colour (transcript.js; the server breaks paragraphs
// where the speaker changes). A new name is stored on the server (PATCH /api/jobs/<id>/speakers/<n>) and used in
// every download; the job's push then redraws the page.

import { clock } from './format.js';

const $ = (id) => document.getElementById(id);
/** Colours in the style sheet: speaker N is drawn in colour ((N - 1) mod COLOURS) + 1. */
export const COLOURS = 6;

export function colourOf(id) {
  return String(((Number(id) - 1) % COLOURS + COLOURS) % COLOURS + 1);
}

export class SpeakerPanel {
  /**
   * @param {object} hooks
   * @param {() => object|null} hooks.job the job view shown now
   * @param {(text: string) => void} hooks.announce
   */
  constructor({ job, announce }) {
    Object.assign(this, { job, announce });
    this.renaming = null; // the id of the speaker being renamed
    $('speaker-list').addEventListener('click', (e) => {
      const button = e.target.closest('[data-rename-speaker]');
      if (button) this.open(Number(button.dataset.renameSpeaker));
    });
    $('speaker-rename-form').addEventListener('submit', (e) => { e.preventDefault(); this.save(); });
    $('speaker-rename-cancel').addEventListener('click', () => this.close());
    $('speaker-rename-input').addEventListener('keydown', (e) => { if (e.key === 'Escape') this.close(); });
  }

  render(view) {
    const speakers = view.speakers || { status: 'none', list: [], note: '' };
    const list = speakers.list || [];
    const panel = $('speakers');
    panel.hidden = !list.length && !speakers.note;
    panel.dataset.status = speakers.status;
    const items = list.map((s) => {
      const li = document.createElement('li');
      li.dataset.speaker = s.id;
      const swatch = document.createElement('span');
      swatch.className = 'speaker-swatch';
      swatch.dataset.colour = colourOf(s.id);
      swatch.setAttribute('aria-hidden', 'true');
      const name = document.createElement('span');
      name.className = 'speaker-name';
      name.dataset.colour = colourOf(s.id);
      name.textContent = s.name;
      const time = document.createElement('span');
      time.className = 'speaker-time';
      time.textContent = `${clock(s.seconds)} of speech`;
      li.append(swatch, name, ' ', time);
      if (speakers.method) {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'button small secondary';
        button.dataset.renameSpeaker = s.id;
        button.textContent = 'Rename';
        button.setAttribute('aria-label', `Rename ${s.name}`);
        li.append(' ', button);
      }
      return li;
    });
    $('speaker-list').replaceChildren(...items);
    $('transcript-body').classList.toggle('has-speakers', list.length > 0); // a wider margin for the names
    let note = speakers.note || '';
    if (list.length && !speakers.final) note = [note, 'Labels may still change until the job is done.']
      .filter(Boolean).join(' ');
    if (list.length && speakers.method === 'channel') note = [note, 'Told apart by the recording\'s channels.']
      .filter(Boolean).join(' ');
    $('speakers-note').textContent = note ? note.charAt(0).toUpperCase() + note.slice(1) : '';
    $('speakers-note').hidden = !note;
    if (this.renaming !== null && !list.some((s) => s.id === this.renaming)) this.close(false);
  }

  open(id) {
    const view = this.job();
    const speaker = view && (view.speakers.list || []).find((s) => s.id === id);
    if (!speaker) return;
    this.renaming = id;
    $('speaker-rename-form').hidden = false;
    $('speaker-rename-error').hidden = true;
    $('speaker-rename-label').textContent = `New name for ${speaker.name}`;
    $('speaker-rename-input').value = speaker.name;
    $('speaker-rename-input').focus();
    $('speaker-rename-input').select();
  }

  close(refocus = true) {
    const id = this.renaming;
    this.renaming = null;
    $('speaker-rename-form').hidden = true;
    const button = refocus && id !== null && document.querySelector(`[data-rename-speaker="${id}"]`);
    if (button) button.focus();
  }

  async save() {
    const view = this.job();
    if (!view || this.renaming === null) return;
    const id = this.renaming;
    let ok = false;
    let answer = {};
    try {
      const response = await fetch(`/api/jobs/${view.id}/speakers/${id}`, {
        method: 'PATCH', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: $('speaker-rename-input').value }),
      });
      ok = response.ok;
      answer = await response.json().catch(() => ({}));
    } catch {
      answer = { error: 'The server cannot be reached; try again.' };
    }
    if (!ok) {
      $('speaker-rename-error').textContent = answer.error || 'The server refused the name.';
      $('speaker-rename-error').hidden = false;
      return;
    }
    this.close();
    this.announce(`Speaker ${id} is now called ${answer.name}.`);
  }
}
