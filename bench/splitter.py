"""Finding the pauses: the server's numpy splitter against Silero VAD and pydub, on the ten-minute recording.

The split must cost well under 1 % of the transcription, so its speed decides the method
(``server/splitter.py`` explains the choice). Every method gets the same samples already in memory; each run
takes every method once, in an order that rotates from run to run; the report gives medians and each method's
time relative to ours.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from server import splitter
from server.audio import TARGET_RATE

from . import workload


@dataclass
class MethodResult:
    label: str
    seconds: list[float] = field(default_factory=list)
    cuts: int = 0  # stretches of speech (or slices) it found

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class SplitterResult:
    workload_s: float
    runs: int
    methods: dict[str, MethodResult]


def _ours(samples: np.ndarray) -> int:
    opts = splitter.SplitOptions()
    return len(splitter.split_for_parallelism(splitter.analyse(samples, opts), opts, idle_slots=2))


def _silero(samples: np.ndarray) -> int:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return len(get_speech_timestamps(samples.astype(np.float32) / 32768.0, VadOptions()))


def _pydub(seek_step: int) -> Callable[[np.ndarray], int]:
    def run(samples: np.ndarray) -> int:
        from pydub import AudioSegment
        from pydub.silence import split_on_silence

        segment = AudioSegment(samples.tobytes(), frame_rate=TARGET_RATE, sample_width=2, channels=1)
        return len(split_on_silence(segment, min_silence_len=300, silence_thresh=-40, keep_silence=200,
                                    seek_step=seek_step))
    return run


METHODS: dict[str, tuple[str, Callable[[np.ndarray], int]]] = {
    "numpy": ("Scatterscribe: 20 ms RMS frames, adaptive threshold, slice plan (numpy)", _ours),
    "silero": ("Silero VAD (faster-whisper's, ONNX)", _silero),
    "pydub-10": ("pydub `split_on_silence`, seek_step=10", _pydub(10)),
    "pydub-1": ("pydub `split_on_silence`, seek_step=1", _pydub(1)),
}


def run(work: workload.Workload, runs: int, log: Callable[[str], None] = print) -> SplitterResult:
    samples = np.array(workload.read_pcm16(work.path))
    results = {key: MethodResult(label) for key, (label, _) in METHODS.items()}
    order = list(METHODS)
    for r in range(runs):
        for key in order[r % len(order):] + order[: r % len(order)]:
            t0 = time.perf_counter()
            results[key].cuts = METHODS[key][1](samples)
            results[key].seconds.append(time.perf_counter() - t0)
            log(f"  run {r + 1}/{runs}: {METHODS[key][0]}: {results[key].seconds[-1]:.3f} s")
    return SplitterResult(work.seconds, runs, results)
