"""Live mode: how soon words show while speaking, and Stop-to-text latency: ``python -m bench live`` (or
``python -m bench.live``).

First, captions (``bench/live_captions.py``): corpus recordings played live through the page on a server with
tentative text and on one without; per reference word, the delay from speech to its first appearance on the
page (any style, and in the final text), the final WER, Stop to final text, and the closed slices' decode time.

A real server with its one local worker (faster-whisper tiny.en, as ``python -m server`` starts it) and
Debian's Chromium, headless, whose fake microphone plays a corpus recording with pauses. Each run opens the
page, presses Record, presses Stop after a given number of seconds (a different point of the recording each
run) and measures, inside the page, the time from the Stop click to the final transcript on the page (the job
badge turning to "Done", in the same render as the last slice's text).

Side by side, after each live run, the very audio that run stored is uploaded whole through the API, as the
page did before live mode (record, then upload at Stop), and timed from the request to the job being done:
what Stop cost without live mode. Runs alternate live / upload so a shared machine's load falls on both
alike. Medians and the 90th percentile (linear interpolation) are printed and written to
``bench/results/live.md``.

Then, what cutting while recording costs in accuracy: the corpus's long recordings (tiers A, A- and B, over 20 s)
are cut as an upload is and as live mode cuts them while they play in 250 ms chunks (``server.live``, pure,
no browser), and the same model transcribes both sets of slices; the pooled WER of each is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import live_captions  # noqa: E402
from client.engines import create_engine  # noqa: E402
from server import splitter  # noqa: E402
from server.audio import TARGET_RATE, PcmFile  # noqa: E402
from server.config import load_settings  # noqa: E402
from server.live import LiveSession  # noqa: E402
from tests.support import Server, corpus_file, launch_chromium, manifest, wait_for, wer  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "live.md"
QUICK_RESULTS = ROOT / "bench" / "results" / "tmp" / "quick" / "live.md"
RECORDING = "osr_us_000_0034_harvard_list72.wav"  # 35.5 s of read sentences with pauses

#: One live run inside the page: Record, Stop once `stopAt` seconds are recorded, time until "Done".
RUN = """async (stopAt) => {
  const intake = window.scatterscribe.intake;
  const badge = document.getElementById('job-status');
  const transcript = document.getElementById('transcript');
  const started = performance.now();
  let firstWords = null;
  const words = new MutationObserver(() => {
    if (firstWords === null && transcript.querySelector('.piece:not(.placeholder)')) {
      firstWords = (performance.now() - started) / 1000;
    }
  });
  words.observe(transcript, { childList: true, subtree: true });
  document.getElementById('record').click();
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      if (intake.frames / intake.rate >= stopAt) { clearInterval(timer); resolve(); }
    }, 2);
  });
  const done = new Promise((resolve) => {
    const seen = new MutationObserver(() => {
      if (badge.textContent === 'Done') { seen.disconnect(); resolve(performance.now()); }
    });
    seen.observe(badge, { childList: true, characterData: true, subtree: true });
  });
  const recordedAtStop = intake.frames / intake.rate;
  const stopped = performance.now();
  document.getElementById('record').click();
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), 120000));
  const shown = await Promise.race([done, timeout]);
  words.disconnect();
  return { latency: shown === null ? null : (shown - stopped) / 1000, firstWords, recordedAtStop,
           job: new URLSearchParams(location.search).get('job'), text: transcript.textContent };
}"""


@dataclass
class Run:
    stop_at: float
    recorded_s: float
    slices: int
    last_slice_s: float
    last_slice_work_s: float
    first_words_s: float | None
    live_s: float
    upload_s: float
    text: str


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def upload_latency(server: Server, audio_bytes: bytes) -> float:
    """Seconds from sending a recording whole to its job being done: Stop's cost without live mode."""
    t0 = time.perf_counter()
    response = requests.post(f"{server.url}/api/jobs", files={"audio": ("rec.wav", audio_bytes, "audio/wav")},
                             timeout=120)
    response.raise_for_status()
    job_id = response.json()["id"]
    wait_for(lambda: server.job(job_id)["status"] == "done", 120, "the uploaded job", interval=0.01)
    elapsed = time.perf_counter() - t0
    requests.delete(f"{server.url}/api/jobs/{job_id}", timeout=30)
    return elapsed


