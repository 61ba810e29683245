"""Cutting again the queued slices no connected worker will take (each announces a shorter ``max_slice_s``): say
a job cut at 28 s while no worker was connected, then a Google worker that takes 25 s. Pure planning here; the
coordinator puts the new slices in place (``Coordinator.replan_unservable``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from . import audio, splitter
from .planning import slice_records
from .scheduler import Requirement, Scheduler
from .states import SliceStatus
from .store import SliceRecord


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
