"""Speed and word error rate of each engine on the corpus: ``python -m bench.engines``.

Each offline engine is loaded once, then every recording of tiers A, A- and B (the ones whose reference can be
trusted) is transcribed twice by it: whole, and slice by slice as the server cuts it (``server.splitter``
with the ``[splitter]`` settings of config.toml; a slice is its pieces played back to back, as the server
sends it).
Engines and the two modes take turns recording by recording, so the load of a shared machine falls on all of
them alike. Speed is audio seconds per wall second for a recording (sliced: all its slices), median over the
recordings; WER is pooled over all of them, both sides normalised as the corpus README says.

openai-whisper is measured only when a real checkpoint is at hand (``--whisper-model``, or tiny.en in
whisper's download cache); Google only with ``--google``, which needs internet. The markdown table is printed
and written to ``bench/results/engines.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from client.engines import create_engine  # noqa: E402
from server import splitter  # noqa: E402
from server.audio import TARGET_RATE, PcmFile  # noqa: E402
from server.config import load_settings  # noqa: E402
from tests.support import corpus_file, manifest, wer  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "engines.md"
TIERS = ("A", "A-", "B")

#: What a worker machine needs beyond requirements-worker.txt, and whether the engine runs without internet.
INSTALL = {
    "faster-whisper": ("nothing more", "yes"),
    "whisper": ("`openai-whisper==20250625 torch==2.13.0` (pulls triton, numba: about 2 GB)",
                "yes, once the model is downloaded"),
    "sphinx": ("`speechrecognition==3.17.0 pocketsphinx==5.1.1` (about 80 MB)", "yes"),
    "google": ("`speechrecognition==3.17.0`", "no"),
}


@dataclass
class Tally:
    """One engine's measurements in one mode (whole or sliced)."""

    speeds: list[float] = field(default_factory=list)
    hypotheses: list[str] = field(default_factory=list)


def as_float(samples: np.ndarray) -> np.ndarray:
    return np.asarray(samples, dtype=np.float32) / 32768.0


def transcribe(engine: Any, audio: np.ndarray) -> tuple[str, float]:
    """Text of one piece of audio and the wall seconds it took."""
    t0 = time.perf_counter()
    text = " ".join(s.text.strip() for s in engine.transcribe(audio) if s.text.strip())
    return text, time.perf_counter() - t0


def server_slices(samples: np.ndarray, opts: splitter.SplitOptions) -> list[np.ndarray]:
    """The audio of each slice the server would send for this recording."""
    return [np.concatenate([samples[p.start:p.end] for p in s.pieces]) for s in
            splitter.split_at_silence(samples, opts)]


def whisper_checkpoint(given: str | None) -> str | None:
    """A real openai-whisper checkpoint: the one given, or tiny.en in whisper's cache; None if none is."""
    if given:
        return given
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper" / "tiny.en.pt"
    return str(cache) if cache.is_file() else None


def measure(engines: dict[str, Any], names: list[str], opts: splitter.SplitOptions,
            log=print) -> dict[str, dict[str, Tally]]:
    tallies = {key: {"whole": Tally(), "sliced": Tally()} for key in engines}
    for i, name in enumerate(names):
        samples = PcmFile(corpus_file(name))[:]
        seconds = len(samples) / TARGET_RATE
        slices = [as_float(s) for s in server_slices(samples, opts)]
        modes = ["whole", "sliced"] if i % 2 == 0 else ["sliced", "whole"]
        for key, engine in engines.items():
            for mode in modes:
                if mode == "whole":
                    text, took = transcribe(engine, as_float(samples))
                else:
                    parts = [transcribe(engine, s) for s in slices]
                    text, took = " ".join(t for t, _ in parts if t), sum(d for _, d in parts)
                tallies[key][mode].speeds.append(seconds / took)
                tallies[key][mode].hypotheses.append(text)
        log(f"[{i + 1}/{len(names)}] {name} ({seconds:.1f} s, {len(slices)} slice(s))")
    return tallies


