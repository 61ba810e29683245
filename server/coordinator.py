"""The one place where the store, the scheduler and the sockets meet.

HTTP and Socket.IO handlers call these methods and nothing else; the methods keep the store (what survives a
restart) and the scheduler (who holds what right now) in step. Each public method is one operation
(``Pushes.operation``): it holds the lock, so a result, a disconnect and the reaper never interleave halfway,
and what it changed is pushed to the pages once, when it ends. A job's in-memory state while it runs is one
object (``running.RunningJob``); how a recording is cut is in ``planning`` and ``replan``; a job's status
follows from its slices' (``states.job_status``).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from . import planning, redo, replan, speakers, views
from .config import Settings
from .dispatcher import NO_SPEECH, Dispatcher
from .ids import is_job_id, new_job_id
from .paths import inside
from .payloads import Result, SliceFailure
from .pushes import Emitter, Pushes
from .records import JobRecord, SliceRecord
from .running import RunningJobs
from .scheduler import Requirement, Scheduler, WorkerInfo
from .speaker_jobs import SpeakerLabels
from .states import JobStatus, SliceStatus
from .store import Store

log = logging.getLogger("scatterscribe")



class JobError(ValueError):
    """A request about a job that cannot be honoured (the message is for the user)."""


class Coordinator:
    def __init__(self, settings: Settings, store: Store, emit: Emitter,
                 run_blocking: Callable[..., Any] = lambda fn, *a: fn(*a),
                 clock: Callable[[], float] = time.monotonic, spawn: Callable[..., Any] | None = None,
                 sleep: Callable[[float], Any] | None = None):
        self.settings = settings
        self.store = store
        self.emit = emit
        self.run_blocking = run_blocking
        self.clock = clock
        sched = settings.scheduler
        self.scheduler = Scheduler(lease_timeout_s=sched.lease_timeout_s, max_attempts=sched.max_attempts,
                                   straggler_factor=sched.straggler_factor, straggler_min_s=sched.straggler_min_s,
                                   slice_timeout_s=sched.slice_timeout_s)
        self.lock = threading.RLock()
        self.pushes = Pushes(emit, self, self.lock, clock, settings.server.push_interval_s, spawn, sleep)
        self.jobs_dir = settings.data_path / "jobs"
        self.uploads_dir = settings.data_path / "uploads"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.running = RunningJobs(self.audio_path)
        self._preparing: dict[str, int] = {}  # job id → idle slots an upload being decoded and split counts on
        self.stopped = False  # set by stop(): nothing more is handed out
        self.speakers = SpeakerLabels(self, spawn, sleep)  # labels worked out in the background (``spawn``)
        self.dispatcher = Dispatcher(settings, store, self.scheduler, self.running, self.pushes, emit, clock,
                                     self.speakers)
        self.replanner = replan.Replanner(settings.splitter, store, self.scheduler, self.dispatcher, run_blocking,
                                          self.audio_path)
        self.partials: dict[str, dict[str, Any]] = {}  # live job id → its tentative text (``live_captions``)
        #: Called with a job's id, under the lock, when it is deleted (a live recording of it ends: ``live_jobs``).
        self.on_delete: list[Callable[[str], None]] = []

    def _op(self):
        """One operation: the lock, and one push of what it changed when it ends (``pushes``)."""
        return self.pushes.operation()

    # --- jobs ------------------------------------------------------------------------------------------------

    def new_upload_path(self) -> tuple[str, Path]:
        """A fresh job id and the server-chosen path its upload is written to (never a client's name)."""
        job_id = new_job_id()
        return job_id, inside(self.uploads_dir, f"{job_id}.wav")

    def job_dir(self, job_id: str) -> Path:
        """The folder of a job's files, for a well-formed id only (:mod:`ids`), provably inside jobs/."""
        if not is_job_id(job_id):
            raise JobError(f"no job {job_id!r}: a job id is 16 hex digits")
        return inside(self.jobs_dir, job_id)

    def audio_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "audio.wav"

    def create_job(self, job_id: str, upload: Path, name: str, requirement: Requirement,
                   source: str = "upload", speaker_count: int | None = None) -> JobRecord:
        """Decode and split an upload (off the event loop), store the job, queue its slices. ``speaker_count``:
        how many people speak, when the user says (else the speaker labels estimate it)."""
        job_dir = self.job_dir(job_id)
        job_dir.mkdir()
        server = self.settings.server
        try:
            with self.lock:
                # Idle slots this job may cut finer for: those no queued slice will take and no upload being
                # prepared right now has counted on (it will fill them), so uploads that arrive together do
                # not each cut for the same idle slots.
                idle = max(0, self.scheduler.idle_decoders_for_new_job(requirement) - sum(self._preparing.values()))
                self._preparing[job_id] = idle
                workers = [s.info for s in self.scheduler.workers.values()]
                opts = planning.fit_to_workers(
                    planning.cutting(self.settings.splitter, self.settings.guard, workers, requirement),
                    self.scheduler.longest_slice_s(requirement))
            prepared = self.run_blocking(planning.prepare_audio, upload, job_dir / "audio.wav", opts,
                                         server.max_duration_min * 60, idle)
        except BaseException:
            with self.lock:
                self._preparing.pop(job_id, None)
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        finally:
            upload.unlink(missing_ok=True)
        source_format = prepared.converted.source
        job = JobRecord(
            id=job_id, name=name, source=source, created_at=time.time(), duration=prepared.converted.duration_s,
            engine=requirement.engine, model=requirement.model, slices=planning.slice_records(prepared.slices),
            stats={"decode_s": round(prepared.decode_s, 4), "split_s": round(prepared.split_s, 4),
                   "threshold_db": round(prepared.threshold_db, 1), "input": source_format.describe()})
        by_channel = prepared.channel_turns if speaker_count in (None, source_format.channels) else None
        job.speakers = speakers.initial_state(speaker_count, by_channel)
        if not job.slices:
            job.status, job.note, job.finished_at = JobStatus.DONE, NO_SPEECH, time.time()
        try:
            self.open_job(job, last_round=idle)
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)  # nothing was queued: the store write came first
            raise
        finally:
            with self.lock:  # its slices are queued (and handed out) now: they count for themselves
                self._preparing.pop(job_id, None)
        log.info("job %s: %s, %.1f s, %d slices (decode %.3f s, split %.3f s)", job.id,
                 source_format.describe(), job.duration, len(job.slices), prepared.decode_s, prepared.split_s)
        return job

    def open_job(self, job: JobRecord, last_round: int = 0) -> None:
        """Store a new job, queue its slices (the last ``last_round`` longest first) and tell the pages."""
        job.speakers = job.speakers or speakers.initial_state(None)
        with self._op():
            self.store.create_job(job)
            self.dispatcher.queue(job, last_round=last_round)
            self.pushes.job(job.id)
            self.pushes.jobs()
            self.dispatch()

    def extend_job(self, job_id: str, slices: list[planning.splitter.Slice], duration: float) -> bool:
        """Add slices that a live recording has just closed (their audio is already on disk; none when only its
        length grew) and scatter them at once; store its length so far and push the job and the jobs list, so
        every page shows how long it is. False when the job is gone (deleted while recording)."""
        with self._op():
            found = self.store.job_counts(job_id)
            if found is None:
                return False
            job, counts = found
            self.store.update_job(job_id, duration=duration)
            if slices:
                job.slices = planning.slice_records(slices, first=sum(counts.values()))
                self.store.add_slices(job_id, job.slices)
                self.running[job_id].audio_grew()  # read before the file grew: too short for the new slices
                self.dispatcher.queue(job)
                self.dispatch()
            self.dispatcher.settle(job_id)
            self.pushes.jobs()  # the past-jobs lists: its length and slice count
            return True

    def end_recording(self, job_id: str, duration: float, stats: dict[str, Any]) -> None:
        """A live recording is complete: the job finishes like an upload once its slices are done."""
        with self._op():
            found = self.store.job_counts(job_id)
            if found is None:
                return
            job, counts = found
            self.store.update_job(job_id, recording=False, duration=duration, stats={**job.stats, **stats})
            if not counts:
                self.store.update_job(job_id, status=JobStatus.DONE, note=NO_SPEECH, finished_at=time.time())
            self.dispatcher.settle(job_id)
            self.pushes.jobs()

    def transcribe_again(self, job_id: str, index: int, request: redo.Redo) -> None:
        """Send a done or failed slice to be transcribed again (``redo``); its old text stays until the new
        one comes. Raises ``corrections.Refused`` when it may not be (no connected worker can take it, say)."""
        with self._op():
            job, s = self._slice(job_id, index)
            redo.check(s, request, self.scheduler, redo.wanted(job, request))
            values = redo.queued(s, request.asked)
            self.store.update_slice(job_id, index, **values)
            s = replace(s, **values)
            self.dispatcher.queue(replace(job, slices=[s]))
            log.info("job %s: slice %d sent to be transcribed again%s", job_id, index,
                     f" by {request.asked.engine} {request.asked.model}".rstrip() if s.asked_engine or
                     s.asked_model else "")
            self.dispatcher.settle(job_id)
            self.pushes.jobs()
            self.dispatch()

    def cancel_redo(self, job_id: str, index: int) -> None:
        """Call off transcribing a slice again: it goes back to what it was (``redo.cancelled``), and a worker
        holding it is told to drop it. Raises ``corrections.Refused`` when it is not being transcribed again."""
        with self._op():
            _, s = self._slice(job_id, index)
            values = redo.cancelled(s)
            self.store.update_slice(job_id, index, **values)
            self.dispatcher.unqueue(job_id, index)
            log.info("job %s: slice %d is no longer transcribed again", job_id, index)
            self.dispatcher.settle(job_id)
            self.pushes.jobs()

    def _slice(self, job_id: str, index: int) -> tuple[JobRecord, SliceRecord]:
        """A job and one of its slices; ``corrections.Refused`` (404) when there is no such job or slice."""
        job = self.store.get_job(job_id)
        s = None if job is None else next((s for s in job.slices if s.index == index), None)
        if job is None or s is None:
            raise redo.Refused(404, f"no job {job_id!r}" if job is None else
                               f"job {job_id} has no slice {index}: it has {len(job.slices)} (numbered from 0)")
        return job, s

    def job_changed(self, job_id: str, jobs_list: bool = True) -> None:
        """Something a person changed (a correction, a new name), or the job's speakers: push the job to its
        pages and (unless not ``jobs_list``) the jobs list to every page."""
        with self._op():
            self.pushes.job(job_id)
            if jobs_list:
                self.pushes.jobs()

    def resume(self) -> int:
        """After a restart: queue again every slice that was not finished (finished ones are kept as they are),
        bring job states up to date, and remove uploads and folders that never became jobs."""
        with self._op():
            jobs = self.store.unfinished_jobs()
            for job in jobs:
                for s in job.slices:
                    if s.status == SliceStatus.LEASED:  # its worker's connection died with the old server
                        s.status, s.attempts = SliceStatus.QUEUED, max(0, s.attempts - 1)
                        self.store.update_slice(job.id, s.index, status=s.status, worker="", attempts=s.attempts)
                self.dispatcher.queue(job)
                self.dispatcher.settle(job.id)
            everything = [job for job, _ in self.store.list_jobs(limit=1_000_000)]
            known = {job.id for job in everything}
            for job in everything:  # the server stopped before a finished job's speakers were final
                if job.status.finished and job.speakers.get("method") == "voice" and not job.speakers.get("final"):
                    self.speakers.changed(job.id)
            for path in self.uploads_dir.iterdir():
                path.unlink()
            for path in self.jobs_dir.iterdir():
                if path.name not in known:
                    shutil.rmtree(path, ignore_errors=True)
            if jobs:
                log.info("resumed %d unfinished job(s)", len(jobs))
            return len(jobs)

    def delete_job(self, job_id: str) -> bool:
        """Remove a job, its files and any slices still out; False when there is no such job (nothing is
        touched)."""
        if not is_job_id(job_id):
            return False
        with self._op():
            found = self.store.delete_job(job_id)  # first: if it fails, the job is still whole and still queued
            for hook in self.on_delete:
                hook(job_id)
            self.dispatcher.unqueue(job_id)
            self.running.drop(job_id)
            self.dispatcher.unsaved.discard(job_id)
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            self.pushes.jobs()
            return found

    # --- fitting waiting slices to the workers -------------------------------------------------------------

    def replan_unservable(self) -> int:
        """Cut again the queued slices no connected worker takes (``replan``); how many jobs were re-cut."""
        return self.replanner.run()

    # --- workers ---------------------------------------------------------------------------------------------

    def worker_connected(self, worker_id: str, info: WorkerInfo) -> None:
        with self._op():
            self.scheduler.add_worker(worker_id, info, self.clock())
            log.info("worker %s connected: %s %s, %d slot(s)", info.name, info.engine, info.model, info.slots)
            self._workers_changed()

    def worker_disconnected(self, worker_id: str) -> None:
        with self._op():
            state = self.scheduler.workers.get(worker_id)
            outcomes = self.scheduler.remove_worker(worker_id, self.clock())
            if state is not None:
                log.info("worker %s disconnected; %d slice(s) back to the queue", state.info.name, len(outcomes))
            self.dispatcher.apply(outcomes)
            self._workers_changed()
            self.dispatch()

    def worker_leaving(self, worker_id: str, leases: tuple[str, ...]) -> int:
        """A worker that is stopping hands back the slices it holds: they go back to the head of the queue at
        once, the try not counted, and the worker gets nothing more. Returns how many it gave back."""
        with self._op():
            state = self.scheduler.workers.get(worker_id)
            if state is None:
                return 0
            mine = [lid for lid in dict.fromkeys(leases) if lid in state.leases]
            # A lease it did not list (sent while it was stopping) goes back too: dropping the worker with it
            # held left that slice 'leased' in the store, with no worker, for ever.
            everything = [*mine, *sorted(set(state.leases) - set(mine))]
            self.dispatcher.apply([self.scheduler.release(lid, "its worker stopped") for lid in everything])
            self.scheduler.remove_worker(worker_id, self.clock())  # holds nothing now: nothing is lost
            log.info("worker %s is stopping; it handed back %d slice(s)", state.info.name, len(mine))
            self._workers_changed()
            self.dispatch()
            return len(mine)

    def stop(self) -> int:
        """The server is stopping: every slice out goes back to the queue in the store (the try not counted),
        so the next start sends it again at once, and nothing more is handed out. Returns how many."""
        with self._op():
            self.stopped = True
            return self.dispatcher.stop()

    def heartbeat(self, worker_id: str) -> bool:
        with self.lock:
            return self.scheduler.heartbeat(worker_id, self.clock())

    def tick(self) -> None:
        """Called every second: cut again waiting slices no connected worker takes, take back expired leases,
        hand out work (stragglers get duplicates here)."""
        self.replan_unservable()
        self.dispatcher.tick()

    # The slices' side (``dispatcher``), for the socket handlers.

    def dispatch(self) -> None:
        self.dispatcher.dispatch()

    def result(self, worker_id: str, result: Result) -> dict[str, Any]:
        return self.dispatcher.result(worker_id, result)

    def error(self, worker_id: str, failure: SliceFailure) -> dict[str, Any]:
        return self.dispatcher.error(worker_id, failure)

    def _workers_changed(self) -> None:
        """The pages' workers list, and whether each open job waits for workers, may have changed."""
        self.pushes.workers()
        for job_id in {key.job_id for key in self.scheduler.tasks}:
            self.pushes.job(job_id)

    # --- views (what ``pushes`` sends, and what the API answers) ---------------------------------------------

    def job_view(self, job_id: str) -> dict[str, Any] | None:
        with self.lock:
            job = self.store.get_job(job_id)
            return None if job is None else views.job_view(job, self.scheduler, self.partials.get(job_id))

    def jobs_view(self, limit: int = 50, query: str = "") -> list[dict[str, Any]]:
        """The newest jobs (those whose name or text holds ``query``, if given), each with its first words. A
        search scans every slice's text: it runs off the event loop, on a store connection of its own, without
        the lock (``Store.search``; ``SearchTooLong`` past its limit)."""
        if query:
            jobs, first = self.run_blocking(self.store.search, query, limit)
            return [views.job_summary(job, counts, first.get(job.id, "")) for job, counts in jobs]
        with self.lock:
            jobs = self.store.list_jobs(limit, query)
            first = self.store.first_texts([job.id for job, _ in jobs])
            return [views.job_summary(job, counts, first.get(job.id, "")) for job, counts in jobs]

    def workers_view(self) -> list[dict[str, Any]]:
        with self.lock:
            return views.workers_view(self.scheduler, self.clock())