def measure(runs: int, tmp: Path) -> tuple[list[Run], dict]:
    from playwright.sync_api import sync_playwright

    length = float(manifest()[RECORDING]["seconds"])
    stops = [round(float(s), 2) for s in np.linspace(6.0, length - 1.5, runs)]
    server = Server(tmp, local_workers=1)
    results: list[Run] = []
    try:
        worker = server.wait_workers(1, timeout=120)[0]
        # Warm the worker up (its first transcription also loads CTranslate2's kernels).
        upload_latency(server, corpus_file("jfk_inaugural_excerpt.wav").read_bytes())
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright, "--use-fake-ui-for-media-stream",
                                      "--use-fake-device-for-media-stream",
                                      f"--use-file-for-fake-audio-capture={corpus_file(RECORDING)}")
            try:
                for stop_at in stops:
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    page = context.new_page()
                    page.goto(server.url)
                    page.wait_for_selector("#connection[data-state='connected']", timeout=30_000)
                    out = page.evaluate(RUN, stop_at)
                    context.close()
                    if out["latency"] is None:
                        raise RuntimeError(f"run stopping at {stop_at} s never showed its final text")
                    job = server.job(out["job"])
                    last = job["slices"][-1]
                    stored = server.get(f"/api/jobs/{out['job']}/audio.wav").content
                    results.append(Run(
                        stop_at=stop_at, recorded_s=job["duration"], slices=len(job["slices"]),
                        last_slice_s=sum(b - a for a, b in last["pieces"]),
                        last_slice_work_s=last["elapsed"] or 0,
                        first_words_s=out["firstWords"], live_s=out["latency"],
                        upload_s=upload_latency(server, stored), text=out["text"]))
                    r = results[-1]
                    print(f"stop at {stop_at:5.2f} s: live {r.live_s:.2f} s, upload {r.upload_s:.2f} s "
                          f"({r.slices} slices, last {r.last_slice_s:.1f} s of audio, "
                          f"worked {r.last_slice_work_s:.2f} s)", flush=True)
            finally:
                browser.close()
    finally:
        server.stop()
    return results, worker


def live_slices(samples: np.ndarray, chunk_times: list[float]) -> list[splitter.Slice]:
    """The slices live mode closes while ``samples`` arrive in 250 ms chunks, then at Stop; the seconds each
    chunk cost the server's session (order, levels, the slicing rule) are added to ``chunk_times``."""
    settings = load_settings()
    session = LiveSession(TARGET_RATE, settings.splitter, settings.live, max_duration_s=3600, now=0.0)
    slices, seq = [], -1
    for seq, first in enumerate(range(0, len(samples), 4000)):
        t0 = time.perf_counter()
        slices += session.chunk(seq, samples[first : first + 4000].tobytes(), now=0.0).slices
        chunk_times.append(time.perf_counter() - t0)
    return slices + session.stop(seq, now=0.0).slices


def cutting_wer(limit: int | None = None) -> dict:
    """Pooled WER of the long corpus recordings (the first ``limit`` of them) cut as an upload is and as live
    mode cuts them."""
    engine = create_engine("faster-whisper", threads=2)
    opts = load_settings().splitter
    names = sorted(n for n, r in manifest().items() if float(r["seconds"]) > 20 and r["tier"] != "C")[:limit]
    texts: dict[str, list[str]] = {"upload": [], "live": []}
    counts = {"upload": 0, "live": 0}
    chunk_times: list[float] = []
    for name in names:
        samples = PcmFile(corpus_file(name))[:]
        for mode, slices in (("upload", splitter.split_at_silence(samples, opts)),
                             ("live", live_slices(samples, chunk_times))):
            parts = []
            for s in slices:
                piece = np.concatenate([samples[p.start : p.end] for p in s.pieces]) / np.float32(32768)
                parts += [seg.text.strip() for seg in engine.transcribe(piece) if seg.text.strip()]
            texts[mode].append(" ".join(parts))
            counts[mode] += len(slices)
    refs = [manifest()[n]["reference"] for n in names]
    return {"files": len(names), "seconds": sum(float(manifest()[n]["seconds"]) for n in names),
            "chunk_ms": 1000 * statistics.median(chunk_times), "chunk_max_ms": 1000 * max(chunk_times),
            "chunks": len(chunk_times),
            **{f"{mode}_wer": wer(refs, texts[mode]) for mode in texts},
            **{f"{mode}_slices": counts[mode] for mode in counts}}


