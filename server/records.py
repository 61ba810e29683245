"""What the store keeps, as Python values: a job, its slices, a slice's voices (``store.py`` reads and writes
them; everything else passes them around)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .states import OPEN_SLICE, JobStatus, SliceStatus


@dataclass(frozen=True)
class VoiceRecord:
    """The voices of one done slice, as ``store.VOICES_SCHEMA`` keeps them."""

    slice_start: float
    model: str  # '' : the worker sent no voices
    error: str
    spans: list[tuple[float, float]]
    vectors: bytes  # float32, len(spans) × dim
    dim: int
    worker_s: float  # what embedding them cost the worker


@dataclass
class SliceRecord:
    """One slice as stored. Times are seconds of the original recording; ``pieces`` are the stretches of it
    the worker hears back to back (long pauses left out); ``segments`` are the worker's timed text, already
    shifted to the original timeline."""

    index: int
    start: float
    end: float
    pieces: list[tuple[float, float]]
    status: SliceStatus = SliceStatus.QUEUED
    text: str = ""
    segments: list[dict[str, Any]] = field(default_factory=list)
    worker: str = ""
    engine: str = ""
    model: str = ""
    attempts: int = 0
    error: str = ""
    elapsed: float | None = None
    finished_at: float | None = None
    #: Corrections, by segment number ("0", "1", ...): {"original", "at"}; the corrected text is in
    #: ``segments`` and ``text`` themselves (so every reader gets it), the worker's text is kept here.
    edits: dict[str, dict[str, Any]] = field(default_factory=dict)
    asked_engine: str = ""  # what a "transcribe again" asked of workers ('' = what the job asks)
    asked_model: str = ""
    #: Every word the worker heard, guard bands included, on the recording's timeline (``stitch``): what a
    #: neighbour settled later compares its own words with. Not shown to pages.
    heard: list[dict[str, Any]] = field(default_factory=list)
    #: While a slice is being transcribed again (``redo.py``): the status it had before ("done" or "failed"),
    #: which a cancelled or failed new try returns it to; '' otherwise.
    redo_of: str = ""

    @property
    def seconds(self) -> float:
        """Audio the worker receives for this slice."""
        return sum(b - a for a, b in self.pieces)

    @property
    def transcribed(self) -> bool:
        """Whether the slice's text is part of the transcript: it is done, or it is being transcribed again
        after it was done (its last text stands until the new one replaces it)."""
        return self.status == SliceStatus.DONE or (self.redo_of == SliceStatus.DONE and self.status in OPEN_SLICE)


@dataclass
class JobRecord:
    """One transcription job. ``engine``/``model`` are what the job asks of workers ('' = any)."""

    id: str
    name: str
    source: str  # "upload" or "live"
    created_at: float
    status: JobStatus = JobStatus.QUEUED
    duration: float = 0.0
    engine: str = ""
    model: str = ""
    error: str = ""
    note: str = ""
    finished_at: float | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    recording: bool = False  # a live recording still being made: more audio and slices may come
    #: Who speaks when, and the speakers' names (``speaker_jobs.py`` keeps it; {} before it has a say).
    speakers: dict[str, Any] = field(default_factory=dict)
    slices: list[SliceRecord] = field(default_factory=list)
