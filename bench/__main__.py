"""``python -m bench [PART ...] [--quick] [--runs N]``: run the benchmarks and write their results.

Parts: ``compare`` (Scatterscribe against faster-whisper: speed, WER, where the time goes), ``before`` (this
code against the core as it was before the benchmark work, ``bench/before.py``), ``scaleout`` (1 to
16 sleep-engine workers on a 30-minute recording), ``memory`` (peak RSS of the server with a 60-minute upload,
with a 2-hour MP3 and with a 16 MB file holding its recording in one block, and of one worker), ``splitter``
(finding the pauses: numpy against Silero VAD and pydub), ``width`` (time and WER at 1 to 32 slots on the long
recordings one by one and on the joined workload, ``bench/width.py``), ``slicing`` (WER against slice length,
with and without guard bands, in process: ``bench/slicing.py``), ``beams`` (WER and decoding time of each beam
width, in process: ``bench/beams.py``),
``engines`` (each engine's speed and WER, ``bench/engines.py``), ``install`` (the size of a fresh venv for each
requirements file, ``bench/install.py``), ``ceiling`` (how many simulated workers one server coordinates,
``bench/ceiling.py``), ``speakers`` (speaker labels on conversations built from the corpus: words with the
right speaker, speakers found, their cost, ``bench/speakers.py``) and ``live`` (live mode in Chromium: each
word's delay from speech to the page with tentative text and without, Stop to final text, ``bench/live.py``).
No part named: all of them.
Each part writes ``bench/results/<part>.md`` (a markdown table with the machine described), ``<part>.json``
(the raw numbers) and, for compare, scaleout and width, ``<part>.png``.

``--quick`` runs every part on a few seconds of audio, once, for CI (tests/test_bench.py): it checks that the
bench still works, and its numbers mean nothing, so they go to ``bench/results/tmp/quick`` (not committed)
unless ``--out`` says otherwise.

A part that fails is reported and the others still run; the exit status is 1 if any failed. ``before`` needs
the earlier commit in the clone (a shallow clone lacks it): without it that part is skipped, with a warning.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import beams, before, ceiling, compare, machine, memory, report, scaleout, slicing, splitter, width, workload  # noqa: E402
from bench.cluster import Spec  # noqa: E402

RESULTS = ROOT / "bench" / "results"
QUICK_NOTE = "Quick mode (`--quick`): a smoke test on a few seconds of audio; these numbers mean nothing."
log = functools.partial(print, flush=True)  # progress shows at once, even when the output goes to a file
PARTS = ("compare", "before", "scaleout", "memory", "splitter", "width", "slicing", "beams", "engines", "install",
         "ceiling", "speakers", "live")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("parts", nargs="*", metavar="PART", help=f"what to run: {', '.join(PARTS)} (default: all)")
    p.add_argument("--quick", action="store_true", help="a few seconds of audio, one run: a smoke test")
    p.add_argument("--runs", type=int,
                   help="runs per side (default: 5 for compare, 3 for before, 2 for scaleout, 3 for splitter, "
                        "1 for width, 3 for beams; quick: 1)")
    p.add_argument("--before", default=before.BEFORE, metavar="COMMIT",
                   help=f"the earlier code the before part runs (default {before.BEFORE})")
    p.add_argument("--out", type=Path,
                   help="folder for the results (default bench/results; with --quick bench/results/tmp/quick)")
    p.add_argument("--keep", action="store_true", help="keep the servers' data and logs under <out>/tmp")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    # The engines, install and live parts are their own full-length programs: --quick leaves them out unless
    # named (live plays recordings at the speed they were spoken).
    parts = args.parts or [p for p in PARTS if not (args.quick and p in ("engines", "install", "live"))]
    args.out = args.out or (RESULTS / "tmp" / "quick" if args.quick else RESULTS)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    scratch = out / "tmp" / time.strftime("%Y%m%d-%H%M%S")
    workloads = out / "tmp" / "workloads"
    info = machine.describe()
    command = ".venv/bin/python -m bench " + " ".join(parts) + (" --quick" if args.quick else "")
    log(f"bench: {', '.join(parts)} on {info['cores']} cores ({info['cpu']}), "
        f"load {info['load average (1/5/15 min)']}")
    failed: list[str] = []
    try:
        for part in parts:
            t0 = time.perf_counter()
            log(f"{part}:")
            if part == "before" and not _have_commit(args.before):
                log(f"before: skipped: commit {args.before} is not in this clone (a shallow clone?); "
                    "fetch it, or name another with --before")
                continue
            try:
                if part == "engines":
                    _engines(args)
                    continue
                if part == "install":
                    from bench import install
                    install.main(["--out", str(args.out / "install.md")])
                    continue
                if part == "live":
                    from bench import live
                    live.main(["--out", str(args.out / "live.md")] + (["--quick"] if args.quick else []))
                    continue
                title, body, raw = PART_RUNNERS[part](args, scratch / part, workloads)
            except Exception:  # one broken part must not cost the others' results
                log(f"{part}: FAILED\n{traceback.format_exc()}")
                failed.append(part)
                continue
            note = QUICK_NOTE if args.quick else ""
            text = report.header(title, info, command, note) + "\n" + body
            (out / f"{part}.md").write_text(text)
            (out / f"{part}.json").write_text(json.dumps(_plain(raw), indent=1) + "\n")
            if part == "compare":
                report.compare_plot(raw, out / "compare.png")
            elif part == "scaleout":
                report.scaleout_plot(raw, out / "scaleout.png")
            elif part == "ceiling":
                ceiling.plot(raw, out / "ceiling.png")
            elif part == "width":
                report.width_plot(raw, out / "width.png")
            log(body)
            log(f"{part}: done in {time.perf_counter() - t0:.0f} s; wrote {out / part}.md")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    if failed:
        log(f"bench: failed: {', '.join(failed)}")
    return 1 if failed else 0


def _have_commit(rev: str) -> bool:
    found = subprocess.run(["git", "cat-file", "-e", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True)
    return found.returncode == 0


def _compare(args: argparse.Namespace, tmp: Path, workloads: Path) -> tuple[str, str, Any]:
    if args.quick:
        work = workload.build(workloads, target_s=10, longest_first=False)
        long = sorted(width.long_recordings(), key=lambda r: r.seconds)[:1]
        result = compare.run(tmp, work, runs=args.runs or 1, log=log, long=long)
    else:
        work = workload.build(workloads)
        warmup = workload.build(workloads, target_s=30, longest_first=False)
        result = compare.run(tmp, work, runs=args.runs or 5, warmup=warmup.path, log=log,
                             long=width.long_recordings())
    return "Scatterscribe against faster-whisper", report.compare_markdown(result), result


def _scaleout(args: argparse.Namespace, tmp: Path, workloads: Path) -> tuple[str, str, Any]:
    if args.quick:
        work = workload.build(workloads, target_s=10, longest_first=False)
        result = scaleout.run(tmp, work, runs=args.runs or 1, counts=(1, 2), rate=0.02, log=log)
    else:
        work = workload.build(workloads, repeat=3)
        result = scaleout.run(tmp, work, runs=args.runs or 2, log=log)
    return "Scale-out", report.scaleout_markdown(result), result


def _memory(args: argparse.Namespace, tmp: Path, workloads: Path) -> tuple[str, str, Any]:
    if args.quick:
        short = workload.build(workloads, target_s=10, longest_first=False)
        sleeper = Spec("1 sleep worker", workers=1, engine="sleep", model="0.01")
        result = memory.run(tmp, short, short, worker=sleeper, mp3_repeat=1, block_mb=0.5, log=log)
    else:
        result = memory.run(tmp, workload.build(workloads, repeat=6), workload.build(workloads), log=log)
    return "Memory", report.memory_markdown(result), result


def _splitter(args: argparse.Namespace, tmp: Path, workloads: Path) -> tuple[str, str, Any]:
    if args.quick:
        work = workload.build(workloads, target_s=10, longest_first=False)
    else:
        work = workload.build(workloads)
    result = splitter.run(work, runs=args.runs or (1 if args.quick else 3), log=log)
    return "Finding the pauses", report.splitter_markdown(result), result


def _before(args: argparse.Namespace, tmp: Path, workloads: Path) -> tuple[str, str, Any]:
    if args.quick:
        work = workload.build(workloads, target_s=10, longest_first=False)
        result = before.run(tmp, work, runs=args.runs or 1, commit=args.before, log=log)
    else:
        warmup = workload.build(workloads, target_s=30, longest_first=False)
        result = before.run(tmp, workload.build(workloads), runs=args.runs or 3, commit=args.before,
                            warmup=warmup.path, log=log)
    return "Before and after the benchmark work", report.before_markdown(result), result


def _ceiling(args: argparse.Namespace, tmp: Path, workloads: Path) -> tuple[str, str, Any]:
    if args.quick:
        result = ceiling.run(tmp, counts=(4,), pages=2, window_s=3, slices_per_job=40, log=log)
    else:
        result = ceiling.run(tmp, log=log)
    return "One server's ceiling", ceiling.markdown(result), result


def _width(args: argparse.Namespace, tmp: Path, workloads: Path) -> tuple[str, str, Any]:
    recordings = width.long_recordings()
    if args.quick:  # the shortest long recording, two widths
        recordings = sorted(recordings, key=lambda r: r.seconds)[:1]
        work = workload.build(workloads, target_s=10, longest_first=False)
        result = width.run(tmp, recordings, work, runs=args.runs or 1, widths=(1, 4), layouts=("one",), log=log)
    else:
        result = width.run(tmp, recordings, workload.build(workloads), runs=args.runs or 1, log=log)
    return "Accuracy and speed at every width", width.markdown(result), result


def _speakers(args: argparse.Namespace, tmp: Path, workloads: Path) -> tuple[str, str, Any]:
    from bench import speakers

    result = speakers.run(tmp, quick=args.quick, log=log)
    return "Speaker labels", speakers.markdown(result), result


def _slicing(args: argparse.Namespace, tmp: Path, workloads: Path) -> tuple[str, str, Any]:
    recordings = width.long_recordings()
    if args.quick:
        recordings = sorted(recordings, key=lambda r: r.seconds)[:1]
        result = slicing.run(recordings, lengths=(8.0, 28.0), guards=(0.0, 6.0), prompted=((8.0, 6.0),), log=log)
    else:
        result = slicing.run(recordings, log=log)
    return "WER against slice length", slicing.markdown(result), result


def _beams(args: argparse.Namespace, tmp: Path, workloads: Path) -> tuple[str, str, Any]:
    recordings = width.long_recordings()
    if args.quick:  # ten seconds joined, the shortest long recording, two widths
        result = beams.run(sorted(recordings, key=lambda r: r.seconds)[:1],
                           workload.build(workloads, target_s=10, longest_first=False), beams=(5, 1),
                           runs=args.runs or 1, log=log)
    else:
        result = beams.run(recordings, workload.build(workloads), runs=args.runs or 3, log=log)
    return "The beam width", beams.markdown(result), result


PART_RUNNERS = {"compare": _compare, "before": _before, "scaleout": _scaleout, "memory": _memory,
                "splitter": _splitter, "width": _width, "slicing": _slicing, "beams": _beams,
                "ceiling": _ceiling, "speakers": _speakers}


def _engines(args: argparse.Namespace) -> None:
    """The engines comparison is its own program (``python -m bench.engines``); run it with its defaults,
    writing beside the other parts (``--quick``: three recordings)."""
    from bench import engines

    engines.main(["--out", str(args.out / "engines.md")] + (["--limit", "3"] if args.quick else []))


def _plain(value: Any) -> Any:
    """Dataclasses, paths and tuples as JSON-friendly values."""
    if dataclasses.is_dataclass(value):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


if __name__ == "__main__":
    sys.exit(main())
