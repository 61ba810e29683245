"""What the server keeps in memory about a job while its slices are out, in one object per job.

Everything here can be rebuilt from the store after a restart (the store is the truth; ``Coordinator.resume``
queues the unfinished slices again), so none of it is written anywhere: it only saves reading the store again
on every hand-out and result. A running job is opened when its slices are queued and dropped in one place,
:meth:`RunningJobs.drop`, when it finishes or is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import audio, guard
from .states import JobStatus
from .timing import JobTiming

Piece = tuple[float, float]


@dataclass
class RunningJob:
    #: Where the job's 16 kHz samples are (opened on the first hand-out, again after a live recording grew).
    audio_path: Path
    #: Each queued or leased slice's own pieces, by slice index (what the worker must transcribe).
    pieces: dict[int, list[Piece]] = field(default_factory=dict)
    #: What each lease of a slice was sent (pieces with guard bands, and where the slice's own audio lies), by
    #: slice index, then lease id: the worker's word times are in that audio.
    heard: dict[int, dict[str, guard.Heard]] = field(default_factory=dict)
    timing: JobTiming = field(default_factory=JobTiming)
    #: The job's status as last stored (None until it is worked out): while it is running with slices still
    #: open, a result changes nothing of it, and the store is not read to learn that.
    status: JobStatus | None = None
    _samples: audio.PcmFile | None = None

    @property
    def samples(self) -> audio.PcmFile:
        if self._samples is None:
            self._samples = audio.PcmFile(self.audio_path)
        return self._samples

    def audio_grew(self) -> None:
        """A live recording appended samples: read the file's length again at the next hand-out."""
        self._samples = None

    def queued(self, index: int, pieces: list[Piece]) -> None:
        self.pieces[index] = pieces

    def sent(self, index: int, lease_id: str, heard: guard.Heard) -> None:
        self.heard.setdefault(index, {})[lease_id] = heard

    def what_was_heard(self, index: int, lease_id: str) -> guard.Heard:
        """What a lease of slice ``index`` was sent; its own pieces alone when no record of it is left."""
        return self.heard.get(index, {}).get(lease_id) or guard.Heard(tuple(self.pieces.get(index, ())),
                                                                        (0.0, 0.0))

    def forget(self, index: int) -> None:
        """Slice ``index`` is finished or taken out of the queue: nothing of it is needed any more."""
        self.pieces.pop(index, None)
        self.heard.pop(index, None)


class RunningJobs:
    """The running jobs, by id. ``audio_path(job_id)`` says where a job's samples are."""

    def __init__(self, audio_path: Callable[[str], Path]):
        self._audio_path = audio_path
        self._jobs: dict[str, RunningJob] = {}

    def __getitem__(self, job_id: str) -> RunningJob:
        """The job's in-memory state, opened on first use."""
        job = self._jobs.get(job_id)
        if job is None:
            job = self._jobs[job_id] = RunningJob(self._audio_path(job_id))
        return job

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._jobs

    def drop(self, job_id: str) -> RunningJob | None:
        """The job finished or was deleted: forget it, and return what was kept (its timing is saved)."""
        return self._jobs.pop(job_id, None)
