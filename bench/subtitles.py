"""``python -m bench.subtitles [--quick]``: how readable the ``.srt`` is, before and after the subtitle rules.

A real server and worker (tiny.en) transcribe the bench's joined workload (605 s of corpus recordings with their
natural pauses, ``bench/workload.py``); from the job's timed segments (with their words) this counts, for the
cues the server made before (one cue per segment, on one line) and for ``server/subtitles.py``'s cues, how many
break each rule: a line over 42 characters, more than 2 lines, on screen over 7 s, under 1 s while the next cue
starts later, faster than 20 characters a second to read (and of those, how many had room after them to stay
up longer). Writes ``bench/results/subtitles.md`` and ``.json``; ``--quick`` transcribes one 35 s recording
and writes to ``bench/results/tmp/quick``. The counts depend only on the text and times, not on the machine's
speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import machine, workload  # noqa: E402
from server import subtitles  # noqa: E402
from server.subtitles import Cue, CueOptions  # noqa: E402
from tests.support import Server, Worker, corpus_file  # noqa: E402

RESULTS = ROOT / "bench" / "results"
QUICK = "osr_us_000_0034_harvard_list72.wav"


def one_cue_per_segment(items: list[dict]) -> list[Cue]:
    """The cues as the server made them before the subtitle rules: each segment one cue, on one line."""
    return [Cue(float(i["start"]), float(i["end"]), (" ".join(str(i["text"]).split()),)) for i in items]


def faults(cues: list[Cue], opts: CueOptions = CueOptions()) -> dict[str, float]:
    """How many cues break each rule (see the module's docstring)."""
    eps = 0.002  # the .srt's milliseconds
    out = {"cues": len(cues), "longest line (characters)": max((len(x) for c in cues for x in c.lines), default=0),
           "a line over 42 characters": 0, "over 2 lines": 0, "over 7 s": 0,
           "under 1 s, next cue later": 0, "faster than 20 characters/s": 0,
           "faster than 20 characters/s with room to stay longer": 0}
    for n, cue in enumerate(cues):
        nxt = cues[n + 1].start if n + 1 < len(cues) else None
        duration = cue.end - cue.start
        out["a line over 42 characters"] += any(len(line) > opts.max_line_chars for line in cue.lines)
        out["over 2 lines"] += len(cue.lines) > opts.max_lines
        out["over 7 s"] += duration > opts.max_cue_s + eps
        out["under 1 s, next cue later"] += duration < opts.min_cue_s - eps and (nxt is None or nxt > cue.end + eps)
        if len(cue.text) / max(duration, 1e-3) > opts.max_chars_per_s + 0.01:
            out["faster than 20 characters/s"] += 1
            limit = min(cue.start + opts.max_cue_s, nxt if nxt is not None else float("inf"))
            out["faster than 20 characters/s with room to stay longer"] += cue.end < limit - eps
    return out


def transcribe(path: Path, tmp: Path) -> dict:
    """The job's transcript.json after a real server and worker transcribed ``path``."""
    server = Server(tmp)
    worker = Worker(server, "bench", "--threads", "2", "--slots", "4")
    try:
        server.wait_workers(1, timeout=120)
        job = server.wait_job(server.submit(path), timeout=900)
        return server.get(f"/api/jobs/{job['id']}/transcript.json").json()
    finally:
        worker.stop()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.subtitles", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"one 35 s recording ({QUICK}): a smoke test")
    parser.add_argument("--out", type=Path, help="folder for subtitles.md and .json")
    args = parser.parse_args(argv)
    out = args.out or (RESULTS / "tmp" / "quick" if args.quick else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.quick:
            path, what = corpus_file(QUICK), f"{QUICK} (35 s)"
        else:
            joined = workload.build(scratch / "workload")
            path, what = joined.path, f"the joined workload ({joined.seconds:.0f} s, {len(joined.parts)} recordings)"
        data = transcribe(path, scratch)
    items = [s for s in data["segments"] if str(s.get("text", "")).strip()]
    before = faults(one_cue_per_segment(items))
    after = faults(subtitles.cues(items, duration_s=data["duration"]))
    rows = [f"| {key} | {before[key]} | {after[key]} |" for key in before]
    command = "python -m bench.subtitles" + (" --quick" if args.quick else "")
    report = "\n".join([
        "# Subtitles: cues that break the rules, before and after", "",
        f"Reproduce: `{command}` (from the repository root). Run {time.strftime('%Y-%m-%d %H:%M')}.", "",
        "Machine:", "", machine.markdown(machine.describe()), "",
        f"{what}, transcribed by a real server and worker (faster-whisper tiny.en); the same job's segments and "
        "words cut into cues the old way (one cue per segment, on one line) and by `server/subtitles.py` "
        "(at most 2 lines of 42 characters, 1–7 s, at most 20 characters a second where the pause after allows, "
        "cut at word times at sentence or clause ends where possible).", "",
        "| cues that… | one cue per segment (before) | `server/subtitles.py` (after) |",
        "|---|---:|---:|", *rows, "",
    ])
    (out / "subtitles.md").write_text(report)
    (out / "subtitles.json").write_text(json.dumps({"input": what, "before": before, "after": after}, indent=2)
                                        + "\n")
    print(report)
    print(f"written to {out / 'subtitles.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
