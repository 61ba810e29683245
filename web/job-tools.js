'use strict';
// What a person does to a whole job or one of its slices: rename it, delete it (after asking), and send a
// slice to be transcribed again, by any worker or by one engine (asking first when that would replace their
// corrections), or call that off while it waits.

import { ask } from './dialog.js';
import { clock } from './format.js';

const $ = (id) => document.getElementById(id);

async function send(method, url, body) {
  try {
    const response = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { ok: response.ok, status: response.status, answer: await response.json().catch(() => ({})) };
  } catch {
    return { ok: false, status: 0, answer: { error: 'The server cannot be reached; try again.' } };
  }
}

export class JobTools {
  /**
   * @param {object} hooks
   * @param {() => object|null} hooks.job the job view shown now
   * @param {() => object[]} hooks.workers the connected workers
   * @param {(id: string, name: string) => void} hooks.onDeleted the job is gone
   * @param {(text: string) => void} hooks.announce
   */
  constructor({ job, workers, onDeleted, announce }) {
    Object.assign(this, { job, workers, onDeleted, announce });
    $('rename').addEventListener('click', () => this.openRename());
    $('rename-cancel').addEventListener('click', () => this.closeRename());
    $('rename-form').addEventListener('submit', (e) => { e.preventDefault(); this.rename(); });
    $('rename-input').addEventListener('keydown', (e) => { if (e.key === 'Escape') this.closeRename(); });
    $('delete').addEventListener('click', () => this.remove());
    $('slice-list').addEventListener('click', (e) => {
      const again = e.target.closest('[data-redo]');
      if (again) this.redo(Number(again.dataset.redo));
      const stop = e.target.closest('[data-cancel-redo]');
      if (stop) this.cancelRedo(Number(stop.dataset.cancelRedo));
    });
  }

  openRename() {
    const view = this.job();
    if (!view) return;
    $('rename-form').hidden = false;
    $('rename-error').hidden = true;
    $('rename-input').value = view.name;
    $('rename-input').focus();
    $('rename-input').select();
  }

  closeRename() {
    $('rename-form').hidden = true;
    $('rename').focus();
  }

  async rename() {
    const view = this.job();
    if (!view) return;
    const { ok, answer } = await send('PATCH', `/api/jobs/${view.id}`, { name: $('rename-input').value });
    if (!ok) {
      $('rename-error').textContent = answer.error || 'The server refused the name.';
      $('rename-error').hidden = false;
      return;
    }
    this.closeRename();
    this.announce(`Renamed to ${answer.name}.`);
  }

  async remove() {
    const view = this.job();
    if (!view) return;
    const sure = await ask({
      title: `Delete “${view.name}”?`,
      text: `Its recording (${clock(view.duration)}), its transcript and your corrections are removed from ` +
        'this server for good.',
      ok: 'Delete job',
      danger: true,
    });
    if (!sure) return;
    const { ok, answer } = await send('DELETE', `/api/jobs/${view.id}`);
    if (!ok) { this.announce(answer.error || 'The job could not be deleted.'); return; }
    this.onDeleted(view.id, view.name);
  }

  /** Ask which workers may take slice `index` again, then send it (and ask again before losing corrections). */
  async redo(index) {
    const view = this.job();
    const s = view && view.slices.find((x) => x.index === index);
    if (!s) return;
    const label = document.createElement('label');
    label.className = 'dialog-field';
    label.append('Transcribe with ');
    const select = document.createElement('select');
    select.id = 'redo-engine';
    const choices = [['', '', 'any worker']];
    for (const w of this.workers()) {
      if (!choices.some(([e, m]) => e === w.engine && m === w.model)) {
        choices.push([w.engine, w.model, [w.engine, w.model].filter(Boolean).join(' ')]);
      }
    }
    for (const [engine, model, text] of choices) {
      const option = document.createElement('option');
      option.value = JSON.stringify([engine, model]);
      option.textContent = text;
      select.append(option);
    }
    label.append(select);
    const go = await ask({
      title: `Transcribe slice ${index + 1} again?`,
      text: `${clock(s.start, true)}–${clock(s.end, true)} goes back to the workers; its new text replaces ` +
        'the old when it comes.',
      ok: 'Transcribe again',
      fields: [label],
    });
    if (!go) return;
    const [engine, model] = JSON.parse(select.value);
    const url = `/api/jobs/${view.id}/slices/${index}/redo`;
    let { ok, answer } = await send('POST', url, { engine, model });
    if (!ok && answer.corrected) {
      const replace = await ask({
        title: `Replace your corrections in slice ${index + 1}?`,
        text: answer.error.replace(/ Send .*$/, '') + ' Your corrected text will be lost.',
        ok: 'Replace my corrections',
        danger: true,
      });
      if (!replace) return;
      ({ ok, answer } = await send('POST', url, { engine, model, replace_corrections: true }));
    }
    this.announce(ok ? `Slice ${index + 1} is being transcribed again.`
      : answer.error || 'The slice could not be sent again.');
  }

  /** Call off transcribing slice `index` again: it keeps the text it had. */
  async cancelRedo(index) {
    const view = this.job();
    if (!view) return;
    const { ok, answer } = await send('DELETE', `/api/jobs/${view.id}/slices/${index}/redo`);
    this.announce(ok ? `Slice ${index + 1} keeps its text; it is no longer being transcribed again.`
      : answer.error || 'The slice could not be called back.');
  }
}
