"""The beam width: WER and decoding time of each, as a one-thread worker decodes its slices.

In this process, without a server: the joined workload and the corpus's long recordings are cut as the server
cuts them for busy workers (``[splitter] max_slice_s``, ``bench/slicing.plan``), each slice is given its guard
bands and decoded alone on a one-thread engine, as each worker of the 2 × 1 layout decodes it, and the words are
stitched as the server does (``slicing.transcribe``). Every run decodes everything at every beam width, in an
order that rotates from run to run; the time of each width is its decoding time over the first width's (beam 5,
the default) in the same run, median over the runs (a shared machine's timings mean nothing alone).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Callable

from server import guard
from server.audio import PcmFile
from server.config import Settings
from tests.support import wer

from . import slicing, workload
from .width import Recording

BEAMS = (5, 4, 3, 1)
GUARD_S = guard.GuardOptions().guard_s  # the server's own defaults
MAX_SLICE_S = Settings().splitter.max_slice_s  # the server's cut when it has more audio than slots


@dataclass
class Beam:
    beam_size: int
    joined_s: list[float] = field(default_factory=list)
    long_s: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # (joined + long) time over beam 5's, each run
    joined_wer: float = 0.0  # tiers A/A-/B
    joined_wer_all: float = 0.0
    long_wer: float = 0.0  # every long recording, pooled


@dataclass
class BeamsResult:
    joined_s: float
    joined_slices: int
    recordings: list[str]
    long_slices: int
    runs: int
    beams: list[Beam]


def run(recordings: list[Recording], work: workload.Workload, beams: tuple[int, ...] = BEAMS, runs: int = 3,
        log: Callable[[str], None] = print) -> BeamsResult:
    """Every beam width of ``beams`` (the first is the reference for the time ratios), ``runs`` times."""
    from client.engines.faster_whisper_engine import FasterWhisperEngine

    opts = Settings().splitter
    joined = PcmFile(work.path)[:]
    joined_plan = slicing.plan(joined, MAX_SLICE_S, opts)
    samples = {r.name: PcmFile(r.path)[:] for r in recordings}
    plans = {r.name: slicing.plan(samples[r.name], MAX_SLICE_S, opts) for r in recordings}
    engines = {b: FasterWhisperEngine(threads=1, slots=1, beam_size=b) for b in beams}
    results = {b: Beam(b) for b in beams}

    def decode(b: int) -> tuple[str, list[str], float, float]:
        text, joined_s = slicing.transcribe(engines[b], joined, joined_plan, GUARD_S, 1, 0)
        texts, long_s = [], 0.0
        for n, r in enumerate(recordings):
            t, s = slicing.transcribe(engines[b], samples[r.name], plans[r.name], GUARD_S, 1, n)
            texts.append(t)
            long_s += s
        return text, texts, joined_s, long_s

    for k in range(runs):
        order = list(beams[k % len(beams):] + beams[:k % len(beams)])
        seconds = {}
        for b in order:
            text, texts, joined_s, long_s = decode(b)
            side = results[b]
            side.joined_s.append(joined_s)
            side.long_s.append(long_s)
            score = workload.score(work.parts, text)
            side.joined_wer, side.joined_wer_all = score.trusted, score.all
            side.long_wer = wer([r.reference for r in recordings], texts)
            seconds[b] = joined_s + long_s
            log(f"  run {k + 1}, beam {b}: joined {joined_s:.1f} s, WER {side.joined_wer:.2f} %; long {long_s:.1f} s, "
                f"WER {side.long_wer:.2f} %")
        for b in beams:
            results[b].ratios.append(seconds[b] / seconds[beams[0]])
    return BeamsResult(work.seconds, len(joined_plan), [r.name for r in recordings],
                       sum(len(p) for p in plans.values()), runs, [results[b] for b in beams])


def markdown(result: BeamsResult) -> str:
    first = result.beams[0].beam_size
    lines = [
        f"The joined workload ({result.joined_s:.0f} s, {result.joined_slices} slices) and the corpus's "
        f"{len(result.recordings)} long recordings ({result.long_slices} slices), cut at most {MAX_SLICE_S:g} s "
        f"long, each slice heard with guard bands of {GUARD_S:g} s and decoded alone on one thread (as each "
        f"worker of the 2 × 1 layout decodes it), tiny.en int8. {result.runs} run(s), the beam widths in an "
        f"order that rotates from run to run. Time: median over the runs; × beam {first}: the side's time "
        f"(joined + long) over beam {first}'s in the same run, median over the runs. WER: joined on tiers "
        "A/A-/B (all tiers in brackets), long recordings pooled over every tier.",
        "",
        f"| beam | joined: time (s) | long: time (s) | × beam {first} | runs' ratios | joined WER % | long WER % |",
        "|---:|---:|---:|---:|---|---:|---:|",
    ]
    for b in result.beams:
        lines.append(f"| {b.beam_size} | {statistics.median(b.joined_s):.1f} | {statistics.median(b.long_s):.1f} | "
                     f"{statistics.median(b.ratios):.2f} | {', '.join(f'{r:.2f}' for r in b.ratios)} | "
                     f"{b.joined_wer:.2f} ({b.joined_wer_all:.2f}) | {b.long_wer:.2f} |")
    return "\n".join(lines) + "\n"

