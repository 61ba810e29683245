"""What every engine provides: load once in ``__init__``, then ``transcribe`` any number of slices."""

from __future__ import annotations

from typing import Iterator, NamedTuple, Protocol

import numpy as np

SAMPLE_RATE = 16000


class Segment(NamedTuple):
    """Timed text, in seconds from the start of the audio the engine was given."""

    start: float
    end: float
    text: str


class Engine(Protocol):
    #: Engine name as announced to the server ("faster-whisper", "whisper", "sphinx", "google", ...).
    name: str
    #: Model the engine loaded, as shown on the page and stored with each slice.
    model: str
    #: Longest slice this engine accepts, in seconds (the server honours it).
    max_slice_s: float

    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        """Segments of ``audio`` (float32, mono, 16 kHz), yielded as they are decoded so a caller can stop
        early (the slice was cancelled)."""
        ...
