"""Accuracy and speed at every width: 1 to 32 slots in all, against faster-whisper on the same files.

More workers make the server cut a recording finer (``splitter.split_for_parallelism``: one slice per idle
decoder when there are more of them than slices), so width is where cutting costs words, if it does. Each
width is laid out two ways, each cluster started afresh:

* ``one``: one worker of 2 threads holding every slot (``--slots N``: its slices are decoded together);
* ``many``: N one-thread workers of one slot each, up to ``MAX_WORKERS`` (beyond that, that many workers share
  the slots): the layout where cutting finer truly runs slices side by side.

Two inputs:

* **The long recordings one by one**: every corpus recording of at least ``MIN_LONG_S`` (20 s), uploaded and
  transcribed one after the other, as a user with a few long files would. Time: the sum of the jobs' times.
  WER: pooled over the recordings (every reference word counts once), both sides normalised as the corpus
  README says; over all of them, and over tiers A, A- and B only (tier C's reference came from an ASR system).
* **The joined workload** (``bench/workload.py``, the compare part's ten-minute recording), scored as the
  compare part scores it.

Beside them, faster-whisper in this process on the same files: plain ``transcribe`` and
``BatchedInferencePipeline`` (batch 8), 2 threads each. A slice that failed is counted (the target is none),
and its time span is left out of the text rather than scored as words. Timings on a shared machine are noisy:
compare them only as ratios within one run.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tests.support import CORPUS, wer

from . import workload
from .baselines import Baselines
from .cluster import Cluster, Spec

#: A recording at least this long counts as long (the corpus has eight).
MIN_LONG_S = 20.0
WIDTHS = (1, 2, 4, 8, 16, 32)
LAYOUTS = ("one", "many")
#: The most worker processes the many layout starts (each holds a model: bench/results/memory.md).
MAX_WORKERS = 8
PLAIN, BATCHED = "plain", "batched"
LABELS = {PLAIN: "faster-whisper `transcribe`, whole files, 2 threads",
          BATCHED: "faster-whisper `BatchedInferencePipeline`, batch 8, 2 threads"}
#: The marker the transcript shows for a failed slice (``transcript.failure_marker``): not words.
FAILURE = re.compile(r"\[[^\[\]]*could not be transcribed[^\[\]]*\]")


@dataclass(frozen=True)
class Recording:
    """A corpus recording played on its own."""

    name: str
    path: Path
    seconds: float
    tier: str
    reference: str

    @property
    def trusted(self) -> bool:
        return self.tier != "C"


def long_recordings(min_s: float = MIN_LONG_S, corpus: Path = CORPUS) -> list[Recording]:
    """The corpus's recordings of at least ``min_s``, in manifest order."""
    return [Recording(r["file"], corpus / r["file"], float(r["seconds"]), r["tier"], r["reference"])
            for r in workload.read_manifest(corpus) if float(r["seconds"]) >= min_s]


@dataclass
class Side:
    """One side (a width, or a baseline): its times, texts and scores."""

    label: str
    slots: int = 0  # 0 for a baseline
    layout: str = ""  # "one" or "many"; "" for a baseline
    long_s: list[float] = field(default_factory=list)  # sum over the long recordings, per run
    long_texts: dict[str, str] = field(default_factory=dict)  # recording -> hypothesis (the last run's)
    long_slices: dict[str, int] = field(default_factory=dict)  # recording -> slices it was cut into
    long_failed: int = 0  # failed slices over every run, long recordings
    long_wer_all: float = 0.0
    long_wer_trusted: float = 0.0
    per_file_wer: dict[str, float] = field(default_factory=dict)
    joined_s: list[float] = field(default_factory=list)
    joined_slices: int = 0
    joined_failed: int = 0
    joined_wer: workload.Score | None = None

    @property
    def long_median_s(self) -> float:
        return statistics.median(self.long_s)

    @property
    def joined_median_s(self) -> float:
        return statistics.median(self.joined_s)


