"""Tentative text of live recordings on this server: the adapter around ``tentative.py``'s rules.

After each chunk of a live recording (``live_jobs.py`` calls :meth:`LiveCaptions.advance`), the recording's
open part is offered to its :class:`tentative.Tentative`; when a request is due and a worker has a free slot, the
open part's audio is read from the job's growing WAV file and sent to that worker (``tentative {id, job, audio,
prefix}`` on ``/worker``). Its answer (``tentative_text {id, text}``) becomes the job's ``partial`` when it is
current: kept in ``Coordinator.partials`` (so every job view carries it; never stored, never in a download) and
pushed to the job's pages as ``partial {job, partial}``. A slice that closes, or the end of the recording, makes
it go; the requests still out are called back with ``cancel``.

Every method runs under the coordinator's lock, on the event loop; reading the open part (at most one slice's
audio, about 1 MB) once a second per recording is the only I/O.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from . import audio
from .coordinator import Coordinator
from .live import LiveSession
from .payloads import TentativeText
from .scheduler import Requirement
from .tentative import Tentative, TentativeOptions, pick_worker, speech_end

log = logging.getLogger("scatterscribe")


class LiveCaptions:
    """The tentative text of every live recording in progress, by job id."""

    def __init__(self, coordinator: Coordinator, opts: TentativeOptions,
                 clock: Callable[[], float] = time.monotonic):
        self.coordinator = coordinator
        self.opts = opts
        self.clock = clock
        self.recordings: dict[str, Tentative] = {}
        self.requirements: dict[str, Requirement] = {}  # job id → the workers its job may use (read once)

    def advance(self, job_id: str, session: LiveSession) -> None:
        """After a chunk: follow the open part, and send a request if one is due and a worker may take it."""
        coord = self.coordinator
        with coord.lock:
            tentative = self.recordings.get(job_id)
            if tentative is None:
                tentative = self.recordings[job_id] = Tentative(self.opts)
                job = coord.store.get_job(job_id)
                self.requirements[job_id] = Requirement(job.engine, job.model) if job else Requirement()
            splitter = session.splitter
            open_start = splitter.open_frame * splitter.frame_len
            if open_start != tentative.open_start:
                self._drop(job_id, tentative.moved(open_start), push=True)
            now = self.clock()
            worker_id = pick_worker(coord.scheduler, self.requirements[job_id], now, prefer=tentative.holder())
            if worker_id is None:
                return  # no free slot: no tentative text, and nothing waits for one
            speech_to = speech_end(splitter.levels_db, splitter.open_frame, splitter.threshold_db,
                                   splitter.frame_len)
            worker = coord.scheduler.workers[worker_id].info
            request = tentative.due(now, open_start, session.samples_out, speech_to, worker.max_slice_s)
            if request is None:
                return
            try:
                samples = audio.PcmFile(coord.audio_path(job_id))[request.start:request.end]
            except (OSError, ValueError) as exc:  # the job was deleted meanwhile: nothing to caption
                log.warning("job %s: cannot read its open part for tentative text: %s", job_id, exc)
                return
            coord.emit("tentative", {"id": request.id, "job": job_id, "audio": audio.wav_bytes(samples),
                                     "prefix": request.prefix}, to=worker_id, namespace="/worker")
            tentative.sent(request, worker_id, now, speech_to)

    def closing(self, job_id: str, session: LiveSession) -> None:
        """Slices have closed and are about to be added to the job (its push follows): the tentative text of
        the part they cover goes."""
        with self.coordinator.lock:
            tentative = self.recordings.get(job_id)
            if tentative is not None:
                open_start = session.splitter.open_frame * session.splitter.frame_len
                self._drop(job_id, tentative.moved(open_start), push=False)

    def ended(self, job_id: str) -> None:
        """The recording ended (or its job was deleted): no tentative text any more. The job push that
        follows the end carries ``partial: null``."""
        with self.coordinator.lock:
            tentative = self.recordings.pop(job_id, None)
            self.requirements.pop(job_id, None)
            if tentative is not None:
                self._drop(job_id, tentative.finish(), push=False)

    def answered(self, worker_id: str, answer: TentativeText) -> None:
        """A worker's ``tentative_text``; shown if current (see ``Tentative.answered``)."""
        job_id = answer.job
        with self.coordinator.lock:
            tentative = self.recordings.get(job_id)
            if tentative is None:
                return
            changed = tentative.answered(worker_id, answer.id, answer.text, answer.elapsed_s)
            if tentative.partial is not None:
                self.coordinator.partials[job_id] = tentative.partial.view()
            else:
                self.coordinator.partials.pop(job_id, None)
            if changed:
                self._push(job_id)

    def _drop(self, job_id: str, out: list[tuple[str, str]], push: bool) -> None:
        """Call back the requests still out and remove the job's partial (telling its pages if ``push``)."""
        for worker_id, request_id in out:
            self.coordinator.emit("cancel", {"lease": request_id}, to=worker_id, namespace="/worker")
        if self.coordinator.partials.pop(job_id, None) is not None and push:
            self._push(job_id)

    def _push(self, job_id: str) -> None:
        self.coordinator.emit("partial", {"job": job_id, "partial": self.coordinator.partials.get(job_id)},
                              to=f"job:{job_id}", namespace="/")
