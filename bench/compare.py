"""Scatterscribe against faster-whisper on the same recording, the same model and the same two cores.

Sides: faster-whisper's plain ``transcribe`` (2 threads), its ``BatchedInferencePipeline`` (2 threads, batch
8), and Scatterscribe end to end with 1 worker × 2 threads and 2 workers × 1 thread. Each run takes every side
once, in an order that rotates from run to run, so a burst of load from elsewhere falls on all sides alike;
each side's speed-up over the plain run is taken within the same run, and the report gives medians.

Given ``long`` recordings (the corpus's recordings of 20 s or more, ``bench/width.py``), each run also plays
them one by one through every side, as a user with a few long files would: on natural recordings, unlike the
joined workload of unrelated ones, the batched pipeline is as accurate as plain ``transcribe``, and the peer to
beat on speed.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tests.support import wer

from . import workload
from .baselines import Baselines
from .cluster import Cluster, Spec
from .width import Recording, words_of

PLAIN, BATCHED = "plain", "batched"

#: The Scatterscribe clusters compared; slots = slices a worker decodes together (see README "Benchmarks").
CLUSTERS = {
    "ss-1x2": Spec("Scatterscribe, 1 worker × 2 threads", workers=1, threads=2, slots=8),
    "ss-2x1": Spec("Scatterscribe, 2 workers × 1 thread", workers=2, threads=1, slots=4),
}

LABELS = {
    PLAIN: "faster-whisper `transcribe`, 2 threads",
    BATCHED: "faster-whisper `BatchedInferencePipeline`, batch 8, 2 threads",
    **{key: spec.label for key, spec in CLUSTERS.items()},
}


@dataclass
class SideResult:
    """Every run of one side."""

    label: str
    wall_s: list[float] = field(default_factory=list)
    speedup: list[float] = field(default_factory=list)  # plain's time / this side's time, run by run
    wer: workload.Score | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)  # Scatterscribe: stats of each job
    long_s: list[float] = field(default_factory=list)  # the long recordings one by one: summed time, per run
    long_speedup: list[float] = field(default_factory=list)
    long_wer: float | None = None  # pooled over every long recording
    long_wer_trusted: float | None = None  # pooled over those of tiers A, A-, B

    @property
    def median_s(self) -> float:
        return statistics.median(self.wall_s)

    @property
    def median_speedup(self) -> float:
        return statistics.median(self.speedup)


@dataclass
class CompareResult:
    workload_s: float
    recordings: int
    runs: int
    sides: dict[str, SideResult]
    long_recordings: int = 0
    long_total_s: float = 0.0


def run(tmp: Path, work: workload.Workload, runs: int, warmup: Path | None = None,
        log: Callable[[str], None] = print, long: list[Recording] | None = None) -> CompareResult:
    """``runs`` rounds over every side (after one untimed round on ``warmup`` if given); with ``long``
    (the corpus's long recordings), each round also plays those one by one through every side."""
    baselines = Baselines(threads=2)
    clusters = {key: Cluster(spec, tmp / key) for key, spec in CLUSTERS.items()}
    try:
        for cluster in clusters.values():
            cluster.start()
        sides: dict[str, Callable[[Path], tuple[float, str, dict[str, Any]]]] = {
            PLAIN: lambda p: _baseline(baselines.plain, p),
            BATCHED: lambda p: _baseline(baselines.batched, p),
            **{key: (lambda p, c=cluster: _scatter(c, p)) for key, cluster in clusters.items()},
        }
        if warmup is not None:
            for side in sides.values():
                side(warmup)
        results = {key: SideResult(LABELS[key]) for key in sides}
        order = list(sides)
        for r in range(runs):
            times: dict[str, float] = {}
            for key in order[r % len(order):] + order[: r % len(order)]:
                wall, text, stats = sides[key](work.path)
                times[key] = wall
                results[key].wall_s.append(wall)
                # The same text every run (beam search, no sampling), so the last score stands for all.
                results[key].wer = workload.score(work.parts, text)
                if stats:
                    results[key].runs.append(stats)
                log(f"  run {r + 1}/{runs}: {LABELS[key]}: {wall:.2f} s, "
                    f"WER {results[key].wer.trusted:.2f} %")
            for key in sides:
                results[key].speedup.append(times[PLAIN] / times[key])
            if not long:
                continue
            long_times: dict[str, float] = {}
            for key in order[r % len(order):] + order[: r % len(order)]:
                texts = []
                long_times[key] = 0.0
                for rec in long:
                    wall, text, _ = sides[key](rec.path)
                    long_times[key] += wall
                    texts.append(words_of(text))
                side = results[key]
                side.long_s.append(long_times[key])
                side.long_wer = wer([rec.reference for rec in long], texts)
                trusted = [(rec, t) for rec, t in zip(long, texts, strict=True) if rec.trusted]
                side.long_wer_trusted = wer([rec.reference for rec, _ in trusted], [t for _, t in trusted])
                log(f"  run {r + 1}/{runs}: {LABELS[key]}: {len(long)} long recordings one by one: "
                    f"{long_times[key]:.2f} s, WER {side.long_wer:.2f} %")
            for key in sides:
                results[key].long_speedup.append(long_times[PLAIN] / long_times[key])
        return CompareResult(work.seconds, len(work.parts), runs, results, len(long or []),
                             sum(rec.seconds for rec in long or []))
    finally:
        for cluster in clusters.values():
            cluster.stop()


def _baseline(method, path: Path) -> tuple[float, str, dict[str, Any]]:
    result = method(path)
    return result.wall_s, result.transcript, {}


def _scatter(cluster: Cluster, path: Path) -> tuple[float, str, dict[str, Any]]:
    job = cluster.run(path)
    slices = job.view["slices"]
    stats = {**job.stats, "wall_s": job.wall_s, "upload_s": job.upload_s, "server_cpu_s": job.server_cpu_s,
             "worker_cpu_s": job.worker_cpu_s, "slices": len(slices), "workers": cluster.spec.workers,
             "sent_audio_s": sum(b - a for s in slices for a, b in s["pieces"])}
    return job.wall_s, job.transcript, stats


def breakdown(stats: dict[str, Any]) -> list[tuple[str, float, str]]:
    """Where one Scatterscribe job's wall time went: (stage, seconds, what it is). The first four rows add up
    to the wall time, per worker; the last three are the server's work and the transport, which happen
    meanwhile (summed over all slices, so not part of that sum)."""
    workers = stats["workers"]
    busy = stats["transcribe_s"] / workers
    before = stats["upload_s"] + stats["decode_s"] + stats["split_s"]
    return [
        ("upload", stats["upload_s"], "bytes from the client to the server's disk"),
        ("decode + split", stats["decode_s"] + stats["split_s"],
         "server: WAV check and 16 kHz copy; levels, threshold, slice plan"),
        ("transcribe", busy, "workers decoding (mean per worker)"),
        ("idle", max(0.0, stats["wall_s"] - before - busy),
         "workers waiting (mean): for their first slices, between batches, on the last worker"),
        ("hand-out", stats["dispatch_s"], "server, meanwhile: slice audio read, WAV built, sent (all)"),
        ("merge", stats["merge_s"], "server, meanwhile: results stored, times mapped, pages pushed (all)"),
        ("transfer + queues", stats["transfer_s"],
         "meanwhile: round trip minus worker time, summed over slices (slices of a batch wait together)"),
    ]


def server_share(stats: dict[str, Any]) -> float:
    """The server's own stages as a share of the job's wall time."""
    own = stats["decode_s"] + stats["split_s"] + stats["dispatch_s"] + stats["merge_s"]
    return own / stats["wall_s"]


def median_run(side: SideResult) -> dict[str, Any]:
    """The stats of the run whose wall time is the median (the lower middle one for an even count)."""
    ordered = sorted(side.runs, key=lambda s: s["wall_s"])
    return ordered[(len(ordered) - 1) // 2]


def timestamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
