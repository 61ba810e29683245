"""Cutting again the queued slices no connected worker will take (each announces a shorter ``max_slice_s``): say
a job cut at 28 s while no worker was connected, then a Google worker that takes 25 s. The planning is pure
functions; :class:`Replanner` puts the new slices in place."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from . import audio, splitter
from .planning import fit_to_workers, slice_records
from .records import JobRecord, SliceRecord
from .scheduler import Requirement, Scheduler
from .states import SliceStatus
from .store import Store

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

log = logging.getLogger("scatterscribe")


def unservable(scheduler: Scheduler) -> dict[str, float]:
    """The jobs with a queued slice longer than any connected worker that may serve it takes, each with the
    longest slice such a worker takes. A job with a slice out is left until none is: renumbering must never
    move a slice a worker holds."""
    wanted: dict[str, float] = {}
    busy = {lease.key.job_id for lease in scheduler.leases.values()}
    limits: dict[Requirement, float | None] = {}
    for key in scheduler.queue:
        task = scheduler.tasks[key]
        if key.job_id in busy:
            continue
        if task.requirement not in limits:
            limits[task.requirement] = scheduler.longest_slice_s(task.requirement)
        longest = limits[task.requirement]
        if longest is not None and task.seconds > longest + 1e-6:
            wanted[key.job_id] = min(longest, wanted.get(key.job_id, longest))
    return wanted


def queued_runs(slices: list[SliceRecord], longest_s: float) -> list[tuple[int, int]]:
    """Runs ``(first, end)`` of consecutive queued slices (positions in ``slices``) that hold a slice longer than
    ``longest_s``: the parts of a job to cut again. Done, failed and leased slices, and slices being transcribed
    again, are never part of a run."""
    runs, first = [], None
    for pos, s in enumerate([*slices, None]):
        if s is not None and s.status == SliceStatus.QUEUED and not s.redo_of:  # a redone slice's text fits its bounds
            first = pos if first is None else first
            continue
        if first is not None and any(x.seconds > longest_s + 1e-6 for x in slices[first:pos]):
            runs.append((first, pos))
        first = None
    return runs


def regions(slices: list[SliceRecord], runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each run's span of the recording ``[start, end)`` in samples."""
    rate = audio.TARGET_RATE
    return [(round(slices[a].start * rate), round(slices[b - 1].end * rate)) for a, b in runs]


def plan_regions(path: Path, regions: list[tuple[int, int]], threshold_db: float | None,
                 opts: splitter.SplitOptions) -> list[list[splitter.Slice]]:
    """Slices for each region ``[start, end)`` (samples) of a job's audio, with the recording's threshold
    (measured again when the job did not keep it). CPU and disk work: the caller runs it off the event loop."""
    samples = audio.PcmFile(path)
    if threshold_db is None:
        threshold_db = splitter.analyse(samples, opts).threshold_db
    return [splitter.plan_span(samples, start, end, threshold_db, opts) for start, end in regions]


def merged(slices: list[SliceRecord], runs: list[tuple[int, int]], plans: list[list[splitter.Slice]],
           longest_s: float) -> list[SliceRecord] | None:
    """The job's slices with each run replaced by its new plan, numbered again in recording order (each new
    slice keeps the most tries of those it replaces); None when a plan is empty or still holds a slice longer
    than ``longest_s``."""
    if any(not plan or max(s.length for s in plan) / audio.TARGET_RATE > longest_s + 1e-6 for plan in plans):
        return None
    out: list[SliceRecord] = []
    previous = 0
    for (first, end), plan in zip(runs, plans, strict=True):
        out += slices[previous:first]
        attempts = max(s.attempts for s in slices[first:end])
        out += [replace(r, attempts=attempts) for r in slice_records(plan)]
        previous = end
    out += slices[previous:]
    return [replace(s, index=i) for i, s in enumerate(out)]


class Replanner:
    """Puts the new plans in place: the store first, then the queue (``Coordinator.replan_unservable``)."""

    def __init__(self, opts: splitter.SplitOptions, store: Store, scheduler: Scheduler, dispatcher: Dispatcher,
                 run_blocking: Callable[..., Any], audio_path: Callable[[str], Path]):
        self.splitter, self.store, self.scheduler, self.dispatcher = opts, store, scheduler, dispatcher
        self.run_blocking, self.audio_path = run_blocking, audio_path
        self._tried: set[tuple[str, float, int]] = set()  # re-cuts that could not be made; not retried

    def run(self) -> int:
        """Cut again the queued slices that no connected worker a job may use will take (``replan``): each run
        of consecutive queued slices holding such a slice is planned anew by the splitter at the longest length
        one of those workers takes, with the recording's threshold (cuts still in pauses); done, failed and
        leased slices are kept, and the slices are numbered again in recording order. A job with a slice out
        waits until none is (renumbering must never move a slice a worker holds). Returns how many jobs were
        re-cut."""
        with self.dispatcher.pushes.lock:
            wanted = unservable(self.scheduler)
        recut = 0
        for job_id, longest in wanted.items():
            with self.dispatcher.pushes.lock:
                job = self.store.get_job(job_id)
                if job is None or (job_id, longest, len(job.slices)) in self._tried:
                    continue
                runs = queued_runs(job.slices, longest)
            if not runs:
                continue
            opts = fit_to_workers(self.splitter, longest)
            try:
                plans = self.run_blocking(plan_regions, self.audio_path(job_id),
                                          regions(job.slices, runs), job.stats.get("threshold_db"), opts)
            except (OSError, ValueError) as exc:
                log.error("job %s: cannot cut its waiting slices again: %s", job_id, exc)
                self._tried.add((job_id, longest, len(job.slices)))
                continue
            with self.dispatcher.pushes.operation():
                if self._replace_runs(job, runs, plans, longest):
                    recut += 1
                else:
                    self._tried.add((job_id, longest, len(job.slices)))
        return recut

    def _replace_runs(self, job: JobRecord, runs: list[tuple[int, int]], plans: list[list[splitter.Slice]],
                      longest: float) -> bool:
        """Put the new slices of each run in place of the old ones, if the job is as it was when they were
        planned (no slice out, the same slices in the same states). Under the lock."""
        now = self.store.get_job(job.id)
        if now is None or any(lease.key.job_id == job.id for lease in self.scheduler.leases.values()) or \
                [(s.index, s.status) for s in now.slices] != [(s.index, s.status) for s in job.slices]:
            return False
        new = merged(now.slices, runs, plans, longest)
        if new is None:
            log.warning("job %s: its waiting slices could not be cut to %.1f s", job.id, longest)
            return False
        self.store.replace_slices(job.id, new)  # first: if it fails, the old slices are still queued
        self.dispatcher.unqueue(job.id)  # the old slices leave the queue (none is out: checked above)
        now.slices = new
        self.dispatcher.queue(now)
        log.info("job %s: %d waiting slice(s) cut again into %d to fit the connected workers' %.1f s", job.id,
                 sum(end - first for first, end in runs), sum(len(p) for p in plans), longest)
        self.dispatcher.settle(job.id)
        self.dispatcher.pushes.jobs()
        return True
