"""How soon each spoken word shows on the page in live mode, with tentative text and without.

Part of ``python -m bench live`` (``bench/live.py`` runs it and writes the report). Two servers, each with its
one local worker (faster-whisper tiny.en, as ``python -m server`` starts it): one as configured (tentative text
on), one with ``[tentative] every_s = 0`` (today's live mode without it). For each corpus recording, Debian's
Chromium, whose fake microphone plays it at the speed it was spoken, records it live through the page on
each server in turn, presses Stop as the file ends and waits for the final text.

Inside the page, every change of the transcript is kept with its time: the words shown in order (final text
and tentative words alike) and the final text alone; and every ~20 ms the audio recorded so far, so each moment
of the recording maps to the moment it reached the page. Each reference word gets a time in the recording: the
end of the word the whole-file model (tiny.en on the whole recording, word timestamps) aligned to it, or, for
the few it did not hear, a time interpolated between its neighbours. A word's delay is from that moment, as it
reached the page's microphone, to the first page state whose text, aligned to the reference spoken so far,
holds it: first in any style (tentative), and in the final text. Words never shown are counted apart.
"""

from __future__ import annotations

import difflib
import re
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from server.audio import PcmFile
from tests.support import ROOT, Server, corpus_file, launch_chromium, manifest, wer, write_config

#: Where the server's log of a run that went wrong is kept (not committed).
KEPT = ROOT / "bench" / "results" / "tmp" / "live"

#: Recordings played (speech with pauses, read and spontaneous; 156 s in all).
RECORDINGS = ("osr_us_000_0034_harvard_list72.wav", "mfa_acoustic_corpus_spontaneous.wav",
              "librivox_shakespeare_sonnet_001.wav", "jfk_inaugural_excerpt.wav",
              "ls_dev-clean_1272-128104-0004_8k.wav")
QUICK = ("jfk_inaugural_excerpt.wav",)
SIDES = ("tentative", "without")

#: Record, keep every state of the transcript and the audio clock, Stop as the file ends, wait for "Done".
RUN = """async (length) => {
  const intake = window.scatterscribe.intake;
  const transcript = document.getElementById('transcript');
  const badge = document.getElementById('job-status');
  const states = [];
  const clock = [];
  // The final text: every sentence of a done slice (transcript.js); the tentative words: partial.js's, in the
  // tail after them (the words of a closed slice first, then the open part's).
  const shown = () => {
    const final = [...transcript.querySelectorAll('#transcript-body .seg')].map((n) => n.textContent).join(' ');
    const tentative = [...transcript.querySelectorAll('#transcript-tail .word')].map((w) => w.dataset.word);
    return { all: [final, ...tentative].join(' '), final };
  };
  const seen = new MutationObserver(() => {
    const now = shown();
    const last = states[states.length - 1];
    if (!last || last.all !== now.all || last.final !== now.final) states.push({ t: performance.now(), ...now });
  });
  seen.observe(transcript, { childList: true, subtree: true, characterData: true });
  document.getElementById('record').click();
  const ticker = setInterval(() => {
    if (intake.rate) clock.push([performance.now(), intake.frames / intake.rate]);
  }, 20);
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      if (intake.rate && intake.frames / intake.rate >= length - 0.15) { clearInterval(timer); resolve(); }
    }, 5);
  });
  const done = new Promise((resolve) => {
    const watch = new MutationObserver(() => {
      if (badge.textContent === 'Done') { watch.disconnect(); resolve(performance.now()); }
    });
    watch.observe(badge, { childList: true, characterData: true, subtree: true });
  });
  const stopped = performance.now();
  document.getElementById('record').click();
  const finished = await Promise.race([done, new Promise((r) => setTimeout(() => r(null), 120000))]);
  clearInterval(ticker);
  seen.disconnect();
  return { states, clock, stopped, finished, job: new URLSearchParams(location.search).get('job'),
           text: transcript.textContent, badge: badge.textContent };
}"""


def words_of(text: str) -> list[str]:
    """Words as compared: lower case, letters, digits and apostrophes only."""
    return [w for w in (re.sub(r"[^\w']", "", w.lower()) for w in text.split()) if w]


