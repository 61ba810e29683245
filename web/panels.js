'use strict';
// The side panels: connected workers (live, from the `workers` broadcast) and this server's past jobs.

import { JOB_STATUS_WORDS, ago, clock } from './format.js';

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The command that starts a worker against this very server, run from the repository root; as written it
 * reads the token the server generated in its default data folder. */
export function workerCommand() {
  const token = 'SCATTERSCRIBE_TOKEN=$(cat data/worker-token)';
  return `${token} .venv/bin/python -m client --server ${location.origin}`;
}

function stat(label, value, title) {
  const box = el('div');
  const dd = el('dd', '', value);
  if (title) dd.title = title;
  box.append(el('dt', '', label), dd);
  return box;
}

/** List every connected worker; when there is none, say how to start one. */
export function renderWorkers(workers) {
  const items = workers.map((w) => {
    const li = el('li', 'worker');
    li.dataset.name = w.name;
    li.dataset.busy = w.busy > 0 ? 'true' : 'false';
    const head = el('div', 'worker-head');
    const dot = el('span', 'live-dot');
    dot.setAttribute('aria-hidden', 'true');
    const state = w.busy > 0 ? `working (${w.busy} of ${w.slots})` : 'idle';
    head.append(dot, el('strong', 'worker-name', w.name), el('span', 'worker-state', state));
    const model = el('p', 'worker-model', [w.engine, w.model].filter(Boolean).join(' · '));
    const stats = el('dl', 'worker-stats');
    stats.append(
      stat('Slots', String(w.slots)),
      stat('Slices done', String(w.slices_done)),
      stat('Speed', w.speed ? `${w.speed.toFixed(1)}× real time` : 'not measured yet',
        'seconds of audio transcribed per second, measured on its slices so far'),
    );
    li.append(head, model, stats);
    return li;
  });
  $('workers').replaceChildren(...items);
  $('workers-count').textContent = workers.length ? `(${workers.length} connected)` : '';
  $('no-workers').hidden = workers.length > 0;
}

/** The recent jobs, newest first, each a link that reopens it. */
export function renderJobs(jobs, currentId) {
  const items = jobs.map((j) => {
    const li = el('li', 'past-job');
    li.dataset.status = j.status;
    const link = el('a', '', j.name);
    link.title = j.name;
    link.href = `/?job=${encodeURIComponent(j.id)}`;
    if (j.id === currentId) link.setAttribute('aria-current', 'page');
    const { done, total } = j.progress;
    const progress = j.status === 'done' || j.status === 'failed' ? '' : ` · ${done}/${total} slices`;
    const state = j.recording ? 'Recording' : JOB_STATUS_WORDS[j.status] || j.status;
    const meta = el('span', 'meta', `${state}${progress} · ${clock(j.duration)} · ${ago(j.created_at)}`);
    li.append(link, meta);
    return li;
  });
  $('jobs').replaceChildren(...items);
  $('no-jobs').hidden = jobs.length > 0;
}

/** Fill in the worker command wherever the page shows it, with a note when this server is loopback-only. */
export function renderWorkerCommand() {
  for (const id of ['worker-command', 'worker-command-2']) $(id).textContent = workerCommand();
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(location.hostname);
  $('waiting-host-note').textContent = loopback
    ? 'This address only works on this computer; for workers on other machines, start the server with ' +
      '--host 0.0.0.0 and use its network address (README: "Adding worker machines").'
    : '';
}
