"""What a user would run instead of Scatterscribe: faster-whisper on the whole file, in this process.

Both baselines get the WAV's path, as a user would pass it, and the same model as the workers (the bundled
tiny.en, int8, beam 5, English). The model is loaded once, before any timing, as the workers load theirs
before the job arrives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from client.engines.faster_whisper_engine import bundled_model_path


@dataclass(frozen=True)
class BaselineRun:
    wall_s: float
    transcript: str


class Baselines:
    """``plain``: ``WhisperModel.transcribe`` (sequential 30 s windows, conditioned on the previous text);
    ``batched``: ``BatchedInferencePipeline.transcribe`` (Silero VAD chunks of up to 30 s, ``batch_size``
    at once)."""

    def __init__(self, threads: int = 2, beam_size: int = 5, batch_size: int = 8):
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        self.model = WhisperModel(str(bundled_model_path()), device="cpu", compute_type="int8",
                                  cpu_threads=threads)
        self.pipeline = BatchedInferencePipeline(self.model)
        self.beam_size = beam_size
        self.batch_size = batch_size

    def plain(self, path: Path) -> BaselineRun:
        t0 = time.perf_counter()
        segments, _ = self.model.transcribe(str(path), language="en", beam_size=self.beam_size)
        text = " ".join(s.text.strip() for s in segments)  # segments are decoded as they are read
        return BaselineRun(time.perf_counter() - t0, text)

    def batched(self, path: Path) -> BaselineRun:
        t0 = time.perf_counter()
        segments, _ = self.pipeline.transcribe(str(path), language="en", beam_size=self.beam_size,
                                               batch_size=self.batch_size)
        text = " ".join(s.text.strip() for s in segments)
        return BaselineRun(time.perf_counter() - t0, text)
