"""Scale-out: one 30-minute recording over 1, 2, 4, 8 and 16 workers of the sleep engine.

The sleep engine (``client/engines/sleep_engine.py``) sleeps a fixed time per second of audio, so no model and
no shared core limits the workers: what separates a job's time from the ideal is only what Scatterscribe adds
(upload, decoding, splitting, hand-out, transfer, merging) and how evenly the slices fall on the workers.
Ideal = total work / workers, where total work is the sum of the slices' sleep times as the workers measured
them; efficiency = ideal / end-to-end time. Worker counts take turns from run to run.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import workload
from .cluster import Cluster, Spec

#: Seconds the sleep engine sleeps per second of audio: a worker ten times faster than real time (how fast
#: real workers run: bench/results/compare.md; larger models or slower machines far slower).
RATE = 0.1
COUNTS = (1, 2, 4, 8, 16)


@dataclass
class Point:
    workers: int
    wall_s: list[float] = field(default_factory=list)
    ideal_s: list[float] = field(default_factory=list)
    slices: int = 0

    @property
    def efficiencies(self) -> list[float]:
        return [ideal / wall for ideal, wall in zip(self.ideal_s, self.wall_s, strict=True)]

    @property
    def efficiency(self) -> float:
        return statistics.median(self.efficiencies)

    @property
    def median_s(self) -> float:
        return statistics.median(self.wall_s)


@dataclass
class ScaleResult:
    workload_s: float
    rate: float
    runs: int
    points: list[Point]


def run(tmp: Path, work: workload.Workload, runs: int, counts: tuple[int, ...] = COUNTS, rate: float = RATE,
        log: Callable[[str], None] = print) -> ScaleResult:
    points = {n: Point(n) for n in counts}
    for r in range(runs):
        order = list(counts[r % len(counts):] + counts[: r % len(counts)])
        for n in order:
            spec = Spec(f"{n} sleep workers", workers=n, engine="sleep", model=f"{rate:g}")
            with Cluster(spec, tmp / f"run{r + 1}-workers{n}") as cluster:
                job = cluster.run(work.path)
            work_s = sum(s["elapsed"] or 0.0 for s in job.view["slices"])
            points[n].wall_s.append(job.wall_s)
            points[n].ideal_s.append(work_s / n)
            points[n].slices = len(job.view["slices"])
            log(f"  run {r + 1}/{runs}: {n:2d} workers: {job.wall_s:.2f} s, ideal {work_s / n:.2f} s, "
                f"efficiency {work_s / n / job.wall_s:.1%}, {len(job.view['slices'])} slices")
    return ScaleResult(work.seconds, rate, runs, [points[n] for n in counts])
