'use strict';
// The page's wiring: one Socket.IO connection, the job shown (?job=<id> in the address, so it can be
// reopened), and the live workers and jobs lists. What each part draws lives in its own module.

import { copyText, JobView } from './job-view.js';
import { Intake } from './intake.js';
import { JobTools } from './job-tools.js';
import { renderWorkerCommand, renderWorkers } from './panels.js';
import { Captions } from './partial.js';
import { PastJobs } from './past-jobs.js';

const $ = (id) => document.getElementById(id);
const socket = window.io();
const state = { jobId: new URLSearchParams(location.search).get('job'), workers: [], jobs: [], pushedSinceWatch: false };

const said = { texts: [], timer: 0 };

/** Say something to screen readers. Texts said within a moment of each other are read as one, so a second
 * one never replaces the first before it is heard; the same text is never swallowed because it repeats. */
function announce(text) {
  said.texts.push(text);
  if (said.timer) return;
  const region = $('announcer');
  region.textContent = '';
  said.timer = setTimeout(() => {
    region.textContent = said.texts.join(' ');
    said.texts = [];
    said.timer = 0;
  }, 100);
}

const jobView = new JobView(announce);
const pastJobs = new PastJobs();
new JobTools({
  job: () => jobView.job,
  workers: () => state.workers,
  announce,
  onDeleted: (id, name) => {
    socket.emit('unwatch', { job: id });
    state.jobId = null;
    history.pushState({}, '', '/');
    jobView.showMissing(id);
    captions.clear();
    $('job').hidden = true;
    state.jobs = state.jobs.filter((j) => j.id !== id);
    pastJobs.show(state.jobs, null);
    announce(`Deleted ${name}.`);
    $('record').focus();
  },
});
// Tentative words of a live recording, drawn after the job card draws the transcript.
const captions = new Captions($('transcript-body'), $('transcript-tail'),
  { recordingHere: () => intake.recorder.recording });

function showJob(view) {
  jobView.render(view, state.workers);
  captions.render(view);
}

function watch(id) {
  state.pushedSinceWatch = false;
  socket.emit('watch', { job: id }, (view) => {
    if (id !== state.jobId) return;
    if (view) {
      // A push that came before this answer is newer than it (the server builds the answer first).
      if (!state.pushedSinceWatch) showJob(view);
    } else {
      jobView.showMissing(id);
      captions.clear();
    }
  });
}

/**
 * Show a job. `recording`: it is the page's own live recording, just started: focus stays on the Stop
 * button (keyboard users must reach it) and nothing is announced over "Recording started."
 */
function openJob(id, { push = true, recording = false } = {}) {
  if (state.jobId && state.jobId !== id) socket.emit('unwatch', { job: state.jobId });
  state.jobId = id;
  if (push) history.pushState({ job: id }, '', `/?job=${encodeURIComponent(id)}`);
  pastJobs.setCurrent(id);
  jobView.quietFor = recording ? id : null;
  if (socket.connected) watch(id);
  if (recording) return;
  $('job').focus({ preventScroll: true });
  $('job').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

function setConnection(kind, text) {
  $('connection').dataset.state = kind;
  $('connection-text').textContent = text;
}

async function refreshLists() {
  // Broadcasts sent while the page was disconnected are lost; fetch the current state once.
  try {
    const [workers, jobs] = await Promise.all([fetch('/api/workers'), fetch('/api/jobs')]);
    if (workers.ok) onWorkers((await workers.json()).workers);
    if (jobs.ok) onJobs((await jobs.json()).jobs);
  } catch {
    // The socket's own reconnect will bring fresh lists.
  }
}

function onWorkers(workers) {
  state.workers = workers;
  renderWorkers(workers);
  jobView.renderWaiting(workers);
}

function onJobs(jobs) {
  state.jobs = jobs;
  pastJobs.show(jobs, state.jobId);
  for (const job of jobs) intake.jobChanged(job);
}

socket.on('connect', () => {
  setConnection('connected', 'Connected, live');
  if (state.jobId) watch(state.jobId);
  refreshLists();
});
socket.on('disconnect', () => setConnection('disconnected', 'Connection lost; reconnecting…'));
socket.on('connect_error', (error) => {
  const needsToken = /access token/.test(String(error && error.message));
  setConnection('disconnected', needsToken
    ? 'This server needs its access token: open the page as /?access_token=TOKEN'
    : 'Cannot reach the server; retrying…');
});
/**
 * A push carries only the slices that changed since the job's last push (`slice_changes`): put them in place
 * in the slices the page holds. Null when the page holds no view of that job yet; it asks for one again.
 */
function withChanges(pushed, held) {
  if (!pushed.slice_changes) return pushed;
  if (!held || held.id !== pushed.id) return null;
  const slices = held.slices.slice(0, pushed.slice_count);
  for (const s of pushed.slices) slices[s.index] = s;
  return { ...pushed, slices };
}

socket.on('job', (pushed) => {
  if (pushed.id !== state.jobId) return;
  const view = withChanges(pushed, jobView.job);
  if (!view) {
    watch(pushed.id); // changes came before the view they change: ask for the whole job
    return;
  }
  state.pushedSinceWatch = true;
  showJob(view);
  intake.jobChanged(view);
  // The server broadcasts the jobs list when a job starts, grows or ends; progress in between comes from
  // here. The list shows the same fields as the card, so neither lags behind the other.
  const entry = state.jobs.find((j) => j.id === view.id);
  const shown = ['status', 'recording', 'duration', 'name'];
  if (entry && (shown.some((k) => entry[k] !== view[k]) || entry.progress.done !== view.progress.done ||
      entry.progress.total !== view.progress.total)) {
    for (const k of shown) entry[k] = view[k];
    entry.progress = { ...view.progress };
    pastJobs.show(state.jobs, state.jobId);
  }
});
socket.on('partial', ({ job, partial }) => captions.update(job, partial));
socket.on('workers', onWorkers);
socket.on('jobs', onJobs);

window.addEventListener('popstate', () => {
  const id = new URLSearchParams(location.search).get('job');
  if (id) openJob(id, { push: false });
});

document.addEventListener('click', async (event) => {
  const button = event.target.closest('[data-copy]');
  if (!button) return;
  const ok = await copyText($(button.dataset.copy).textContent);
  announce(ok ? 'Command copied.' : 'The browser refused to copy; select the command.');
  button.textContent = ok ? 'Copied ✓' : 'Copy failed';
  setTimeout(() => { button.textContent = 'Copy command'; }, 2000);
});

const intake = new Intake({ onJob: (id, opts) => openJob(id, opts), announce, socket });
// For the browser's console (and the tests that cut the connection on purpose).
window.scatterscribe = { socket, intake };
renderWorkerCommand();