@dataclass
class WidthResult:
    recordings: list[dict[str, Any]]  # name, seconds, tier, words
    long_total_s: float
    joined_s: float
    joined_recordings: int
    runs: int
    layouts: tuple[str, ...]
    sides: dict[str, Side]


def score_long(side: Side, recordings: list[Recording]) -> None:
    """Pooled WER of a side's texts over every long recording, and over the trusted ones; per file too."""
    texts = [side.long_texts.get(r.name, "") for r in recordings]
    side.long_wer_all = wer([r.reference for r in recordings], texts)
    trusted = [(r, t) for r, t in zip(recordings, texts, strict=True) if r.trusted]
    side.long_wer_trusted = wer([r.reference for r, _ in trusted], [t for _, t in trusted])
    side.per_file_wer = {r.name: round(wer(r.reference, t), 2) for r, t in zip(recordings, texts, strict=True)}


def words_of(text: str) -> str:
    """A job's transcript without the markers of failed slices."""
    return " ".join(FAILURE.sub(" ", text).split())


def spec_for(layout: str, width: int) -> Spec:
    """The cluster of a width in a layout (see the module docstring)."""
    if layout == "one":
        return Spec(f"1 × 2 threads, --slots {width}", workers=1, threads=2, slots=width)
    workers = min(width, MAX_WORKERS)
    return Spec(f"{workers} × 1 thread, --slots {width // workers}", workers=workers, threads=1,
                slots=width // workers)


def run(tmp: Path, recordings: list[Recording], work: workload.Workload, runs: int = 1,
        widths: tuple[int, ...] = WIDTHS, layouts: tuple[str, ...] = LAYOUTS,
        log: Callable[[str], None] = print) -> WidthResult:
    """Every width in every layout, and both baselines (2 threads), on the long recordings one by one and on
    the joined workload, ``runs`` times each."""
    sides: dict[str, Side] = {PLAIN: Side(LABELS[PLAIN]), BATCHED: Side(LABELS[BATCHED])}
    baselines = Baselines(threads=2)
    for key, method in ((PLAIN, baselines.plain), (BATCHED, baselines.batched)):
        side = sides[key]
        method(recordings[0].path)  # warm-up, untimed
        for r in range(runs):
            total = 0.0
            for rec in recordings:
                result = method(rec.path)
                total += result.wall_s
                side.long_texts[rec.name] = result.transcript
            side.long_s.append(total)
            result = method(work.path)
            side.joined_s.append(result.wall_s)
            side.joined_wer = workload.score(work.parts, result.transcript)
            score_long(side, recordings)
            log(f"  run {r + 1}/{runs}: {side.label}: long {total:.2f} s, WER {side.long_wer_all:.2f} %; "
                f"joined {result.wall_s:.2f} s, WER {side.joined_wer.trusted:.2f} %")
    del baselines
    for layout, width in [(layout, width) for layout in layouts for width in widths]:
        spec = spec_for(layout, width)
        key = f"{layout}-{width}"
        side = sides[key] = Side(f"Scatterscribe, {width} slot{'s' if width > 1 else ''} ({spec.label})",
                                 slots=width, layout=layout)
        with Cluster(spec, tmp / key) as cluster:
            cluster.run(recordings[0].path, accept_failed=True)  # warm-up, untimed
            for r in range(runs):
                total = 0.0
                for rec in recordings:
                    job = cluster.run(rec.path, accept_failed=True)
                    total += job.wall_s
                    side.long_texts[rec.name] = words_of(job.transcript)
                    side.long_slices[rec.name] = len(job.view["slices"])
                    side.long_failed += sum(s["status"] == "failed" for s in job.view["slices"])
                side.long_s.append(total)
                job = cluster.run(work.path, accept_failed=True)
                side.joined_s.append(job.wall_s)
                side.joined_slices = len(job.view["slices"])
                side.joined_failed += sum(s["status"] == "failed" for s in job.view["slices"])
                side.joined_wer = workload.score(work.parts, words_of(job.transcript))
                score_long(side, recordings)
                log(f"  run {r + 1}/{runs}: {side.label}: long {total:.2f} s, "
                    f"{sum(side.long_slices.values())} slices, {side.long_failed} failed, WER "
                    f"{side.long_wer_all:.2f} %; joined {job.wall_s:.2f} s, {side.joined_slices} slices, "
                    f"WER {side.joined_wer.trusted:.2f} %")
    from tests.support import normalise

    info = [{"name": r.name, "seconds": r.seconds, "tier": r.tier, "words": len(normalise(r.reference).split())}
            for r in recordings]
    return WidthResult(info, sum(r.seconds for r in recordings), work.seconds, len(work.parts), runs,
                       tuple(layouts), sides)


def markdown(result: WidthResult) -> str:
    """The width tables, one per layout: time and WER per width, the baselines beside them."""
    plain = result.sides[PLAIN]
    words = sum(r["words"] for r in result.recordings)
    trusted = [r for r in result.recordings if r["tier"] != "C"]
    lines = [
        f"Long recordings: the corpus's {len(result.recordings)} recordings of at least {MIN_LONG_S:.0f} s "
        f"({result.long_total_s:.0f} s, {words} reference words), uploaded one after the other; WER pooled "
        f"over all of them, and over the {len(trusted)} of tiers A/A-/B. Joined: the compare part's "
        f"{result.joined_s:.0f} s recording of {result.joined_recordings} corpus recordings, WER on tiers "
        "A/A-/B (all tiers in brackets). tiny.en int8, beam 5. Time: median over "
        f"{result.runs} run(s); × plain: plain `transcribe`'s time over the side's, same input.",
        "",
    ]
    for layout in result.layouts:
        sides = {k: s for k, s in result.sides.items() if not s.slots or s.layout == layout}
        lines += [f"**Layout `{layout}`**: " + ("one worker of 2 threads holding every slot." if layout == "one"
                  else f"one-thread workers of one slot each, up to {MAX_WORKERS}."), "", *_table(sides, plain),
                  ""]
    widths = [s for s in result.sides.values() if s.slots]
    worst = max(widths, key=lambda s: s.long_wer_all)
    failed = sum(s.long_failed + s.joined_failed for s in widths)
    lines += [
        f"Target: at every width, WER on the long recordings no higher than plain `transcribe` on each whole "
        f"file ({plain.long_wer_all:.2f} %), and no failed slice. Worst: {worst.label}, "
        f"{worst.long_wer_all:.2f} % — {'met' if worst.long_wer_all <= plain.long_wer_all else '**missed**'}; "
        f"failed slices: {failed} — {'met' if not failed else '**missed**'}.",
        "",
        "WER % per long recording, by side (layout-slots; slices in brackets):",
        "",
        "| recording | tier | s | " + " | ".join(key for key in result.sides) + " |",
        "|---|---|---:|" + "---:|" * len(result.sides),
    ]
    for r in result.recordings:
        cells = []
        for s in result.sides.values():
            cell = f"{s.per_file_wer[r['name']]:.1f}"
            if s.slots:
                cell += f" ({s.long_slices[r['name']]})"
            cells.append(cell)
        lines.append(f"| {r['name']} | {r['tier']} | {r['seconds']:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _table(sides: dict[str, Side], plain: Side) -> list[str]:
    lines = ["| side | long: time (s) | × plain | slices | failed | WER % all | WER % A/A-/B | "
             "joined: time (s) | × plain | slices | failed | WER % (all tiers) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for side in sides.values():
        baseline = side.slots == 0
        lines.append(
            f"| {side.label} | {side.long_median_s:.1f} | {plain.long_median_s / side.long_median_s:.2f}× | "
            f"{'—' if baseline else sum(side.long_slices.values())} | {'—' if baseline else side.long_failed} | "
            f"{side.long_wer_all:.2f} | {side.long_wer_trusted:.2f} | {side.joined_median_s:.1f} | "
            f"{plain.joined_median_s / side.joined_median_s:.2f}× | "
            f"{'—' if baseline else side.joined_slices} | {'—' if baseline else side.joined_failed} | "
            f"{side.joined_wer.trusted:.2f} ({side.joined_wer.all:.2f}) |")
    return lines