def sphinx_reload_cost(engine: Any, name: str = "pocketsphinx_goforward.wav", rounds: int = 5) -> str:
    """Why the sphinx engine does not call SpeechRecognition's recognize_sphinx: that builds a new decoder
    (loads the model) on every call. Median seconds per call of each on the same recording, taking turns."""
    import speech_recognition as sr
    samples = PcmFile(corpus_file(name))[:]
    data = sr.AudioData(samples.astype("<i2").tobytes(), TARGET_RATE, 2)
    recognizer, theirs, ours = sr.Recognizer(), [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        recognizer.recognize_sphinx(data)
        theirs.append(time.perf_counter() - t0)
        ours.append(transcribe(engine, as_float(samples))[1])
    return (f"SpeechRecognition's `recognize_sphinx` builds its decoder on every call: "
            f"{statistics.median(theirs):.2f} s a call on {name} ({len(samples) / TARGET_RATE:.1f} s), against "
            f"{statistics.median(ours):.2f} s for the sphinx engine, which built it once "
            f"(median of {rounds}, taking turns).")


def table(rows: list[list[str]]) -> str:
    head = ["engine", "model", "install on a worker, beyond requirements-worker.txt", "offline",
            "speed, whole file", "speed, server's slices", "WER, whole file", "WER, server's slices"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engines", description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per engine (default 2)")
    parser.add_argument("--whisper-model", help="openai-whisper checkpoint file or model name to measure")
    parser.add_argument("--google", action="store_true", help="measure Google too (needs internet)")
    parser.add_argument("--limit", type=int, help="only the first N recordings (a quick look)")
    parser.add_argument("--out", type=Path, help=f"markdown output (default {RESULTS.relative_to(ROOT)}, "
                                                 f"not written with --limit)")
    args = parser.parse_args(argv)

    names = sorted(n for n, row in manifest().items() if row["tier"] in TIERS)[:args.limit]
    refs = [manifest()[n]["reference"] for n in names]
    total_s = sum(float(manifest()[n]["seconds"]) for n in names)
    opts = load_settings().splitter
    checkpoint = whisper_checkpoint(args.whisper_model)
    plan = {"faster-whisper": "", "sphinx": ""}
    if checkpoint:
        plan["whisper"] = checkpoint
    if args.google:
        plan["google"] = ""
    engines, load_s = {}, {}
    for key, model in plan.items():
        t0 = time.perf_counter()
        engines[key] = create_engine(key, model=model, threads=args.threads)
        load_s[key] = time.perf_counter() - t0
        print(f"loaded {key} {engines[key].model} in {load_s[key]:.1f} s", flush=True)
    tallies = measure(engines, names, opts, log=lambda line: print(line, flush=True))

    reload_note = sphinx_reload_cost(engines["sphinx"])
    rows = []
    for key in ["faster-whisper", "whisper", "sphinx", "google"]:
        install, offline = INSTALL[key]
        if key in engines:
            whole, sliced = tallies[key]["whole"], tallies[key]["sliced"]
            rows.append([key, engines[key].model, install, offline,
                         f"{statistics.median(whole.speeds):.1f}× real time",
                         f"{statistics.median(sliced.speeds):.1f}× real time",
                         f"{wer(refs, whole.hypotheses):.1f} %", f"{wer(refs, sliced.hypotheses):.1f} %"])
        else:
            why = "no checkpoint offline" if key == "whisper" else "needs internet (run with --google)"
            rows.append([key, "—", install, offline] +
                        [f"not measured here: {why}"] + ["—"] * 3)
    report = "\n".join([
        "# Engines on the corpus",
        "",
        f"`python -m bench.engines` on {platform.machine()}, {os.cpu_count()} CPU core(s), "
        f"{args.threads} thread(s) per engine, {time.strftime('%Y-%m-%d')}: {len(names)} recordings of tiers "
        f"{'/'.join(TIERS)}, {total_s:.0f} s of speech, each transcribed whole and as the server's slices "
        f"(`[splitter] max_slice_s` = {opts.max_slice_s:g} s). Speed: median over recordings of audio "
        f"seconds per wall second (higher is faster). WER: pooled over all recordings, normalised with "
        f"whisper's EnglishTextNormalizer. Model load times: "
        + ", ".join(f"{key} {s:.1f} s" for key, s in load_s.items()) + " (once per worker process).",
        "",
        table(rows),
        "",
        reload_note,
        "",
    ])
    print("\n" + report)
    out = args.out or (None if args.limit else RESULTS)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
        print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
