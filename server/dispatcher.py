"""A slice's life on the workers: queued, handed out with its audio, its result or failure taken in, and the
job's status that follows from its slices (``states.job_status``). The coordinator calls these under an
operation (``pushes``), so what changes here reaches the pages once, when the operation ends."""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable

import numpy as np

from . import audio, disk, guard, redo, stitch, transcript
from .config import Settings
from .payloads import Result, SliceFailure
from .pushes import Emitter, Pushes
from .records import JobRecord
from .running import RunningJob, RunningJobs
from .scheduler import Lease, Outcome, Scheduler, SliceKey, WorkerInfo, hand_out_order
from .speaker_jobs import SpeakerLabels
from .states import FINISHED_SLICE, JobStatus, SliceStatus, check_job_move, job_status
from .store import STORE_ERRORS, Store

log = logging.getLogger("scatterscribe")

NO_SPEECH = "no speech found"
#: After a write to the store failed (a full disk), slices are not handed out again for this long: a worker
#: would transcribe a slice whose result cannot be stored yet.
STORE_BACKOFF_S = 2.0


class Dispatcher:
    def __init__(self, settings: Settings, store: Store, scheduler: Scheduler, running: RunningJobs,
                 pushes: Pushes, emit: Emitter, clock: Callable[[], float], speakers: SpeakerLabels):
        self.settings, self.store, self.scheduler, self.running = settings, store, scheduler, running
        self.pushes, self.emit, self.clock, self.speakers = pushes, emit, clock, speakers
        self.unsaved: set[str] = set()  # jobs whose derived state (status) could not be stored; tick retries
        self._hold_until = 0.0  # no hand-out before this (clock) time: a store write just failed

    def _op(self):
        return self.pushes.operation()

    def stop(self) -> int:
        """Hand nothing out any more, and put every slice out back in the queue in the store (the try not
        counted), so the next start sends it again at once. Returns how many."""
        with self._op():
            self._hold_until = float("inf")
            leases = sorted(self.scheduler.leases)
            self.apply([self.scheduler.release(lid, "the server stopped") for lid in leases])
            return len(leases)

    def tick(self) -> None:
        """Take back expired leases, store job states that could not be stored, hand out work."""
        with self._op():
            self.apply(self.scheduler.reap(self.clock()))
            for job_id in sorted(self.unsaved):  # a job whose status could not be stored: try again
                self.unsaved.discard(job_id)
                self.settle(job_id)
            self.dispatch()

    def unqueue(self, job_id: str, index: int | None = None) -> None:
        """Take a job's slices (or only slice ``index``) out of the scheduler and forget their pieces; workers
        holding one are told to drop it. Under the lock."""
        for lease in self.scheduler.forget_job(job_id, index):
            self.emit("cancel", {"lease": lease.id}, to=lease.worker_id, namespace="/worker")
        if job_id in self.running:
            run = self.running[job_id]
            for i in list(run.pieces) if index is None else [index]:
                run.forget(i)

    def queue(self, job: JobRecord, last_round: int = 0) -> None:
        """Queue a job's unfinished slices; the last ``last_round`` go longest first (``hand_out_order``)."""
        waiting = [s for s in job.slices if s.status not in FINISHED_SLICE]
        for n in hand_out_order([s.seconds for s in waiting], last_round):
            s = waiting[n]
            self.running[job.id].queued(s.index, s.pieces)
            self.scheduler.submit(SliceKey(job.id, s.index), s.seconds, redo.slice_requirement(job, s),
                                  attempts=s.attempts)

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
        self.apply([self.scheduler.release(lease_id, reason)])
        self.pushes.workers()

    def error(self, worker_id: str, failure: SliceFailure) -> dict[str, Any]:
        """A worker could not transcribe a slice: it goes to another worker, or fails after max_attempts."""
        with self._op():
            outcome = self.scheduler.fail(worker_id, failure.ref.lease, failure.ref.key, failure.reason,
                                          self.clock())
            if outcome.key is None:
                return {"ok": False, "error": "you do not hold this slice"}
            self.apply([outcome])
            self.dispatch()
            return {"ok": True}

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
                if not self.settle(job_id) and job_id in self.running:
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
            self.apply([self.scheduler.fail(lease.worker_id, lease.id, key, f"audio unreadable: {exc}",
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

    def apply(self, outcomes: list[Outcome]) -> None:
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
                self.unsaved.add(key.job_id)
        for job_id in touched:
            self.settle(job_id)

    # --- a job's status: from its slices ---------------------------------------------------------------------

    def settle(self, job_id: str) -> bool:
        """Work a job's status out from its slices (``states.job_status``), store it, and mark the job to be
        pushed to its pages. When this finishes the job, its in-memory state is dropped and its timing saved.
        True when this change finished the job. Under the lock."""
        run = self.running[job_id] if job_id in self.running else None
        if run is not None and run.status == JobStatus.RUNNING and run.pieces:
            # Running and slices still open: it stays running, nothing to read (the common case, every result).
            self.pushes.job(job_id)
            return False
        found = self.store.job_counts(job_id)
        if found is None:
            return False
        job, counts = found
        self.pushes.job(job_id)
        status = job_status(job.status, counts, job.recording)
        if status == job.status:
            if run is not None:
                run.status = status
            if status.finished and run is not None and not run.pieces:
                self._close(job)  # a slice of a finished job was transcribed again
            return False
        check_job_move(job.status, status)
        if not status.finished:
            if self._store_status(job_id, status=status) and run is not None:
                run.status = status
            return False
        job = self.store.job_outline(job_id) or job  # once per job: what its failures were, whether it has words
        failed = [s for s in job.slices if s.status == SliceStatus.FAILED]
        error = "; ".join(transcript.failure_marker(s)[1:-1] for s in failed)
        note = job.note
        if not failed and not any(s.text.strip() for s in job.slices):
            note = NO_SPEECH  # every slice came back without words: say so, as for silence
        if not self._store_status(job_id, status=status, error=error, finished_at=time.time(), note=note):
            return False
        log.info("job %s %s: %d slices, %d failed", job_id, status, sum(counts.values()), len(failed))
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
            self.unsaved.add(job_id)
            return False

    def _close(self, job: JobRecord) -> None:
        """A job finished: drop its in-memory state and write where its time went into its stats (``timing``)."""
        run = self.running.drop(job.id)
        if run is None:
            return
        try:
            # Added to what earlier runs of the job spent (a slice transcribed again runs it once more).
            spent = {k: round(job.stats.get(k, 0.0) + v, 4) for k, v in run.timing.stats().items()}
            self.store.update_job(job.id, stats={**job.stats, **spent})
        except STORE_ERRORS as exc:  # only statistics: not worth a retry
            log.error("job %s: its timing could not be stored: %s", job.id, exc)
