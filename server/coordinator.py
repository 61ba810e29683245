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
import math
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import audio, disk, guard, planning, redo, replan, speakers, stitch, transcript, views
from .config import Settings
from .ids import is_job_id, new_job_id
from .paths import inside
from .payloads import Result, SliceFailure
from .pushes import Emitter, Pushes
from .running import RunningJob, RunningJobs
from .scheduler import Lease, Outcome, Requirement, Scheduler, SliceKey, WorkerInfo, hand_out_order
from .speaker_jobs import SpeakerLabels
from .states import FINISHED_SLICE, JobStatus, SliceStatus, job_status
from .store import STORE_ERRORS, JobRecord, SliceRecord, Store

log = logging.getLogger("scatterscribe")

NO_SPEECH = "no speech found"
#: After a write to the store failed (a full disk), slices are not handed out again for this long: a worker
#: would transcribe a slice whose result cannot be stored yet.
STORE_BACKOFF_S = 2.0


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
        self._replan_tried: set[tuple[str, float, int]] = set()  # re-cuts that could not be made; not retried
        self._preparing: dict[str, int] = {}  # job id → idle slots an upload being decoded and split counts on
        self._unsaved: set[str] = set()  # jobs whose derived state (status) could not be stored; tick retries
        self._hold_until = 0.0  # no hand-out before this (clock) time: a store write just failed
        self.stopped = False  # set by stop(): nothing more is handed out
        self.speakers = SpeakerLabels(self, spawn, sleep)  # labels worked out in the background (``spawn``)
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
            self._queue(job, last_round=last_round)
            self.pushes.job(job.id)
            self.pushes.jobs()
            self.dispatch()

    def extend_job(self, job_id: str, slices: list[planning.splitter.Slice], duration: float) -> bool:
        """Add slices that a live recording has just closed (their audio is already on disk; none when only its
        length grew) and scatter them at once; store its length so far and push the job and the jobs list, so
        every page shows how long it is. False when the job is gone (deleted while recording)."""
        with self._op():
            job = self.store.job_outline(job_id)
            if job is None:
                return False
            self.store.update_job(job_id, duration=duration)
            if slices:
                job.slices = planning.slice_records(slices, first=len(job.slices))
                self.store.add_slices(job_id, job.slices)
                self.running[job_id].audio_grew()  # read before the file grew: too short for the new slices
                self._queue(job)
                self.dispatch()
            self._settle(job_id)
            self.pushes.jobs()  # the past-jobs lists: its length and slice count
            return True

    def end_recording(self, job_id: str, duration: float, stats: dict[str, Any]) -> None:
        """A live recording is complete: the job finishes like an upload once its slices are done."""
        with self._op():
            job = self.store.job_outline(job_id)
            if job is None:
                return
            self.store.update_job(job_id, recording=False, duration=duration, stats={**job.stats, **stats})
            if not job.slices:
                self.store.update_job(job_id, status=JobStatus.DONE, note=NO_SPEECH, finished_at=time.time())
            self._settle(job_id)
            self.pushes.jobs()

    def _unqueue(self, job_id: str, index: int | None = None) -> None:
        """Take a job's slices (or only slice ``index``) out of the scheduler and forget their pieces; workers
        holding one are told to drop it. Under the lock."""
        for lease in self.scheduler.forget_job(job_id, index):
            self.emit("cancel", {"lease": lease.id}, to=lease.worker_id, namespace="/worker")
        if job_id in self.running:
            run = self.running[job_id]
            for i in list(run.pieces) if index is None else [index]:
                run.forget(i)

    def _queue(self, job: JobRecord, last_round: int = 0) -> None:
        """Queue a job's unfinished slices; the last ``last_round`` go longest first (``hand_out_order``)."""
        waiting = [s for s in job.slices if s.status not in FINISHED_SLICE]
        for n in hand_out_order([s.seconds for s in waiting], last_round):
            s = waiting[n]
            self.running[job.id].queued(s.index, s.pieces)
            self.scheduler.submit(SliceKey(job.id, s.index), s.seconds, redo.slice_requirement(job, s),
                                  attempts=s.attempts)

    def transcribe_again(self, job_id: str, index: int, request: redo.Redo) -> None:
        """Send a done or failed slice to be transcribed again (``redo``); its old text stays until the new
        one comes. Raises ``corrections.Refused`` when it may not be (no connected worker can take it, say)."""
        with self._op():
            job, s = self._slice(job_id, index)
            redo.check(s, request, self.scheduler, redo.wanted(job, request))
            values = redo.queued(s, request.asked)
            self.store.update_slice(job_id, index, **values)
            s = replace(s, **values)
            self._queue(replace(job, slices=[s]))
            log.info("job %s: slice %d sent to be transcribed again%s", job_id, index,
                     f" by {request.asked.engine} {request.asked.model}".rstrip() if s.asked_engine or
                     s.asked_model else "")
            self._settle(job_id)
            self.pushes.jobs()
            self.dispatch()

    def cancel_redo(self, job_id: str, index: int) -> None:
        """Call off transcribing a slice again: it goes back to what it was (``redo.cancelled``), and a worker
        holding it is told to drop it. Raises ``corrections.Refused`` when it is not being transcribed again."""
        with self._op():
            _, s = self._slice(job_id, index)
            values = redo.cancelled(s)
            self.store.update_slice(job_id, index, **values)
            self._unqueue(job_id, index)
            log.info("job %s: slice %d is no longer transcribed again", job_id, index)
            self._settle(job_id)
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
                self._queue(job)
                self._settle(job.id)
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
            self._unqueue(job_id)
            self.running.drop(job_id)
            self._unsaved.discard(job_id)
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            self.pushes.jobs()
            return found

    # --- fitting waiting slices to the workers -------------------------------------------------------------

    def replan_unservable(self) -> int:
        """Cut again the queued slices that no connected worker a job may use will take (``replan``): each run
        of consecutive queued slices holding such a slice is planned anew by the splitter at the longest length
        one of those workers takes, with the recording's threshold (cuts still in pauses); done, failed and
        leased slices are kept, and the slices are numbered again in recording order. A job with a slice out
        waits until none is (renumbering must never move a slice a worker holds). Returns how many jobs were
        re-cut."""
        with self.lock:
            wanted = replan.unservable(self.scheduler)
        recut = 0
        for job_id, longest in wanted.items():
            with self.lock:
                job = self.store.get_job(job_id)
                if job is None or (job_id, longest, len(job.slices)) in self._replan_tried:
                    continue
                runs = replan.queued_runs(job.slices, longest)
            if not runs:
                continue
            opts = planning.fit_to_workers(self.settings.splitter, longest)
            try:
                plans = self.run_blocking(replan.plan_regions, self.audio_path(job_id),
                                          replan.regions(job.slices, runs), job.stats.get("threshold_db"), opts)
            except (OSError, ValueError) as exc:
                log.error("job %s: cannot cut its waiting slices again: %s", job_id, exc)
                self._replan_tried.add((job_id, longest, len(job.slices)))
                continue
            with self._op():
                if self._replace_runs(job, runs, plans, longest):
                    recut += 1
                else:
                    self._replan_tried.add((job_id, longest, len(job.slices)))
        return recut

    def _replace_runs(self, job: JobRecord, runs: list[tuple[int, int]], plans: list[list[planning.splitter.Slice]],
                      longest: float) -> bool:
        """Put the new slices of each run in place of the old ones, if the job is as it was when they were
        planned (no slice out, the same slices in the same states). Under the lock."""
        now = self.store.get_job(job.id)
        if now is None or any(lease.key.job_id == job.id for lease in self.scheduler.leases.values()) or \
                [(s.index, s.status) for s in now.slices] != [(s.index, s.status) for s in job.slices]:
            return False
        merged = replan.merged(now.slices, runs, plans, longest)
        if merged is None:
            log.warning("job %s: its waiting slices could not be cut to %.1f s", job.id, longest)
            return False
        self.store.replace_slices(job.id, merged)  # first: if it fails, the old slices are still queued
        self._unqueue(job.id)  # the old slices leave the queue (none is out: checked above)
        now.slices = merged
        self._queue(now)
        log.info("job %s: %d waiting slice(s) cut again into %d to fit the connected workers' %.1f s", job.id,
                 sum(end - first for first, end in runs), sum(len(p) for p in plans), longest)
        self._settle(job.id)
        self.pushes.jobs()
        return True

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
            self._apply(outcomes)
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
            self._apply([self.scheduler.release(lid, "its worker stopped") for lid in everything])
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
            self._hold_until = float("inf")
            leases = sorted(self.scheduler.leases)
            self._apply([self.scheduler.release(lid, "the server stopped") for lid in leases])
            return len(leases)

    def heartbeat(self, worker_id: str) -> bool:
        with self.lock:
            return self.scheduler.heartbeat(worker_id, self.clock())

    def _workers_changed(self) -> None:
        """The pages' workers list, and whether each open job waits for workers, may have changed."""
        self.pushes.workers()
        for job_id in {key.job_id for key in self.scheduler.tasks}:
            self.pushes.job(job_id)

    # --- results ---------------------------------------------------------------------------------------------

    def result(self, worker_id: str, result: Result) -> dict[str, Any]:
        """A worker's text for a slice (parsed and bounded by ``payloads``). Returns the acknowledgement sent
        back to the worker. The store is written first and the scheduler told only then: a result that cannot
        be stored (a full disk) leaves the slice as it was, and it goes back to the queue at once."""
        key, lease_id = result.ref.key, result.ref.lease
        with self._op():
            t0 = time.perf_counter()
            state = self.scheduler.workers.get(worker_id)
            if not self.scheduler.holds(worker_id, lease_id, key):
                log.warning("ignored a result for slice %s from %s: it does not hold that lease", key,
                            state.info.name if state else worker_id)
                return {"ok": False, "error": "you do not hold this slice"}
            run = self.running[key.job_id]
            # What this lease was sent: the slice's pieces, with guard bands around them (guard.py).
            sent = run.what_was_heard(key.index, lease_id)
            shifted = transcript.shift_segments([seg.as_dict() for seg in result.segments], sent.pieces)
            around = self.store.slices_between(key.job_id, key.index - 2, key.index + 3)
            settled = stitch.settle(around, [s.index for s in around].index(key.index), shifted)
            text = settled.text if result.segments else result.text  # an engine may give text without times
            try:
                self.store.finish_slice(key.job_id, key.index, text=" ".join(text.split()),
                                        segments=settled.segments, heard=settled.heard, worker=state.info.name,
                                        engine=result.engine or state.info.engine,
                                        model=result.model if result.model is not None else state.info.model,
                                        elapsed=round(result.elapsed_s, 3), error="", finished_at=time.time())
            except STORE_ERRORS as exc:
                reason = disk.FULL if disk.is_full(exc) else f"the server could not store it ({exc})"
                log.error("slice %s/%d: the result from %s was not stored (%s); the slice goes back to the queue",
                          key.job_id, key.index, state.info.name, exc)
                self._release(lease_id, f"its result could not be stored: {reason}")
                return {"ok": False, "error": f"{reason}: this result was not stored; the slice will be sent "
                                              "again"}
            outcome = self.scheduler.complete(worker_id, lease_id, key, self.clock())
            if key.index in run.pieces:  # the worker's times are in the audio it heard, guard bands included
                self.speakers.slice_done(key.job_id, list(sent.pieces), result)
            run.forget(key.index)
            for lease in outcome.cancelled:
                self.emit("cancel", {"lease": lease.id}, to=lease.worker_id, namespace="/worker")
                other = self.scheduler.workers.get(lease.worker_id)
                log.info("slice %s/%d: done by %s; cancel sent to %s for its copy", key.job_id, key.index,
                         state.info.name, other.info.name if other else lease.worker_id)
            run.timing.answered(lease_id, self.clock(), result.elapsed_s, result.batch)
            run.timing.merge_s += time.perf_counter() - t0
            self.dispatch(changed=key.job_id)  # the freed slot gets its next slice in the same push
            return {"ok": True}

    def _release(self, lease_id: str, reason: str) -> None:
        """Give a lease back without counting the try (the server, not the worker, failed), and hand nothing
        out for ``STORE_BACKOFF_S``. Under the lock."""
        self._hold_until = self.clock() + STORE_BACKOFF_S
        self._apply([self.scheduler.release(lease_id, reason)])
        self.pushes.workers()

    def error(self, worker_id: str, failure: SliceFailure) -> dict[str, Any]:
        """A worker could not transcribe a slice: it goes to another worker, or fails after max_attempts."""
        with self._op():
            outcome = self.scheduler.fail(worker_id, failure.ref.lease, failure.ref.key, failure.reason,
                                          self.clock())
            if outcome.key is None:
                return {"ok": False, "error": "you do not hold this slice"}
            self._apply([outcome])
            self.dispatch()
            return {"ok": True}

    def tick(self) -> None:
        """Called every second: cut again waiting slices no connected worker takes, take back expired leases,
        hand out work (stragglers get duplicates here)."""
        self.replan_unservable()
        with self._op():
            self._apply(self.scheduler.reap(self.clock()))
            for job_id in sorted(self._unsaved):  # a job whose status could not be stored: try again
                self._unsaved.discard(job_id)
                self._settle(job_id)
            self.dispatch()

    # --- handing out -----------------------------------------------------------------------------------------

    def dispatch(self, changed: str | None = None) -> None:
        """Give queued slices to free worker slots and send each its audio; then settle each job touched, and
        the job ``changed`` (a result just landed in it) with them, so it is read once, not twice."""
        with self._op():
            touched: dict[str, None] = {}
            now = self.clock()
            for lease in self.scheduler.assign(now) if now >= self._hold_until else []:
                self._send(lease)
                touched[lease.key.job_id] = None
            if changed is not None:
                touched[changed] = None
            for job_id in touched:
                t0 = time.perf_counter()
                if not self._settle(job_id) and job_id in self.running:
                    timing = self.running[job_id].timing
                    if job_id == changed:
                        timing.merge_s += time.perf_counter() - t0
                    else:
                        timing.dispatch_s += time.perf_counter() - t0
            if touched:  # pages show who is busy and what each has done: a hand-out or a result changes that
                self.pushes.workers()

    def _send(self, lease: Lease) -> None:
        """Send a leased slice to its worker. If that fails after the lease is made (the store cannot record it,
        the emit fails), the lease is given back at once rather than holding the worker's slot until it
        expires."""
        t0 = time.perf_counter()
        key = lease.key
        worker = self.scheduler.workers[lease.worker_id].info
        run = self.running[key.job_id]
        try:
            payload, heard = self._slice_audio(key, worker, run)
        except (OSError, ValueError) as exc:  # the job's audio is gone: nobody can ever do this slice
            log.error("slice %s: cannot read audio: %s", key, exc)
            self._apply([self.scheduler.fail(lease.worker_id, lease.id, key, f"audio unreadable: {exc}",
                                             self.clock())])
            return
        task = self.scheduler.tasks[key]
        try:
            if not lease.duplicate:
                self.store.update_slice(key.job_id, key.index, status=SliceStatus.LEASED, worker=worker.name,
                                        attempts=task.attempts)
            run.sent(key.index, lease.id, heard)
            # span: where the slice's own audio lies in what is sent (the rest is guard bands, see guard.py).
            self.emit("slice", {"lease": lease.id, "job": key.job_id, "index": key.index,
                                "seconds": task.seconds, "audio": payload, "span": list(heard.span)},
                      to=lease.worker_id, namespace="/worker")
        except Exception as exc:  # noqa: BLE001 - whatever failed, the worker must not lose its slot to it
            log.error("slice %s/%d: could not be sent to %s (%s); back to the queue", key.job_id, key.index,
                      worker.name, exc)
            self._release(lease.id, f"could not be sent: {disk.FULL if disk.is_full(exc) else exc}")
            return
        run.timing.sent(lease.id, self.clock(), time.perf_counter() - t0)

    def _slice_audio(self, key: SliceKey, worker: WorkerInfo, run: RunningJob) -> tuple[bytes, guard.Heard]:
        """The WAV a worker is sent for a slice, and what it holds: the slice's pieces, with guard bands of its
        neighbours' audio for a worker whose engine times its words (the server keeps only the slice's own)."""
        own = run.pieces[key.index]
        if worker.words and self.settings.guard.guard_s > 0:
            # The neighbours within reach of a guard band (a slice is rarely under a second long).
            reach = max(1, math.ceil(self.settings.guard.guard_s))
            first = max(0, key.index - reach)
            around = self.store.pieces_between(key.job_id, first, key.index + reach + 1)
            heard = guard.heard(around, key.index - first, self.settings.guard)
        else:
            heard = guard.Heard(tuple(own), (0.0, guard.length(own)))
        rate = audio.TARGET_RATE
        samples = run.samples
        parts = [samples[round(a * rate):round(b * rate)] for a, b in heard.pieces]
        return audio.wav_bytes(np.concatenate(parts) if parts else np.zeros(0, np.int16)), heard

    def _apply(self, outcomes: list[Outcome]) -> None:
        """Write lost leases and failures to the store."""
        touched = set()
        for outcome in outcomes:
            if outcome.key is None:
                continue
            key = outcome.key
            touched.add(key.job_id)
            if outcome.status == SliceStatus.FAILED:
                if key.job_id in self.running:
                    self.running[key.job_id].forget(key.index)
                log.warning("slice %s failed: %s", key, outcome.reason)
            try:
                if outcome.status == SliceStatus.QUEUED:
                    task = self.scheduler.tasks.get(key)  # its tries: a lease given back does not count
                    self.store.update_slice(key.job_id, key.index, status=SliceStatus.QUEUED, worker="",
                                            error=outcome.reason, **({"attempts": task.attempts} if task else {}))
                elif outcome.status == SliceStatus.FAILED:  # a slice transcribed again may keep its old text
                    s = next(iter(self.store.slices_between(key.job_id, key.index, key.index + 1)), None)
                    self.store.update_slice(key.job_id, key.index,
                                            **redo.after_failure(s, outcome.reason, time.time()))
            except STORE_ERRORS as exc:
                # The scheduler has it right; the store catches up at the slice's next change (a queued slice
                # is stored as leased when it is sent again) or, for a failure, when the status is retried.
                log.error("slice %s/%d: its state could not be stored: %s", key.job_id, key.index, exc)
                self._unsaved.add(key.job_id)
        for job_id in touched:
            self._settle(job_id)

    # --- a job's status: from its slices ---------------------------------------------------------------------

    def _settle(self, job_id: str) -> bool:
        """Work a job's status out from its slices (``states.job_status``), store it, and mark the job to be
        pushed to its pages. When this finishes the job, its in-memory state is dropped and its timing saved.
        True when this change finished the job. Under the lock."""
        job = self.store.job_outline(job_id)
        if job is None:
            return False
        self.pushes.job(job_id)
        status = job_status(job.status, [s.status for s in job.slices], job.recording)
        if status == job.status:
            if status.finished and job_id in self.running and not self.running[job_id].pieces:
                self._close(job)  # a slice of a finished job was transcribed again
            return False
        if not status.finished:
            self._store_status(job_id, status=status)
            return False
        failed = [s for s in job.slices if s.status == SliceStatus.FAILED]
        error = "; ".join(transcript.failure_marker(s)[1:-1] for s in failed)
        note = job.note
        if not failed and not any(s.text.strip() for s in job.slices):
            note = NO_SPEECH  # every slice came back without words: say so, as for silence
        if not self._store_status(job_id, status=status, error=error, finished_at=time.time(), note=note):
            return False
        log.info("job %s %s: %d slices, %d failed", job_id, status, len(job.slices), len(failed))
        self._close(job)
        self.pushes.jobs()
        self.speakers.changed(job_id)  # its speakers are worked out once more, final now
        return True

    def _store_status(self, job_id: str, **values: Any) -> bool:
        """Store a job's derived state; on failure (a full disk) :meth:`tick` recomputes and stores it again."""
        try:
            self.store.update_job(job_id, **values)
            return True
        except STORE_ERRORS as exc:
            log.error("job %s: its status could not be stored (%s); trying again", job_id, exc)
            self._unsaved.add(job_id)
            return False

    def _close(self, job: JobRecord) -> None:
        """A job finished: drop its in-memory state and write where its time went into its stats (``timing``)."""
        run = self.running.drop(job.id)
        if run is None:
            return
        try:
            self.store.update_job(job.id, stats={**job.stats, **run.timing.stats()})
        except STORE_ERRORS as exc:  # only statistics: not worth a retry
            log.error("job %s: its timing could not be stored: %s", job.id, exc)

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
