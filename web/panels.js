'use strict';
// The workers panel (live, from the `workers` broadcast) and the command that starts a worker against this
// server. Past jobs: past-jobs.js.

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A word for a POSIX shell: quoted when it holds anything but safe characters. */
function shellWord(text) {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/** The shortest command that starts a worker against this very server, run from the repository root
 * (GET /api/worker-setup says what it needs). `tokenFile`: where this server keeps its generated worker token
 * (its own data folder, whatever --data-dir it was given); null when it was started with a token of its own,
 * which the command then asks for. `announced`: the server is announced on the LAN, so a worker there finds it
 * with no --server. `fingerprint`: a self-signed https server's certificate, which the worker must be told to
 * trust. */
export function workerCommand(tokenFile, { announced = false, fingerprint = null } = {}) {
  const token = tokenFile ? `SCATTERSCRIBE_TOKEN=$(cat ${shellWord(tokenFile)})`
    : 'SCATTERSCRIBE_TOKEN=<the token the server was started with>';
  const server = announced ? '' : ` --server ${location.origin}`;
  const trust = fingerprint ? ` --fingerprint ${fingerprint}` : '';
  return `${token} .venv/bin/python -m client${server}${trust}`;
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

/** Fill in the worker command wherever the page shows it, with a note when this server is loopback-only. */
export async function renderWorkerCommand() {
  let tokenFile = 'data/worker-token';
  let setup = {};
  try {
    const response = await fetch('/api/worker-setup');
    if (response.ok) {
      setup = await response.json();
      tokenFile = setup.token_file;
    }
  } catch {
    // The server's default folder, as the command read before the server could say.
  }
  for (const id of ['worker-command', 'worker-command-2']) $(id).textContent = workerCommand(tokenFile, setup);
  for (const where of document.querySelectorAll('.token-where')) {
    if (tokenFile) {
      const code = document.createElement('code');
      code.textContent = tokenFile;
      where.replaceChildren("the contents of the server's ", code);
    } else {
      where.textContent = 'the token the server was started with (SCATTERSCRIBE_TOKEN or [server] token)';
    }
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(location.hostname);
  $('waiting-host-note').textContent = loopback
    ? 'This address only works on this computer; for workers on other machines, start the server with ' +
      '--host 0.0.0.0 and use its network address (README: "Adding worker machines").'
    : '';
}