def report(results: list[Run], worker: dict, runs: int, cuts: dict) -> str:
    live = [r.live_s for r in results]
    upload = [r.upload_s for r in results]
    settings = load_settings().live
    full = [r for r in results if r.recorded_s > float(manifest()[RECORDING]["seconds"]) - 2]
    first = [r.first_words_s for r in results if r.first_words_s is not None and r.first_words_s < r.stop_at]
    lines = [
        "# Live mode: Stop to final text",
        "",
        f"`--runs {runs}` on {platform.machine()}, {os.cpu_count()} CPU core(s) shared "
        f"with other work, {time.strftime('%Y-%m-%d')}: a server with its one local worker "
        f"({worker['engine']} {worker['model']}), Debian's Chromium headless with its fake microphone "
        f"playing `{RECORDING}` (read sentences with pauses). Each run presses Record, then Stop after the "
        "given seconds, and times inside the page the Stop click to the final transcript on the page. "
        "Beside it, the same audio (the live job's stored audio.wav) uploaded whole through the API and "
        "timed to its job being done: what Stop cost before live mode. Live and upload runs alternate.",
        "",
        f"Live settings: a pause of {settings.pause_s:g} s closes a slice once it spans "
        f"{settings.slice_after_s:g} s; a pause of {settings.long_pause_s:g} s closes it whatever its "
        "length.",
        "",
        "| | median | p90 |",
        "|---|---|---|",
        f"| live: Stop → final text on the page | **{statistics.median(live):.2f} s** "
        f"| {percentile(live, 90):.2f} s |",
        f"| upload at Stop → job done | {statistics.median(upload):.2f} s | {percentile(upload, 90):.2f} s |",
        f"| ratio upload / live (medians) | {statistics.median(upload) / statistics.median(live):.1f}× | |",
        "",
    ]
    if first:
        lines += [f"First words on the page while still recording: median {statistics.median(first):.1f} s "
                  "after Record was pressed.", ""]
    if full:
        reference = manifest()[RECORDING]["reference"]
        lines += [f"WER of the page's text for the runs that recorded the whole file: "
                  f"{statistics.median(wer(reference, r.text) for r in full):.1f} % (median).", ""]
    lines += [f"Cutting while recording, measured apart from the browser: {cuts['files']} long corpus "
              f"recordings ({cuts['seconds']:.0f} s, tiers A/A-/B), the same model on both: cut as an upload "
              f"is, {cuts['upload_slices']} slices, pooled WER {cuts['upload_wer']:.1f} %; cut as live mode "
              f"cuts them while they play, {cuts['live_slices']} slices, pooled WER "
              f"{cuts['live_wer']:.1f} %.",
              "",
              f"The server's work per 250 ms chunk (order, frame levels, the slicing rule; without the file "
              f"write): median {cuts['chunk_ms']:.2f} ms, at most {cuts['chunk_max_ms']:.2f} ms over "
              f"{cuts['chunks']} chunks.",
              ""]
    lines += ["| Stop after | recorded | slices | last slice (audio) | worker time on it | live: Stop → text "
              "| upload → done |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.stop_at:.2f} s | {r.recorded_s:.2f} s | {r.slices} | {r.last_slice_s:.1f} s "
                     f"| {r.last_slice_work_s:.2f} s | {r.live_s:.2f} s | {r.upload_s:.2f} s |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9,
                        help="live runs, each stopping at another point (default 9)")
    parser.add_argument("--recordings", nargs="+", default=list(live_captions.RECORDINGS), metavar="FILE",
                        help="corpus recordings for the captions part (default: "
                             f"{', '.join(live_captions.RECORDINGS)})")
    parser.add_argument("--quick", action="store_true",
                        help="one short recording each way, two Stop runs, one file cut: checks that the bench "
                             "works (its numbers mean nothing); writes bench/results/tmp/quick/live.md")
    parser.add_argument("--out", type=Path, help=f"markdown report (default {RESULTS}); raw numbers beside it "
                                                 "as .json")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.recordings = 2, list(live_captions.QUICK)
    out = args.out or (QUICK_RESULTS if args.quick else RESULTS)
    captions = live_captions.run(tuple(args.recordings))
    with tempfile.TemporaryDirectory() as tmp:
        results, worker = measure(args.runs, Path(tmp))
    cuts = cutting_wer(1 if args.quick else None)
    text = report(results, worker, args.runs, cuts)
    command = "python -m bench live" + (" --quick" if args.quick else f" --runs {args.runs}")
    text = text.replace("# Live mode: Stop to final text\n", "# Live mode\n\n" + f"`{command}`" +
                        (" (quick: a smoke test, these numbers mean nothing)" if args.quick else "") + "\n\n" +
                        live_captions.markdown(captions, tuple(args.recordings)) + "\n## Stop to final text\n", 1)
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    raw = {"captions": {"summary": live_captions.summary(captions), "runs": [asdict(r) for r in captions.runs],
                        "missed": captions.missed},
           "stop": [asdict(r) for r in results], "cutting": cuts}
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1, allow_nan=False, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
