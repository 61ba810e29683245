'use strict';
// Past jobs: this server's jobs, newest first, each with its state, length, age and first words; the one open
// is highlighted. A search box finds jobs by name or by words said (the server searches their text). The list
// shows the first few and says how many more there are, rather than scrolling inside itself.

import { JOB_STATUS_WORDS, ago, clock } from './format.js';

const $ = (id) => document.getElementById(id);
/** Jobs shown before "Show all". */
export const SHOWN = 8;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class PastJobs {
  constructor() {
    this.live = []; // the latest list the server broadcast
    this.found = null; // the jobs a search found (null: no search)
    this.currentId = null;
    this.expanded = false;
    let timer = 0;
    $('jobs-search').addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.search(), 250);
    });
    $('jobs-more').addEventListener('click', () => {
      this.expanded = !this.expanded;
      this.draw();
      if (this.expanded) $('jobs').querySelectorAll('a')[SHOWN]?.focus();
    });
  }

  get query() { return $('jobs-search').value.trim(); }

  /** The server's list changed (or the page fetched it); a search in progress is asked again. */
  show(jobs, currentId = this.currentId) {
    this.live = jobs;
    this.currentId = currentId;
    if (this.query) this.search();
    else this.draw();
  }

  /** Another job is open: highlight it. */
  setCurrent(id) {
    this.currentId = id;
    this.draw();
  }

  async search() {
    const query = this.query;
    if (!query) { this.found = null; this.draw(); return; }
    try {
      const response = await fetch(`/api/jobs?q=${encodeURIComponent(query)}`);
      if (!response.ok || query !== this.query) return;
      this.found = (await response.json()).jobs;
      this.draw();
    } catch {
      // The list stays as it was; the next broadcast searches again.
    }
  }

  draw() {
    const searching = this.found !== null && !!this.query;
    const jobs = searching ? this.found : this.live;
    const shown = this.expanded ? jobs : jobs.slice(0, SHOWN);
    $('jobs').replaceChildren(...shown.map((j) => this.item(j)));
    $('no-jobs').hidden = jobs.length > 0;
    $('no-jobs').textContent = searching ? `No job’s name or words hold “${this.query}”.`
      : 'None yet: record or upload something.';
    const more = $('jobs-more');
    more.hidden = jobs.length <= SHOWN;
    more.textContent = this.expanded ? 'Show fewer' : `Show all ${jobs.length} (${jobs.length - SHOWN} more)`;
    more.setAttribute('aria-expanded', String(this.expanded));
  }

  item(j) {
    const li = el('li', 'past-job');
    li.dataset.status = j.status;
    li.dataset.id = j.id;
    const link = el('a', '', j.name);
    link.title = j.name;
    link.href = `/?job=${encodeURIComponent(j.id)}`;
    if (j.id === this.currentId) {
      link.setAttribute('aria-current', 'page');
      li.classList.add('open');
    }
    const { done, total } = j.progress;
    const progress = j.status === 'done' || j.status === 'failed' ? '' : ` · ${done}/${total} slices`;
    const state = j.recording ? 'Recording' : JOB_STATUS_WORDS[j.status] || j.status;
    const meta = el('span', 'meta', `${state}${progress} · ${clock(j.duration)} · ${ago(j.created_at)}`);
    li.append(link);
    if (j.first_words) li.append(el('span', 'first-words', j.first_words));
    li.append(meta);
    return li;
  }
}