@dataclass
class Run:
    recording: str
    side: str
    delays_any: list[float]  # seconds, one per reference word shown (any style)
    delays_final: list[float]  # one per reference word shown in the final text
    words: int  # reference words
    stop_to_final_s: float
    text: str
    slice_elapsed_s: list[float]  # each slice's decode time on the worker
    slice_audio_s: list[float]  # each slice's audio
    updates: int  # page states in which only the tentative words changed


@dataclass
class CaptionsResult:
    runs: list[Run] = field(default_factory=list)
    worker: dict[str, Any] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)  # runs whose page never showed the final text, and why


class MissedFinal(RuntimeError):
    """The page never showed "Done" after Stop."""


def _job_outline(server: Server, job_id: str | None) -> str:
    """The server's side of a run that went wrong: the job's status and its slices' (for the report)."""
    if not job_id:
        return "no job id on the page"
    try:
        job = server.job(job_id)
    except Exception as exc:  # noqa: BLE001 - a diagnosis: say what went wrong instead
        return f"could not be read ({exc})"
    return f"{job['status']}, slices {[s['status'] for s in job['slices']]}"


def reference_times(name: str, model) -> tuple[list[str], np.ndarray]:
    """The reference's words and, for each, when it ends in the recording: the whole-file model's time for the
    word aligned to it, interpolated between neighbours for the words it did not hear."""
    samples = PcmFile(corpus_file(name))[:].astype(np.float32) / 32768.0
    segments, _ = model.transcribe(samples, language="en", beam_size=5, word_timestamps=True)
    heard = [(w, float(word.end)) for seg in segments for word in seg.words for w in words_of(word.word)]
    reference = words_of(manifest()[name]["reference"])
    times = np.full(len(reference), np.nan)
    matcher = difflib.SequenceMatcher(None, reference, [w for w, _ in heard], autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            times[block.a + k] = heard[block.b + k][1]
    known = np.flatnonzero(~np.isnan(times))
    if len(known) == 0:
        raise RuntimeError(f"{name}: the whole-file model heard none of the reference")
    times = np.interp(np.arange(len(reference)), known, times[known])
    return reference, times


def spoken_at(clock: list[list[float]], audio_s: float) -> float | None:
    """The page's time at which the audio at ``audio_s`` of the recording reached it: the chunk holding it
    arrived when the recorded length first reached past it, ``(length - audio_s)`` after it was captured."""
    for wall, recorded in clock:
        if recorded >= audio_s:
            return wall - 1000.0 * (recorded - audio_s)
    return None


def first_shown(states: list[dict], key: str, reference: list[str], spoken: list[float | None]) -> list[float | None]:
    """For each reference word, the time of the first state whose ``key`` text, aligned to the reference words
    spoken by then, holds it."""
    shown: list[float | None] = [None] * len(reference)
    for state in states:
        said = sum(1 for s in spoken if s is not None and s <= state["t"] + 500.0)
        matcher = difflib.SequenceMatcher(None, reference[:said], words_of(state[key]), autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.a, block.a + block.size):
                if shown[k] is None:
                    shown[k] = state["t"]
    return shown


def one_run(browser_for, server: Server, name: str, side: str, reference: list[str], times: np.ndarray) -> Run:
    length = float(manifest()[name]["seconds"])
    browser = browser_for(name)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("#connection[data-state='connected']", timeout=30_000)
    out = page.evaluate(RUN, length)
    context.close()
    if out["finished"] is None:
        raise MissedFinal(f"{name} ({side}): the final text never came; the page's badge said "
                          f"{out['badge']!r}, the server's job: {_job_outline(server, out['job'])}")
    spoken = [spoken_at(out["clock"], t) for t in times]
    delays = {}
    for key in ("all", "final"):
        shown = first_shown(out["states"], key, reference, spoken)
        delays[key] = [(a - s) / 1000.0 for a, s in zip(shown, spoken, strict=True) if a is not None and s is not None]
    job = server.job(out["job"])
    slices = [s for s in job["slices"] if s["status"] == "done"]
    updates = sum(1 for a, b in zip(out["states"], out["states"][1:], strict=False)
                  if a["final"] == b["final"] and a["all"] != b["all"])  # the tentative words alone changed
    run = Run(name, side, delays["all"], delays["final"], len(reference), (out["finished"] - out["stopped"]) / 1000,
              job["transcript"], [s["elapsed"] for s in slices], [sum(b - a for a, b in s["pieces"]) for s in slices],
              updates)
    return run


def measure(tmp: Path, recordings: tuple[str, ...], log=print) -> CaptionsResult:
    from faster_whisper import WhisperModel
    from playwright.sync_api import sync_playwright

    from client.engines.faster_whisper_engine import bundled_model_path

    model = WhisperModel(str(bundled_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    references = {name: reference_times(name, model) for name in recordings}
    del model
    for side in SIDES:
        (tmp / side).mkdir()
    off = write_config(tmp / "without.toml", tentative={"every_s": 0.0})
    servers = {"tentative": Server(tmp / "tentative", local_workers=1, name="tentative"),
               "without": Server(tmp / "without", local_workers=1, config=off, name="without")}
    result = CaptionsResult()
    try:
        for server in servers.values():
            result.worker = server.wait_workers(1, timeout=120)[0]
            warm = server.submit(corpus_file("jfk_inaugural_excerpt.wav"))  # CTranslate2 loads its kernels
            server.wait_job(warm)
        with sync_playwright() as playwright:
            browsers: dict[str, Any] = {}

            def browser_for(name: str):
                if name not in browsers:
                    for old in browsers.values():
                        old.close()
                    browsers.clear()
                    browsers[name] = launch_chromium(playwright, "--use-fake-ui-for-media-stream",
                                                     "--use-fake-device-for-media-stream",
                                                     f"--use-file-for-fake-audio-capture={corpus_file(name)}")
                return browsers[name]
            try:
                for n, name in enumerate(recordings):
                    # Alternate which side goes first, so a shared machine's load falls on both alike.
                    for side in SIDES if n % 2 == 0 else SIDES[::-1]:
                        reference, times = references[name]
                        try:
                            run = one_run(browser_for, servers[side], name, side, reference, times)
                        except MissedFinal as exc:
                            # Reported, with the server's log kept, and the bench goes on to the next run.
                            kept = KEPT / f"{Path(name).stem}-{side}.log"
                            KEPT.mkdir(parents=True, exist_ok=True)
                            kept.write_text(servers[side].log())
                            result.missed.append(f"{exc} (server log: {kept.relative_to(ROOT)})")
                            log(result.missed[-1])
                            continue
                        result.runs.append(run)
                        log(f"{name} ({side}): {len(run.delays_any)}/{run.words} words shown, median delay "
                            f"{_median(run.delays_any):.2f} s (final {_median(run.delays_final):.2f} s), "
                            f"Stop to final {run.stop_to_final_s:.2f} s, WER "
                            f"{wer(manifest()[name]['reference'], run.text):.1f} %")
            finally:
                for browser in browsers.values():
                    browser.close()
    finally:
        for server in servers.values():
            server.stop()
    return result


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p90(values: list[float]) -> float:
    return float(np.percentile(values, 90)) if values else float("nan")


def summary(result: CaptionsResult) -> dict[str, Any]:
    """Pooled numbers per side: word delays (median, p90), words shown, WER, Stop to final text, decode time."""
    out: dict[str, Any] = {}
    for side in SIDES:
        runs = [r for r in result.runs if r.side == side]
        if not runs:
            continue
        any_ = [d for r in runs for d in r.delays_any]
        final = [d for r in runs for d in r.delays_final]
        words = sum(r.words for r in runs)
        out[side] = {
            "words": words, "shown": len(any_) / words, "shown_final": len(final) / words,
            "any_median_s": _median(any_), "any_p90_s": p90(any_),
            "final_median_s": _median(final), "final_p90_s": p90(final),
            "wer": wer([manifest()[r.recording]["reference"] for r in runs], [r.text for r in runs]),
            "stop_median_s": _median([r.stop_to_final_s for r in runs]),
            "stop_p90_s": p90([r.stop_to_final_s for r in runs]),
            "decode_s_per_audio_s": sum(e for r in runs for e in r.slice_elapsed_s) /
            max(1e-9, sum(a for r in runs for a in r.slice_audio_s)),
            "slice_decode_median_s": _median([e for r in runs for e in r.slice_elapsed_s]),
            "slices": sum(len(r.slice_elapsed_s) for r in runs),
            "updates_per_min": 60 * sum(r.updates for r in runs) /
            sum(float(manifest()[r.recording]["seconds"]) for r in runs),
        }
    return out


def markdown(result: CaptionsResult, recordings: tuple[str, ...]) -> str:
    s = summary(result)
    on, off = s.get("tentative"), s.get("without")
    seconds = sum(float(manifest()[name]["seconds"]) for name in recordings)
    lines = [
        "## Captions: from speech to the page",
        "",
        f"{len(recordings)} corpus recordings ({seconds:.0f} s: {', '.join(f'`{n}`' for n in recordings)}), each "
        "recorded live through the page by Chromium's fake microphone at the speed it was spoken, once on a "
        "server with tentative text and once on one without (`[tentative] every_s = 0`, today's live mode), "
        f"alternating which goes first; each server has its one local worker ({result.worker.get('engine')} "
        f"{result.worker.get('model')}). Delay: for every reference word, from the moment it was spoken (the "
        "end of the word as the whole-file model times it) to its first appearance on the page; pooled over "
        "the recordings.",
        "",
        "| | tentative text | without (today) |",
        "|---|---|---|",
    ]
    if on and off:
        rows = [
            ("word delay, first shown (any style): median", f"**{on['any_median_s']:.2f} s**",
             f"{off['any_median_s']:.2f} s"),
            ("word delay, first shown: p90", f"**{on['any_p90_s']:.2f} s**", f"{off['any_p90_s']:.2f} s"),
            ("word delay, in the final text: median", f"{on['final_median_s']:.2f} s",
             f"{off['final_median_s']:.2f} s"),
            ("word delay, in the final text: p90", f"{on['final_p90_s']:.2f} s", f"{off['final_p90_s']:.2f} s"),
            ("reference words shown (any style / final)",
             f"{100 * on['shown']:.0f} % / {100 * on['shown_final']:.0f} %",
             f"{100 * off['shown']:.0f} % / {100 * off['shown_final']:.0f} %"),
            ("final text's WER (pooled)", f"{on['wer']:.2f} %", f"{off['wer']:.2f} %"),
            ("Stop → final text: median (p90)", f"{on['stop_median_s']:.2f} s ({on['stop_p90_s']:.2f} s)",
             f"{off['stop_median_s']:.2f} s ({off['stop_p90_s']:.2f} s)"),
            ("closed slices' decode time per audio second", f"{on['decode_s_per_audio_s']:.3f} s",
             f"{off['decode_s_per_audio_s']:.3f} s"),
            ("closed slices' decode time: median (slices)", f"{on['slice_decode_median_s']:.2f} s ({on['slices']})",
             f"{off['slice_decode_median_s']:.2f} s ({off['slices']})"),
            ("changes of the tentative words per minute of speech", f"{on['updates_per_min']:.0f}", "0"),
        ]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
        ratio = on["decode_s_per_audio_s"] / off["decode_s_per_audio_s"]
        lines += ["", f"Against the targets (issue 16): tentative median {on['any_median_s']:.2f} s (≤ 2.0 s), p90 "
                  f"{on['any_p90_s']:.2f} s (≤ 3.5 s); final WER {on['wer'] - off['wer']:+.2f} points against "
                  f"today's live mode (≤ +0.3); Stop → final text median {on['stop_median_s']:.2f} s (≤ 1.5 s); "
                  f"closed slices' decode time {ratio:.2f}× without tentative work (≤ 1.10×)."]
    if result.missed:
        lines += ["", f"Runs whose page never showed the final text ({len(result.missed)}, left out above):", ""]
        lines += [f"- {m}" for m in result.missed]
    lines += ["", "| recording | side | words shown | delay median (final) | delay p90 (final) | Stop → final "
              "| WER |", "|---|---|---|---|---|---|---|"]
    for r in result.runs:
        lines.append(f"| `{r.recording}` | {r.side} | {len(r.delays_any)}/{r.words} | {_median(r.delays_any):.2f} s "
                     f"({_median(r.delays_final):.2f} s) | {p90(r.delays_any):.2f} s ({p90(r.delays_final):.2f} s) "
                     f"| {r.stop_to_final_s:.2f} s | {wer(manifest()[r.recording]['reference'], r.text):.1f} % |")
    return "\n".join(lines) + "\n"


def run(recordings: tuple[str, ...] = RECORDINGS, log=print) -> CaptionsResult:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = measure(Path(tmp), recordings, log)
        log(f"captions: {time.perf_counter() - t0:.0f} s")
    return result
