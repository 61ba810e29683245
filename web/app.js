'use strict';
(function () {
  const socket = io();
  const $ = (id) => document.getElementById(id);
  let jobId = new URLSearchParams(location.search).get('job');

  function renderJob(job) {
    if (!job || job.id !== jobId) return;
    const p = job.progress;
    $('status').textContent = `${job.name}: ${job.status}, ${p.done} of ${p.total} slices done` +
      (job.note ? ` (${job.note})` : '') + (job.error ? ` — ${job.error}` : '');
    $('transcript').textContent = job.transcript;
    $('slices').replaceChildren(...job.slices.map((s) => {
      const li = document.createElement('li');
      li.className = s.status;
      li.textContent = `${s.start.toFixed(1)}–${s.end.toFixed(1)} s: ${s.status}` +
        (s.worker ? ` (${s.worker})` : '') + (s.text ? ` — ${s.text}` : '');
      return li;
    }));
  }

  function watch(id) {
    jobId = id;
    history.replaceState(null, '', `?job=${id}`);
    socket.emit('watch', { job: id }, renderJob);
  }

  socket.on('connect', () => { if (jobId) watch(jobId); });
  socket.on('job', renderJob);
  socket.on('workers', (workers) => {
    $('workers').replaceChildren(...workers.map((w) => {
      const li = document.createElement('li');
      li.textContent = `${w.name}: ${w.engine} ${w.model}, ${w.busy}/${w.slots} busy, ${w.slices_done} done`;
      return li;
    }));
  });

  $('upload').addEventListener('submit', async (event) => {
    event.preventDefault();
    const file = $('file').files[0];
    if (!file) { $('status').textContent = 'Choose a .wav file first.'; return; }
    const form = new FormData();
    form.append('audio', file);
    $('status').textContent = 'Uploading…';
    const response = await fetch('/api/jobs', { method: 'POST', body: form });
    const body = await response.json();
    if (!response.ok) { $('status').textContent = `Rejected: ${body.error}`; return; }
    watch(body.id);
  });

  fetch('/api/workers').then((r) => r.json()).then((b) => socket.listeners('workers')[0](b.workers));
})();
