"""A benchmarking engine: it sleeps a fixed time per second of audio and hears no words.

Used by the scale-out benchmark (``python -m bench scaleout``): with no model to limit it, a job's time shows
only what the server, the scheduler and the transport add on top of the workers' work. ``--model`` carries the
seconds of sleep per second of audio (default 0.1, a worker ten times faster than real time). Not for
transcribing anything: its "text" only says how much audio it was given.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator

import numpy as np

from .base import SAMPLE_RATE, Segment

#: Seconds of sleep per second of audio when ``--model`` is not given.
DEFAULT_SECONDS_PER_AUDIO_S = 0.1


class SleepEngine:
    name = "sleep"
    max_slice_s = 30.0

    def __init__(self, model: str = "", device: str = "cpu", compute_type: str = "int8", threads: int = 2,
                 beam_size: int = 5, slots: int = 1):
        # The worker's keywords, like every engine (engines/base.py); only ``model`` means anything here.
        try:
            rate = float(model) if model else DEFAULT_SECONDS_PER_AUDIO_S
        except ValueError:
            raise ValueError("the sleep engine's --model is seconds of sleep per audio second, "
                             f"not {model!r}") from None
        if not 0 <= rate <= 100:
            raise ValueError(f"the sleep engine's --model must lie between 0 and 100, not {rate}")
        self.seconds_per_audio_s = rate
        self.model = f"{rate:g}"

    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        seconds = len(audio) / SAMPLE_RATE
        time.sleep(seconds * self.seconds_per_audio_s)
        yield Segment(0.0, seconds, f"[{seconds:.2f} s]")

    def transcribe_tentative(self, audio: np.ndarray, prefix: str = "",
                             abandon: Callable[[], bool] | None = None) -> str | None:
        """Tentative "text" as slow as a slice's: the prefix it was given, then how much audio it had; None if
        ``abandon()``, asked half-way, says to give up."""
        seconds = len(audio) / SAMPLE_RATE
        time.sleep(seconds * self.seconds_per_audio_s / 2)
        if abandon is not None and abandon():
            return None
        time.sleep(seconds * self.seconds_per_audio_s / 2)
        return f"{prefix} [{seconds:.2f} s]".strip()
