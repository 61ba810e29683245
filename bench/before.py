"""Before and after: this code against the core as it was before the benchmark work, side by side.

The earlier code is taken from git (``git archive``, default commit ``BEFORE``) into the scratch folder and
run as it was: its server, its workers. Sides, all 2 workers × 1 thread on the ten-minute recording:

* ``before``: the earlier code; each worker decodes one slice at a time with faster-whisper's ``transcribe``
  (timestamps on, often a second 30 s window per slice), slices cut finer only when more slots are idle than
  there are slices.
* ``after-1``: this code with one slot per worker (its default with one thread): a slice in one window, no
  timestamps, slices cut to fill whole rounds of the idle slots, the last round longest first.
* ``after``: this code with four slots per worker, as the compare part runs it: the slices a worker holds are
  decoded together as one batch.

Each run takes every side once, in an order that rotates from run to run; speed-ups are taken within a run.
"""

from __future__ import annotations

import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tests.support import ROOT

from . import workload
from .cluster import Cluster, Spec
from .compare import SideResult, _scatter

#: The last commit before the benchmark work (issue 6): the core loop, engines, resilience.
BEFORE = "d1e3aa4"

SIDES = {
    "before": Spec("before (d1e3aa4): one slice at a time, `transcribe`", workers=2, threads=1, slots=1),
    "after-1": Spec("after, 1 slot per worker: one window per slice, whole rounds", workers=2, threads=1, slots=1),
    "after": Spec("after, 4 slots per worker: a worker's slices decoded as one batch", workers=2, threads=1,
                  slots=4),
}


@dataclass
class BeforeResult:
    commit: str
    workload_s: float
    runs: int
    sides: dict[str, SideResult]


def export(commit: str, dst: Path) -> Path:
    """The tree of ``commit`` written to ``dst`` (a plain copy: no checkout, no effect on this repository)."""
    dst.mkdir(parents=True, exist_ok=True)
    archive = dst.with_suffix(".tar")
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), commit], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dst, filter="data")
    archive.unlink()
    return dst


def run(tmp: Path, work: workload.Workload, runs: int, commit: str = BEFORE, warmup: Path | None = None,
        log: Callable[[str], None] = print) -> BeforeResult:
    old = export(commit, tmp / "code")
    clusters = {key: Cluster(spec, tmp / key, root=old if key == "before" else ROOT) for key, spec in SIDES.items()}
    try:
        for cluster in clusters.values():
            cluster.start()
        if warmup is not None:
            for cluster in clusters.values():
                cluster.run(warmup)
        results = {key: SideResult(spec.label) for key, spec in SIDES.items()}
        order = list(SIDES)
        for r in range(runs):
            times = {}
            for key in order[r % len(order):] + order[: r % len(order)]:
                wall, text, stats = _scatter(clusters[key], work.path)
                times[key] = wall
                results[key].wall_s.append(wall)
                results[key].wer = workload.score(work.parts, text)
                results[key].runs.append({"wall_s": wall, "slices": stats["slices"]})
                log(f"  run {r + 1}/{runs}: {SIDES[key].label}: {wall:.2f} s, {stats['slices']} slices, "
                    f"WER {results[key].wer.trusted:.2f} %")
            for key in SIDES:
                results[key].speedup.append(times["before"] / times[key])
        return BeforeResult(commit, work.seconds, runs, results)
    finally:
        for cluster in clusters.values():
            cluster.stop()
