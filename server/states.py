"""The states a slice and a job go through, and the only moves between them (as python-rq spells out a job's life).

A slice's status is the scheduler's to change (``scheduler.py`` checks every move against :data:`SLICE_MOVES`);
a job's status is never set by hand: it follows from its slices (:func:`job_status`). Both are ``StrEnum``: they
are stored and sent to pages as their plain values.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Mapping


class SliceStatus(StrEnum):
    QUEUED = "queued"
    LEASED = "leased"
    DONE = "done"
    FAILED = "failed"


class JobStatus(StrEnum):
    QUEUED = "queued"  # no slice handed out yet
    RUNNING = "running"
    DONE = "done"  # every slice finished, at least one with text (or none had speech)
    FAILED = "failed"  # every slice failed

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED)


#: The only moves a slice may make. A done or failed slice sent to be transcribed again (``redo``) is a new
#: task for the scheduler: it starts queued again.
SLICE_MOVES: dict[SliceStatus, frozenset[SliceStatus]] = {
    SliceStatus.QUEUED: frozenset({SliceStatus.LEASED, SliceStatus.FAILED}),
    SliceStatus.LEASED: frozenset({SliceStatus.DONE, SliceStatus.QUEUED, SliceStatus.FAILED}),
    SliceStatus.DONE: frozenset(),
    SliceStatus.FAILED: frozenset(),
}

#: The only moves a job may make: a finished job runs again while one of its slices is transcribed again.
JOB_MOVES: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.DONE, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.DONE, JobStatus.FAILED}),
    JobStatus.DONE: frozenset({JobStatus.RUNNING}),
    JobStatus.FAILED: frozenset({JobStatus.RUNNING}),
}

OPEN_SLICE = frozenset({SliceStatus.QUEUED, SliceStatus.LEASED})
FINISHED_SLICE = frozenset({SliceStatus.DONE, SliceStatus.FAILED})


class IllegalTransition(RuntimeError):
    """A slice or a job was asked to make a move the tables above do not contain (a bug, never user input)."""


def job_status(current: JobStatus, slices: Mapping[SliceStatus, int], recording: bool) -> JobStatus:
    """What a job's status is, given how many of its slices are in each status: finished when every slice is
    (never while a live recording goes on: more slices may come), failed only when every slice failed; running
    once any slice was handed out or finished; else as it was."""
    total = sum(slices.values())
    unfinished = sum(n for status, n in slices.items() if status not in FINISHED_SLICE)
    if total and not recording and not unfinished:
        new = JobStatus.FAILED if slices.get(SliceStatus.FAILED, 0) == total else JobStatus.DONE
        # A job that finished stays as it finished (its failures are in its slices); only a slice sent to be
        # transcribed again makes it run again.
        return current if current.finished else new
    if total - slices.get(SliceStatus.QUEUED, 0) > 0:
        return JobStatus.RUNNING
    return current


def check_job_move(current: JobStatus, new: JobStatus) -> None:
    if new != current and new not in JOB_MOVES[current]:
        raise IllegalTransition(f"a job cannot go from {current} to {new}")
