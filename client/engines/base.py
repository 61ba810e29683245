"""What every engine provides: load once in ``__init__``, then ``transcribe`` any number of slices.

Every engine's constructor takes the same keywords (``model``, ``device``, ``compute_type``, ``threads``,
``beam_size``, ``slots``), so the worker's command line can build any of them the same way; an engine ignores
the ones that mean nothing to it (the README's "Engines" section says which).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator, NamedTuple, Protocol, runtime_checkable

import numpy as np

SAMPLE_RATE = 16000
#: Longest word sent to the server (its payload check refuses longer ones; a real word is far shorter).
MAX_WORD_CHARS = 200


class Word(NamedTuple):
    """One aligned word, in seconds from the start of the audio the engine was given; ``word`` is the plain
    word with its punctuation (Whisper's leading space stripped); ``probability`` in [0, 1]."""

    start: float
    end: float
    word: str
    probability: float


class Segment(NamedTuple):
    """Timed text, in seconds from the start of the audio the engine was given. ``words``: its words with their
    times, empty for an engine without word times; ``avg_logprob``: the decoder's average log probability of
    its tokens, None where the engine has none."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float | None = None


class Engine(Protocol):
    #: Engine name as announced to the server ("faster-whisper", "whisper", "sphinx", "google", ...).
    name: str
    #: Model the engine loaded, as shown on the page and stored with each slice.
    model: str
    #: Longest slice this engine accepts, in seconds (the server honours it).
    max_slice_s: float
    #: Optional, default False: every segment carries its aligned words (then the server may send a slice with
    #: guard bands of the neighbouring audio and keep only the slice's own words).
    # word_times: bool
    #: Optional, default: its slots. Slices it decodes truly at the same time (the server cuts a recording
    #: finer only for those).
    # parallel: int

    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        """Segments of ``audio`` (float32, mono, 16 kHz), yielded as they are decoded so a caller can stop
        early (the slice was cancelled)."""
        ...


@runtime_checkable  # the worker asks isinstance(engine, BatchEngine) to choose how it feeds the engine
class BatchEngine(Engine, Protocol):
    """An engine that decodes several slices in one call: the worker gives it every slice waiting, up to its
    slots, at once (a plain ``Engine`` gets them one at a time, a slot each)."""

    def transcribe_batch(self, audios: list[np.ndarray], spans: list[tuple[float, float] | None] | None = None
                         ) -> list[list[Segment] | Exception]:
        """The segments of each slice (float32, mono, 16 kHz), in seconds from its start. ``spans``: where each
        slice's own audio lies in what it holds (guard bands of its neighbours around it), None for all of it.
        A slice that cannot be decoded gets its exception in its place, so the worker reports it alone and
        answers its batch-mates."""
        ...


def words_of(words: Iterable[Any]) -> tuple[Word, ...]:
    """Whisper's aligned words (faster-whisper's objects or openai-whisper's dicts) as ``Word``s: leading space
    stripped, empty ones dropped, probability a finite number in [0, 1] (JSON has no NaN)."""
    out = []
    for w in words:
        get = w.get if isinstance(w, dict) else (lambda key, w=w: getattr(w, key))
        text = str(get("word")).strip()[:MAX_WORD_CHARS]
        p = float(get("probability"))
        if text:
            start = max(0.0, float(get("start")))
            out.append(Word(round(start, 3), round(max(start, float(get("end"))), 3), text,
                            round(min(1.0, max(0.0, p)), 3) if math.isfinite(p) else 0.0))
    return tuple(out)


def logprob(value: Any) -> float | None:
    """An average log probability as a finite float, or None (JSON has no NaN or infinity)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return round(min(0.0, v), 4) if math.isfinite(v) else None


def pcm16_bytes(audio: np.ndarray) -> bytes:
    """float32 samples in [-1, 1] → little-endian 16-bit PCM, the format Sphinx and Google take. The exact
    inverse of the worker's decoding (``int16 / 32768``), so a slice reaches them as the server sent it."""
    scaled = np.round(np.asarray(audio, dtype=np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()
