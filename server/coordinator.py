"""The one place where the store, the scheduler and the sockets meet.

HTTP and Socket.IO handlers call these methods and nothing else; the methods keep the store (what survives a
restart) and the scheduler (who holds what right now) in step and say what to push to pages and workers.
All of it runs under one lock, so a result, a disconnect and the reaper never interleave halfway.
"""

from __future__ import annotations

import logging
import math
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from . import audio, channels, disk, guard, media, redo, speakers, splitter, stitch, transcript, views
from .config import Settings
from .ids import is_job_id, new_job_id
from .paths import inside
from .payloads import Result, SliceFailure
from .scheduler import Lease, Outcome, Requirement, Scheduler, SliceKey, SliceStatus, WorkerInfo, hand_out_order
from .speaker_jobs import SpeakerLabels
from .store import JobRecord, SliceRecord, Store
from .timing import JobTiming

log = logging.getLogger("scatterscribe")

NO_SPEECH = "no speech found"
#: After a write to the store failed (a full disk), slices are not handed out again for this long: a worker
#: would transcribe a slice whose result cannot be stored yet.
STORE_BACKOFF_S = 2.0
#: What the store raises when a write cannot be made (SQLite errors; OSError for a full disk).
STORE_ERRORS = (sqlite3.Error, OSError)


class Emitter(Protocol):
    def __call__(self, event: str, data: Any, *, to: str | None = None, namespace: str = "/") -> None: ...


class JobError(ValueError):
    """A request about a job that cannot be honoured (the message is for the user)."""


@dataclass
class Prepared:
    """What :func:`prepare_audio` learnt from an upload."""

    converted: audio.Converted
    slices: list[splitter.Slice]
    threshold_db: float
    decode_s: float
    split_s: float
    channel_turns: list[list[float]] | None = None  # who speaks when, when the channels hold different people


def prepare_audio(upload: Path, dst: Path, opts: splitter.SplitOptions, max_duration_s: float,
                  idle_slots: int) -> Prepared:
    """Decode an upload to 16 kHz mono and plan its slices; a multichannel upload's levels per channel are kept
    beside its audio and say whether its channels hold different people (``channels``). CPU work: the caller
    runs it off the event loop."""
    t0 = time.perf_counter()
    levels = channels.ChannelLevels()
    converted = media.convert_upload(upload, dst, max_duration_s=max_duration_s, channel_levels=levels)
    levels.save(dst.parent)
    levels_db = levels.levels_db() if converted.source.channels > 1 else None
    turns = channels.channel_turns(levels_db) if channels.separated(levels_db) else None
    t1 = time.perf_counter()
    analysis = splitter.analyse(audio.PcmFile(dst), opts)
    loudest_db = float(analysis.levels_db.max()) if len(analysis.levels_db) else splitter.FLOOR_DB
    if loudest_db < opts.min_speech_db:  # nothing there at all: say so now rather than queue a job of nothing
        raise audio.AudioError(f"the recording is silent: its loudest moment is {loudest_db:.0f} dBFS, below the "
                               f"{opts.min_speech_db:.0f} dBFS where speech begins (was the microphone muted?)")
    slices = splitter.split_for_parallelism(analysis, opts, idle_slots)
    return Prepared(converted, slices, analysis.threshold_db, t1 - t0, time.perf_counter() - t1, turns)


def fit_to_workers(opts: splitter.SplitOptions, longest_s: float | None) -> splitter.SplitOptions:
    """Splitter settings for a new job: no slice longer than the longest one a connected worker that may serve
    the job takes (``longest_s``; None when none is connected), so a job served only by engines with a short
    limit, such as Google's, gets slices they accept."""
    if longest_s is None or longest_s >= opts.max_slice_s:
        return opts
    return replace(opts, max_slice_s=longest_s, min_slice_s=min(opts.min_slice_s, longest_s / 2))


def queued_runs(slices: list[SliceRecord], longest_s: float) -> list[tuple[int, int]]:
    """Runs ``(first, end)`` of consecutive queued slices (positions in ``slices``) that hold a slice longer than
    ``longest_s``: the parts of a job to cut again. Done, failed and leased slices, and slices being transcribed
    again, are never part of a run."""
    runs, first = [], None
    for pos, s in enumerate([*slices, None]):
        if s is not None and s.status == "queued" and not s.redo_of:  # a redone slice's text fits its bounds
            first = pos if first is None else first
            continue
        if first is not None and any(x.seconds > longest_s + 1e-6 for x in slices[first:pos]):
            runs.append((first, pos))
        first = None
    return runs


