"""What every engine provides: load once in ``__init__``, then ``transcribe`` any number of slices.

Every engine's constructor takes the same keywords (``model``, ``device``, ``compute_type``, ``threads``,
``beam_size``, ``slots``), so the worker's command line can build any of them the same way; an engine ignores
the ones that mean nothing to it (the README's "Engines" section says which).
"""

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


def pcm16_bytes(audio: np.ndarray) -> bytes:
    """float32 samples in [-1, 1] → little-endian 16-bit PCM, the format Sphinx and Google take. The exact
    inverse of the worker's decoding (``int16 / 32768``), so a slice reaches them as the server sent it."""
    scaled = np.round(np.asarray(audio, dtype=np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()