def plan_regions(path: Path, regions: list[tuple[int, int]], threshold_db: float | None,
                 opts: splitter.SplitOptions) -> list[list[splitter.Slice]]:
    """Slices for each region ``[start, end)`` (samples) of a job's audio, with the recording's threshold
    (measured again when the job did not keep it). CPU and disk work: the caller runs it off the event loop."""
    samples = audio.PcmFile(path)
    if threshold_db is None:
        threshold_db = splitter.analyse(samples, opts).threshold_db
    return [splitter.plan_span(samples, start, end, threshold_db, opts) for start, end in regions]


def slice_records(slices: list[splitter.Slice], rate: int = audio.TARGET_RATE,
                  first: int = 0) -> list[SliceRecord]:
    return [SliceRecord(index=i, start=s.start / rate, end=s.end / rate,
                        pieces=[(p.start / rate, p.end / rate) for p in s.pieces])
            for i, s in enumerate(slices, start=first)]


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
        self.jobs_dir = settings.data_path / "jobs"
        self.uploads_dir = settings.data_path / "uploads"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self._audio: dict[str, audio.PcmFile] = {}  # job id → its samples on disk, while the job runs
        self._pieces: dict[SliceKey, list[tuple[float, float]]] = {}
        self._heard: dict[SliceKey, dict[str, guard.Heard]] = {}  # what each lease of a slice was sent
        self._timing: dict[str, JobTiming] = {}  # job id → where its time goes, while it runs
        self._replan_tried: set[tuple[str, float, int]] = set()  # re-cuts that could not be made; not retried
        self._preparing: dict[str, int] = {}  # job id → idle slots an upload being decoded and split counts on
        self._unsaved: set[str] = set()  # jobs whose derived state (status) could not be stored; tick retries
        self._hold_until = 0.0  # no hand-out before this (clock) time: a store write just failed
        self.stopped = False  # set by stop(): nothing more is handed out
        self.speakers = SpeakerLabels(self, spawn, sleep)  # labels worked out in the background (``spawn``)
        self.partials: dict[str, dict[str, Any]] = {}  # live job id → its tentative text (``live_captions``)
        #: Called with a job's id, under the lock, when it is deleted (a live recording of it ends: ``live_jobs``).
        self.on_delete: list[Callable[[str], None]] = []

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
                opts = fit_to_workers(self._cutting(requirement), self.scheduler.longest_slice_s(requirement))
            prepared = self.run_blocking(prepare_audio, upload, job_dir / "audio.wav", opts,
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
            engine=requirement.engine, model=requirement.model, slices=slice_records(prepared.slices),
            stats={"decode_s": round(prepared.decode_s, 4), "split_s": round(prepared.split_s, 4),
                   "threshold_db": round(prepared.threshold_db, 1), "input": source_format.describe()})
        by_channel = prepared.channel_turns if speaker_count in (None, source_format.channels) else None
        job.speakers = speakers.initial_state(speaker_count, by_channel)
        if not job.slices:
            job.status, job.note, job.finished_at = "done", NO_SPEECH, time.time()
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

    def _cutting(self, requirement: Requirement) -> splitter.SplitOptions:
        """The splitter settings for a new job: slices are cut finer down to ``min_slice_s`` only when every
        worker that may take them hears them with guard bands (its engine times words), else down to
        ``min_slice_alone_s``. Under the lock."""
        opts = self.settings.splitter
        guarded = self.settings.guard.guard_s > 0 and all(
            s.info.words for s in self.scheduler.workers.values() if requirement.accepts(s.info.engine, s.info.model))
        alone = min(max(opts.min_slice_s, opts.min_slice_alone_s), opts.max_slice_s / 2)
        return opts if guarded else replace(opts, min_slice_s=alone)

    def open_job(self, job: JobRecord, last_round: int = 0) -> None:
        """Store a new job, queue its slices (the last ``last_round`` longest first) and tell the pages."""
        job.speakers = job.speakers or speakers.initial_state(None)
        with self.lock:
            self.store.create_job(job)
            self._queue(job, last_round=last_round)
            self._push_job(job.id)
            self._push_jobs()
            self.dispatch()

    def extend_job(self, job_id: str, slices: list[splitter.Slice], duration: float) -> bool:
        """Add slices that a live recording has just closed (their audio is already on disk; none when only its
        length grew) and scatter them at once; store its length so far and push the job and the jobs list, so
        every page shows how long it is. False when the job is gone (deleted while recording)."""
        with self.lock:
            job = self.store.get_job(job_id)
            if job is None:
                return False
            self.store.update_job(job_id, duration=duration)
            if slices:
                job.slices = slice_records(slices, first=len(job.slices))
                self.store.add_slices(job_id, job.slices)
                self._audio.pop(job_id, None)  # mapped before the file grew: too short for the new slices
                self._queue(job)
            self._after_slice_change(job_id)
            self._push_jobs()  # the past-jobs lists: its length and slice count
            if slices:
                self.dispatch()
            return True

    def end_recording(self, job_id: str, duration: float, stats: dict[str, Any]) -> None:
        """A live recording is complete: the job finishes like an upload once its slices are done."""
        with self.lock:
            job = self.store.get_job(job_id)
            if job is None:
                return
            self.store.update_job(job_id, recording=False, duration=duration, stats={**job.stats, **stats})
            if not job.slices:
                self.store.update_job(job_id, status="done", note=NO_SPEECH, finished_at=time.time())
            self._audio.pop(job_id, None)
            self._after_slice_change(job_id)
            self._push_jobs()

    def _unqueue(self, job_id: str, index: int | None = None) -> None:
        """Take a job's slices (or only slice ``index``) out of the scheduler and forget their pieces; workers
        holding one are told to drop it. Under the lock."""
        for lease in self.scheduler.forget_job(job_id, index):
            self.emit("cancel", {"lease": lease.id}, to=lease.worker_id, namespace="/worker")
        for key in [k for k in self._pieces if k.job_id == job_id and index in (None, k.index)]:
            del self._pieces[key]
            self._heard.pop(key, None)

    def _queue(self, job: JobRecord, last_round: int = 0) -> None:
        """Queue a job's unfinished slices; the last ``last_round`` go longest first (``hand_out_order``)."""
        waiting = [s for s in job.slices if s.status not in ("done", "failed")]
        for n in hand_out_order([s.seconds for s in waiting], last_round):
            s = waiting[n]
            key = SliceKey(job.id, s.index)
            self._pieces[key] = s.pieces
            self.scheduler.submit(key, s.seconds, redo.slice_requirement(job, s), attempts=s.attempts)

    def transcribe_again(self, job_id: str, index: int, request: redo.Redo) -> None:
        """Send a done or failed slice to be transcribed again (``redo``); its old text stays until the new
        one comes. Raises ``corrections.Refused`` when it may not be (no connected worker can take it, say)."""
        with self.lock:
            job, s = self._slice(job_id, index)
            redo.check(s, request, self.scheduler, redo.wanted(job, request))
            values = redo.queued(s, request.asked)
            self.store.update_slice(job_id, index, **values)
            s = replace(s, **values)
            self._queue(replace(job, slices=[s]))
            log.info("job %s: slice %d sent to be transcribed again%s", job_id, index,
                     f" by {request.asked.engine} {request.asked.model}".rstrip() if s.asked_engine or
                     s.asked_model else "")
            self._after_slice_change(job_id)
            self._push_jobs()
            self.dispatch()

    def cancel_redo(self, job_id: str, index: int) -> None:
        """Call off transcribing a slice again: it goes back to what it was (``redo.cancelled``), and a worker
        holding it is told to drop it. Raises ``corrections.Refused`` when it is not being transcribed again."""
        with self.lock:
            _, s = self._slice(job_id, index)
            values = redo.cancelled(s)
            self.store.update_slice(job_id, index, **values)
            self._unqueue(job_id, index)
            log.info("job %s: slice %d is no longer transcribed again", job_id, index)
            self._after_slice_change(job_id)
            self._push_jobs()

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
        with self.lock:
            self._push_job(job_id)
            if jobs_list:
                self._push_jobs()

    def resume(self) -> int:
        """After a restart: queue again every slice that was not finished (finished ones are kept as they are),
        bring job states up to date, and remove uploads and folders that never became jobs."""
        with self.lock:
            jobs = self.store.unfinished_jobs()
            for job in jobs:
                for s in job.slices:
                    if s.status == "leased":  # its worker's connection died with the old server
                        s.status, s.attempts = "queued", max(0, s.attempts - 1)
                        self.store.update_slice(job.id, s.index, status="queued", worker="", attempts=s.attempts)
                self._queue(job)
                self._after_slice_change(job.id)
            everything = [job for job, _ in self.store.list_jobs(limit=1_000_000)]
            known = {job.id for job in everything}
            for job in everything:  # the server stopped before a finished job's speakers were final
                if job.status in ("done", "failed") and job.speakers.get("method") == "voice" \
                        and not job.speakers.get("final"):
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
        with self.lock:
            found = self.store.delete_job(job_id)  # first: if it fails, the job is still whole and still queued
            for hook in self.on_delete:
                hook(job_id)
            self._unqueue(job_id)
            self._audio.pop(job_id, None)
            self._timing.pop(job_id, None)
            self._unsaved.discard(job_id)
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            self._push_jobs()
            return found

    # --- fitting waiting slices to the workers -------------------------------------------------------------

    def replan_unservable(self) -> int:
        """Cut again the queued slices that no connected worker a job may use will take, because each announces
        a shorter max_slice_s (say a job cut at 28 s while no worker was connected, then a Google worker that
        takes 25 s). Each run of consecutive queued slices holding such a slice is planned anew by the splitter
        at the longest length one of those workers takes, with the recording's threshold (cuts still in
        pauses); done, failed and leased slices are kept as they are, and the slices are numbered again in
        recording order. Renumbering must never move a slice a worker holds, so a job with a slice out waits
        until none is (each lease ends: a result, an error, a timeout). Returns how many jobs were re-cut."""
        with self.lock:
            wanted: dict[str, float] = {}
            busy = {lease.key.job_id for lease in self.scheduler.leases.values()}
            limits: dict[Requirement, float | None] = {}
            for key in self.scheduler.queue:
                task = self.scheduler.tasks[key]
                if key.job_id in busy:
                    continue
                if task.requirement not in limits:
                    limits[task.requirement] = self.scheduler.longest_slice_s(task.requirement)
                longest = limits[task.requirement]
                if longest is not None and task.seconds > longest + 1e-6:
                    wanted[key.job_id] = min(longest, wanted.get(key.job_id, longest))
        recut = 0
        for job_id, longest in wanted.items():
            with self.lock:
                job = self.store.get_job(job_id)
                if job is None or (job_id, longest, len(job.slices)) in self._replan_tried:
                    continue
                runs = queued_runs(job.slices, longest)
            if not runs:
                continue
            rate = audio.TARGET_RATE
            regions = [(round(job.slices[a].start * rate), round(job.slices[b - 1].end * rate)) for a, b in runs]
            opts = fit_to_workers(self.settings.splitter, longest)
            try:
                plans = self.run_blocking(plan_regions, self.audio_path(job_id), regions,
                                          job.stats.get("threshold_db"), opts)
            except (OSError, ValueError) as exc:
                log.error("job %s: cannot cut its waiting slices again: %s", job_id, exc)
                self._replan_tried.add((job_id, longest, len(job.slices)))
                continue
            with self.lock:
                if self._replace_runs(job, runs, plans, longest):
                    recut += 1
                else:
                    self._replan_tried.add((job_id, longest, len(job.slices)))
        return recut

    def _replace_runs(self, job: JobRecord, runs: list[tuple[int, int]], plans: list[list[splitter.Slice]],
                      longest: float) -> bool:
        """Put the new slices of each run in place of the old ones, if the job is as it was when they were
        planned (no slice out, the same slices in the same states). Under the lock."""
        now = self.store.get_job(job.id)
        if now is None or any(lease.key.job_id == job.id for lease in self.scheduler.leases.values()) or \
                [(s.index, s.status) for s in now.slices] != [(s.index, s.status) for s in job.slices]:
            return False
        if any(not plan or max(s.length for s in plan) / audio.TARGET_RATE > longest + 1e-6 for plan in plans):
            log.warning("job %s: its waiting slices could not be cut to %.1f s", job.id, longest)
            return False
        merged: list[SliceRecord] = []
        previous = 0
        for (first, end), plan in zip(runs, plans, strict=True):
            merged += now.slices[previous:first]
            attempts = max(s.attempts for s in now.slices[first:end])
            merged += [replace(r, attempts=attempts) for r in slice_records(plan)]
            previous = end
        merged += now.slices[previous:]
        merged = [replace(s, index=i) for i, s in enumerate(merged)]
        self.store.replace_slices(job.id, merged)  # first: if it fails, the old slices are still queued
        self._unqueue(job.id)  # the old slices leave the queue (none is out: checked above)
        now.slices = merged
        self._queue(now)
        log.info("job %s: %d waiting slice(s) cut again into %d to fit the connected workers' %.1f s", job.id,
                 sum(end - first for first, end in runs), sum(len(p) for p in plans), longest)
        self._after_slice_change(job.id)
        self._push_jobs()
        return True

    # --- workers ---------------------------------------------------------------------------------------------

    def worker_connected(self, worker_id: str, info: WorkerInfo) -> None:
        with self.lock:
            self.scheduler.add_worker(worker_id, info, self.clock())
            log.info("worker %s connected: %s %s, %d slot(s)", info.name, info.engine, info.model, info.slots)
            self._push_workers()
            self._push_open_jobs()  # whether a job is waiting for workers may have changed

    def worker_disconnected(self, worker_id: str) -> None:
        with self.lock:
            state = self.scheduler.workers.get(worker_id)
            outcomes = self.scheduler.remove_worker(worker_id, self.clock())
            if state is not None:
                log.info("worker %s disconnected; %d slice(s) back to the queue", state.info.name, len(outcomes))
            self._apply(outcomes)
            self._push_workers()
            self._push_open_jobs()
            self.dispatch()

    def worker_leaving(self, worker_id: str, leases: tuple[str, ...]) -> int:
        """A worker that is stopping hands back the slices it holds: they go back to the head of the queue at
        once, the try not counted, and the worker gets nothing more. Returns how many it gave back."""
        with self.lock:
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
            self._push_workers()
            self._push_open_jobs()
            self.dispatch()
            return len(mine)

    def stop(self) -> int:
        """The server is stopping: every slice out goes back to the queue in the store (the try not counted),
        so the next start sends it again at once, and nothing more is handed out. Returns how many."""
        with self.lock:
            self.stopped = True
            self._hold_until = float("inf")
            leases = sorted(self.scheduler.leases)
            self._apply([self.scheduler.release(lid, "the server stopped") for lid in leases])
            return len(leases)

    def heartbeat(self, worker_id: str) -> bool:
        with self.lock:
            return self.scheduler.heartbeat(worker_id, self.clock())

    def result(self, worker_id: str, result: Result) -> dict[str, Any]:
        """A worker's text for a slice (parsed and bounded by ``payloads``). Returns the acknowledgement sent
        back to the worker. The store is written first and the scheduler told only then: a result that cannot
        be stored (a full disk) leaves the slice as it was, and it goes back to the queue at once."""
        key, lease_id = result.ref.key, result.ref.lease
        with self.lock:
            t0 = time.perf_counter()
            state = self.scheduler.workers.get(worker_id)
            if not self.scheduler.holds(worker_id, lease_id, key):
                log.warning("ignored a result for slice %s from %s: it does not hold that lease", key,
                            state.info.name if state else worker_id)
                return {"ok": False, "error": "you do not hold this slice"}
            # What this lease was sent: the slice's pieces, with guard bands around them (guard.py).
            sent = self._heard.get(key, {}).get(lease_id) or guard.Heard(tuple(self._pieces[key]), (0.0, 0.0))
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
            pieces = self._pieces.pop(key, None)
            self._heard.pop(key, None)
            if pieces is not None:  # the worker's times are in the audio it heard, guard bands included
                self.speakers.slice_done(key.job_id, list(sent.pieces), result)
            for lease in outcome.cancelled:
                self.emit("cancel", {"lease": lease.id}, to=lease.worker_id, namespace="/worker")
                other = self.scheduler.workers.get(lease.worker_id)
                log.info("slice %s/%d: done by %s; cancel sent to %s for its copy", key.job_id, key.index,
                         state.info.name, other.info.name if other else lease.worker_id)
            timing = self._timing.setdefault(key.job_id, JobTiming())
            timing.answered(lease_id, self.clock(), result.elapsed_s, result.batch)
            timing.merge_s += time.perf_counter() - t0
            # The freed slot gets its next slice first; then the job is pushed once, with both changes.
            if key.job_id in self.dispatch(changed=key.job_id):
                self._save_timing(key.job_id)
            return {"ok": True}

    def _release(self, lease_id: str, reason: str) -> None:
        """Give a lease back without counting the try (the server, not the worker, failed), and hand nothing
        out for ``STORE_BACKOFF_S``. Under the lock."""
        self._hold_until = self.clock() + STORE_BACKOFF_S
        self._apply([self.scheduler.release(lease_id, reason)])
        self._push_workers()

    def error(self, worker_id: str, failure: SliceFailure) -> dict[str, Any]:
        """A worker could not transcribe a slice: it goes to another worker, or fails after max_attempts."""
        with self.lock:
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
        with self.lock:
            self._apply(self.scheduler.reap(self.clock()))
            for job_id in sorted(self._unsaved):  # a job whose status could not be stored: try again
                self._unsaved.discard(job_id)
                if self._after_slice_change(job_id):
                    self._save_timing(job_id)
            self.dispatch()

    # --- handing out -----------------------------------------------------------------------------------------

    def dispatch(self, changed: str | None = None) -> set[str]:
        """Give queued slices to free worker slots and send each its audio; then push each job touched, and
        the job ``changed`` (a result just landed in it) with them, so it is read and pushed once, not twice.
        Returns the jobs this finished."""
        with self.lock:
            touched: dict[str, None] = {}
            now = self.clock()
            for lease in self.scheduler.assign(now) if now >= self._hold_until else []:
                self._send(lease)
                touched[lease.key.job_id] = None
            if changed is not None:
                touched[changed] = None
            finished = set()
            for job_id in touched:
                t0 = time.perf_counter()
                if self._after_slice_change(job_id):
                    finished.add(job_id)
                timing = self._timing.setdefault(job_id, JobTiming())
                if job_id == changed:
                    timing.merge_s += time.perf_counter() - t0
                else:
                    timing.dispatch_s += time.perf_counter() - t0
            if touched:  # pages show who is busy and what each has done: a hand-out or a result changes that
                self._push_workers()
            return finished

    def _send(self, lease: Lease) -> None:
        """Send a leased slice to its worker. If that fails after the lease is made (the store cannot record it,
        the emit fails), the lease is given back at once rather than holding the worker's slot until it
        expires."""
        t0 = time.perf_counter()
        key = lease.key
        worker = self.scheduler.workers[lease.worker_id].info
        try:
            payload, heard = self._slice_audio(key, worker)
        except (OSError, ValueError) as exc:  # the job's audio is gone: nobody can ever do this slice
            log.error("slice %s: cannot read audio: %s", key, exc)
            self._apply([self.scheduler.fail(lease.worker_id, lease.id, key, f"audio unreadable: {exc}",
                                             self.clock())])
            return
        task = self.scheduler.tasks[key]
        try:
            if not lease.duplicate:
                self.store.update_slice(key.job_id, key.index, status="leased", worker=worker.name,
                                        attempts=task.attempts)
            self._heard.setdefault(key, {})[lease.id] = heard
            # span: where the slice's own audio lies in what is sent (the rest is guard bands, see guard.py).
            self.emit("slice", {"lease": lease.id, "job": key.job_id, "index": key.index,
                                "seconds": task.seconds, "audio": payload, "span": list(heard.span)},
                      to=lease.worker_id, namespace="/worker")
        except Exception as exc:  # noqa: BLE001 - whatever failed, the worker must not lose its slot to it
            log.error("slice %s/%d: could not be sent to %s (%s); back to the queue", key.job_id, key.index,
                      worker.name, exc)
            self._release(lease.id, f"could not be sent: {disk.FULL if disk.is_full(exc) else exc}")
            return
        timing = self._timing.setdefault(key.job_id, JobTiming())
        timing.sent(lease.id, self.clock(), time.perf_counter() - t0)

    def _slice_audio(self, key: SliceKey, worker: WorkerInfo) -> tuple[bytes, guard.Heard]:
        """The WAV a worker is sent for a slice, and what it holds: the slice's pieces, with guard bands of its
        neighbours' audio for a worker whose engine times its words (the server keeps only the slice's own)."""
        samples = self._audio.get(key.job_id)
        if samples is None:
            samples = self._audio[key.job_id] = audio.PcmFile(self.audio_path(key.job_id))
        own = self._pieces[key]
        if worker.words and self.settings.guard.guard_s > 0:
            # The neighbours within reach of a guard band (a slice is rarely under a second long).
            reach = max(1, math.ceil(self.settings.guard.guard_s))
            first = max(0, key.index - reach)
            around = self.store.pieces_between(key.job_id, first, key.index + reach + 1)
            heard = guard.heard(around, key.index - first, self.settings.guard)
        else:
            heard = guard.Heard(tuple(own), (0.0, guard.length(own)))
        rate = audio.TARGET_RATE
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
                self._pieces.pop(key, None)
                self._heard.pop(key, None)
                log.warning("slice %s failed: %s", key, outcome.reason)
            try:
                if outcome.status == SliceStatus.QUEUED:
                    task = self.scheduler.tasks.get(key)  # its tries: a lease given back does not count
                    self.store.update_slice(key.job_id, key.index, status="queued", worker="",
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
            if self._after_slice_change(job_id):
                self._save_timing(job_id)

    def _after_slice_change(self, job_id: str) -> bool:
        """Recompute a job's status from its slices, store it, push the job to its pages. True when this
        change finished the job."""
        job = self.store.get_job(job_id)
        if job is None:
            return False
        finished = False
        states = [s.status for s in job.slices]
        # A live job is never done while it is recording: more slices may come.
        if states and all(s in ("done", "failed") for s in states) and not job.recording:
            status = "failed" if all(s == "failed" for s in states) else "done"
            failed = [s for s in job.slices if s.status == "failed"]
            error = "; ".join(transcript.failure_marker(s)[1:-1] for s in failed)
            if job.status not in ("done", "failed"):
                job.status, job.error, job.finished_at = status, error, time.time()
                if not failed and not any(s.text.strip() for s in job.slices):
                    job.note = NO_SPEECH  # every slice came back without words: say so, as for silence
                if not self._store_status(job_id, status=status, error=error, finished_at=job.finished_at,
                                          note=job.note):
                    return False
                self._audio.pop(job_id, None)
                log.info("job %s %s: %d slices, %d failed", job_id, status, len(states), len(failed))
                self._push_jobs()
                finished = True
        elif any(s in ("leased", "done", "failed") for s in states):
            if job.status != "running":
                job.status = "running"
                self._store_status(job_id, status="running")
        # The job as just stored, without reading it back: this runs after every hand-out and result.
        self.emit("job", views.job_view(job, self.scheduler, self.partials.get(job_id)), to=f"job:{job_id}",
                  namespace="/")
        if finished:
            self.speakers.changed(job_id)  # its speakers are worked out once more, final now
        return finished

    def _store_status(self, job_id: str, **values: Any) -> bool:
        """Store a job's derived state; on failure (a full disk) :meth:`tick` recomputes and stores it again."""
        try:
            self.store.update_job(job_id, **values)
            return True
        except STORE_ERRORS as exc:
            log.error("job %s: its status could not be stored (%s); trying again", job_id, exc)
            self._unsaved.add(job_id)
            return False

    def _save_timing(self, job_id: str) -> None:
        """Write where a finished job's time went into its stats (see ``timing``)."""
        timing = self._timing.pop(job_id, None)
        job = self.store.get_job(job_id)
        if timing is not None and job is not None:
            try:
                self.store.update_job(job_id, stats={**job.stats, **timing.stats()})
            except STORE_ERRORS as exc:  # only statistics: not worth a retry
                log.error("job %s: its timing could not be stored: %s", job_id, exc)

    # --- views -----------------------------------------------------------------------------------------------

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

    def _push_job(self, job_id: str) -> None:
        view = self.job_view(job_id)
        if view is not None:
            self.emit("job", view, to=f"job:{job_id}", namespace="/")

    def _push_open_jobs(self) -> None:
        for job_id in sorted({key.job_id for key in self.scheduler.tasks}):
            self._push_job(job_id)

    def _push_jobs(self) -> None:
        self.emit("jobs", self.jobs_view(), namespace="/")

    def _push_workers(self) -> None:
        self.emit("workers", self.workers_view(), namespace="/")
