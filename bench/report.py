"""The bench's results as markdown tables and PNG plots (matplotlib, no display needed)."""

from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI
import matplotlib.pyplot as plt  # noqa: E402

from . import compare, machine  # noqa: E402
from .before import BeforeResult  # noqa: E402
from .compare import BATCHED, PLAIN, CompareResult  # noqa: E402
from .memory import MemoryResult  # noqa: E402
from .scaleout import ScaleResult  # noqa: E402
from .splitter import SplitterResult  # noqa: E402

#: Targets from issue 6, checked in the report.
MIN_SPEEDUP_2X1 = 1.3
MAX_WER_LOSS = 0.5
MAX_SERVER_SHARE = 0.02
MIN_EFFICIENCY_16 = 0.90
MAX_SERVER_PEAK_MB = 300.0


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def header(title: str, info: dict[str, str], command: str, note: str = "") -> str:
    lines = [f"# {title}", "",
             f"Reproduce: `{command}` (from the repository root). Run {compare.timestamp()}.", "",
             "Machine:", "", machine.markdown(info), ""]
    if note:
        lines += [note, ""]
    return "\n".join(lines)


# --- speed and WER ------------------------------------------------------------------------------------------


def compare_markdown(result: CompareResult) -> str:
    sides = result.sides
    plain, ours = sides[PLAIN], sides["ss-2x1"]
    lines = [
        f"Workload: {result.recordings} corpus recordings joined into one {result.workload_s:.0f} s "
        f"recording (`bench/workload.py`); tiny.en int8, beam 5, this machine's 2 cores; {result.runs} runs, "
        "every side once per run in rotating order. Time: median over the runs. Speed-up: the plain run's "
        "time divided by the side's, within each run, median over the runs. WER: tiers A, A- and B of the "
        "corpus (tier C is aligned but not counted; all tiers in brackets).",
        "",
        "| side | time (s) | × real time | speed-up vs plain | WER % (all tiers) |",
        "|---|---:|---:|---:|---:|",
    ]
    for side in sides.values():
        lines.append(f"| {side.label} | {side.median_s:.1f} | {result.workload_s / side.median_s:.0f}× | "
                     f"{side.median_speedup:.2f}× | {side.wer.trusted:.2f} ({side.wer.all:.2f}) |")
    vs_batched = statistics.median(b / s for b, s in zip(sides[BATCHED].wall_s, ours.wall_s, strict=True))
    stats = compare.median_run(ours)
    share = compare.server_share(stats)
    cpu_share = stats["server_cpu_s"] / stats["wall_s"]
    wer_ok = ours.wer.trusted <= plain.wer.trusted + MAX_WER_LOSS
    lines += [
        "",
        f"Targets (issue 6), {ours.label}:",
        "",
        f"- speed-up over plain `transcribe` ≥ {MIN_SPEEDUP_2X1}×: {ours.median_speedup:.2f}× — "
        f"{_mark(ours.median_speedup >= MIN_SPEEDUP_2X1)}",
        f"- no slower than `BatchedInferencePipeline`: its time / ours = {vs_batched:.2f} (within each run, "
        f"median) — {_mark(vs_batched >= 1.0)}",
        f"- WER at most {MAX_WER_LOSS} points above plain: {ours.wer.trusted:.2f} % vs "
        f"{plain.wer.trusted:.2f} % — {_mark(wer_ok)}",
        f"- the server's own share of the wall time < {MAX_SERVER_SHARE:.0%}: {share:.2%} (decode + split + "
        f"hand-out + merge, median run) — {_mark(share < MAX_SERVER_SHARE)}; all the server process's CPU "
        f"time meanwhile, HTTP and Socket.IO included: {cpu_share:.2%}",
        "",
    ]
    if result.long_recordings:
        lines += long_markdown(result)
    for key in compare.CLUSTERS:
        lines += breakdown_markdown(sides[key])
    return "\n".join(lines)


def long_markdown(result: CompareResult) -> list[str]:
    """The long recordings one by one: every side's summed time and pooled WER."""
    sides = result.sides
    lines = [f"The corpus's {result.long_recordings} recordings of 20 s or more ({result.long_total_s:.0f} s), "
             "uploaded (or, for faster-whisper, transcribed) one after the other, in each run: summed time, "
             "median over the runs; speed-up over plain within each run; WER pooled over the recordings, "
             "every tier and tiers A/A-/B. Natural recordings, unlike the joined workload: here the batched "
             "pipeline's WER is plain's, and it is the peer to beat on speed.", "",
             "| side | time (s) | speed-up vs plain | WER % all | WER % A/A-/B |", "|---|---:|---:|---:|---:|"]
    for side in sides.values():
        lines.append(f"| {side.label} | {statistics.median(side.long_s):.1f} | "
                     f"{statistics.median(side.long_speedup):.2f}× | {side.long_wer:.2f} | "
                     f"{side.long_wer_trusted:.2f} |")
    ours = sides["ss-2x1"]
    vs_batched = statistics.median(b / s for b, s in zip(sides[BATCHED].long_s, ours.long_s, strict=True))
    lines += ["", f"{ours.label} on the long recordings: `BatchedInferencePipeline`'s time / ours = "
                  f"{vs_batched:.2f}; WER {ours.long_wer:.2f} % against plain's {sides[PLAIN].long_wer:.2f} %.",
              ""]
    return lines


def breakdown_markdown(side: compare.SideResult) -> list[str]:
    stats = compare.median_run(side)
    lines = [f"Where the time goes — {side.label} (its median run: {stats['wall_s']:.2f} s, "
             f"{stats['slices']} slices, {stats['sent_audio_s']:.0f} s of audio sent once long pauses are "
             "dropped). The first four rows add up to the wall time; the last three happen meanwhile:", "",
             "| stage | seconds | share of wall | what |", "|---|---:|---:|---|"]
    for stage, seconds, what in compare.breakdown(stats):
        lines.append(f"| {stage} | {seconds:.3f} | {seconds / stats['wall_s']:.1%} | {what} |")
    lines.append("")
    return lines


def compare_plot(result: CompareResult, path: Path) -> None:
    sides = list(result.sides.values())
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    names = [s.label.replace("`", "").replace(", ", ",\n", 1) for s in sides]
    low = [s.median_s - min(s.wall_s) for s in sides]
    high = [max(s.wall_s) - s.median_s for s in sides]
    y = range(len(sides))
    left.barh(y, [s.median_s for s in sides], xerr=[low, high], capsize=4,
              color=["#999999", "#bbbbbb", "#4c72b0", "#2a4d8f"])
    left.set_yticks(list(y), names, fontsize=8)
    left.invert_yaxis()
    left.set_xlabel(f"seconds for {result.workload_s:.0f} s of speech "
                    f"(median; whiskers: min–max of {result.runs} runs)")
    for k, side in enumerate(sides):
        left.text(max(side.wall_s), k, f"  {side.median_s:.1f} s, WER {side.wer.trusted:.1f} %", va="center",
                  fontsize=8)
    left.set_xlim(0, max(max(s.wall_s) for s in sides) * 1.45)
    rows = compare.breakdown(compare.median_run(result.sides["ss-2x1"]))
    right.barh(range(len(rows)), [max(r[1], 1e-4) for r in rows],
               color=["#2a4d8f"] * 4 + ["#999999"] * (len(rows) - 4))
    right.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    right.invert_yaxis()
    right.set_xscale("log")
    right.set_xlabel("seconds (log scale)")
    right.set_title("Scatterscribe 2 × 1: where the time goes\n(blue: the wall time; grey: meanwhile)",
                    fontsize=9)
    fig.suptitle("Scatterscribe vs faster-whisper, tiny.en int8, 2 cores", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- scale-out ----------------------------------------------------------------------------------------------


def scaleout_markdown(result: ScaleResult) -> str:
    lines = [
        f"Workload: a {result.workload_s / 60:.1f}-minute recording (the compare part's one, three times "
        f"over); sleep engine at {result.rate:g} s per audio second, one slice at a time per worker; "
        f"{result.runs} run(s) per worker count, counts in rotating order. Ideal = total work (the slices' "
        "sleep, as the workers measured it) / workers; efficiency = ideal / end-to-end time, median over the "
        "runs.",
        "",
        "| workers | slices | time (s) | ideal (s) | efficiency |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p in result.points:
        lines.append(f"| {p.workers} | {p.slices} | {p.median_s:.2f} | {min(p.ideal_s):.2f} | "
                     f"{p.efficiency:.1%} |")
    last = result.points[-1]
    ok = last.workers < 16 or last.efficiency >= MIN_EFFICIENCY_16
    lines += ["", f"Target: efficiency ≥ {MIN_EFFICIENCY_16:.0%} at 16 workers: {last.efficiency:.1%} at "
                  f"{last.workers} — {_mark(ok)}", ""]
    return "\n".join(lines)


def scaleout_plot(result: ScaleResult, path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    workers = [p.workers for p in result.points]
    left.plot(workers, [p.median_s for p in result.points], "o-", label="end to end", color="#2a4d8f")
    left.plot(workers, [min(p.ideal_s) for p in result.points], "--", label="ideal (work / workers)",
              color="#999999")
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xticks(workers, [str(w) for w in workers])
    left.set_xlabel("workers")
    left.set_ylabel("seconds")
    left.legend(fontsize=8)
    right.plot(workers, [100 * p.efficiency for p in result.points], "o-", color="#2a4d8f")
    right.axhline(100 * MIN_EFFICIENCY_16, color="#cc4444", linestyle=":", label="target at 16")
    right.set_xscale("log", base=2)
    right.set_xticks(workers, [str(w) for w in workers])
    right.set_ylim(0, 105)
    right.set_xlabel("workers")
    right.set_ylabel("efficiency %")
    right.legend(fontsize=8, loc="lower left")
    fig.suptitle(f"Scale-out: {result.workload_s / 60:.0f} min of audio, sleep engine at {result.rate:g} s "
                 "per audio second", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- memory -------------------------------------------------------------------------------------------------


def memory_markdown(result: MemoryResult) -> str:
    ok = result.server_peak_mb < MAX_SERVER_PEAK_MB
    return "\n".join([
        "Peak resident set size (the kernel's VmHWM).",
        "",
        "| process | peak RSS (MB) | while |",
        "|---|---:|---|",
        f"| server, idle | {result.server_idle_mb:.0f} | started, workers connected |",
        f"| server | {result.server_peak_mb:.0f} | a {result.upload_s / 60:.0f}-minute upload "
        f"({result.upload_mb:.0f} MB WAV) decoded, split, handed out and merged |",
        f"| server (fresh), idle | {result.server_mp3_idle_mb:.0f} | started, workers connected |",
        f"| server (fresh) | {result.server_mp3_peak_mb:.0f} | a {result.mp3_s / 60:.0f}-minute MP3 "
        f"({result.mp3_mb:.0f} MB, 128 kbit/s stereo) decoded with FFmpeg, split, handed out and merged |",
        f"| server (fresh), idle | {result.server_block_idle_mb:.0f} | started, workers connected |",
        f"| server (fresh) | {result.server_block_peak_mb:.0f} | a {result.block_s / 60:.0f}-minute recording "
        f"in one Matroska block ({result.block_mb:.3g} MB of 4 kHz 8-bit PCM: one packet, one decoded frame) "
        "resampled piece by piece, split, handed out and merged |",
        f"| one worker ({result.worker_label}) | {result.worker_peak_mb:.0f} | transcribing "
        f"{result.worker_audio_s:.0f} s |",
        "",
        f"Target: server peak for a 60-minute upload < {MAX_SERVER_PEAK_MB:.0f} MB: "
        f"{result.server_peak_mb:.0f} MB — {_mark(ok)}",
        "",
        f"Target: server peak for a 2-hour MP3 < {MAX_SERVER_PEAK_MB:.0f} MB: "
        f"{result.server_mp3_peak_mb:.0f} MB — {_mark(result.server_mp3_peak_mb < MAX_SERVER_PEAK_MB)}",
        "",
        f"Target: server peak for a {result.block_mb:.3g} MB one-block file < {MAX_SERVER_PEAK_MB:.0f} MB: "
        f"{result.server_block_peak_mb:.0f} MB — {_mark(result.server_block_peak_mb < MAX_SERVER_PEAK_MB)}",
        "",
    ])


# --- finding the pauses -------------------------------------------------------------------------------------


def splitter_markdown(result: SplitterResult) -> str:
    ours = result.methods["numpy"]
    lines = [f"The {result.workload_s:.0f} s recording, already in memory; {result.runs} run(s), methods in "
             "rotating order; median time, and time relative to ours within each run (median).", "",
             "| method | time (s) | share of the audio's length | × ours | pieces found |",
             "|---|---:|---:|---:|---:|"]
    for method in result.methods.values():
        ratio = statistics.median(m / o for m, o in zip(method.seconds, ours.seconds, strict=True))
        lines.append(f"| {method.label} | {method.median_s:.3f} | "
                     f"{method.median_s / result.workload_s:.3%} | {ratio:.0f}× | {method.cuts} |")
    lines += ["", "Pieces: slices for ours, speech stretches for Silero, chunks for pydub (counts not "
                  "comparable).", ""]
    return "\n".join(lines)


# --- before and after --------------------------------------------------------------------------------------


def before_markdown(result: BeforeResult) -> str:
    lines = [f"The {result.workload_s:.0f} s recording; this code against commit `{result.commit}` (the core "
             f"before the benchmark work), 2 worker processes × 1 thread each, tiny.en int8; {result.runs} "
             "runs, sides in rotating order. Speed-up: the earlier code's time divided by the side's, within "
             "each run, median over the runs.", "",
             "| side | slices | time (s) | × real time | speed-up vs before | WER % (all tiers) |",
             "|---|---:|---:|---:|---:|---:|"]
    for side in result.sides.values():
        lines.append(f"| {side.label} | {side.runs[0]['slices']} | {side.median_s:.1f} | "
                     f"{result.workload_s / side.median_s:.0f}× | {side.median_speedup:.2f}× | "
                     f"{side.wer.trusted:.2f} ({side.wer.all:.2f}) |")
    return "\n".join(lines) + "\n"


# --- width --------------------------------------------------------------------------------------------------


def width_plot(result, path: Path) -> None:
    """WER and time against the slots in all, one line per layout, the faster-whisper baselines as lines."""
    from .width import BATCHED, PLAIN

    sides = result.sides
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    colours = {"one": "#2a4d8f", "many": "#55a868"}
    slots: list[int] = []
    for axis, attr, title in ((left, "long_wer_all", "WER %, long recordings one by one"),
                              (right, "long_median_s", "seconds, long recordings one by one")):
        for layout in result.layouts:
            widths = [s for s in sides.values() if s.slots and s.layout == layout]
            slots = [s.slots for s in widths]
            axis.plot(slots, [getattr(s, attr) for s in widths], "o-", color=colours.get(layout, "#2a4d8f"),
                      label=f"Scatterscribe, layout {layout}")
        axis.axhline(getattr(sides[PLAIN], attr), color="#999999", linestyle="--", label="plain transcribe")
        axis.axhline(getattr(sides[BATCHED], attr), color="#cc8844", linestyle=":", label="batched pipeline")
        axis.set_xscale("log", base=2)
        axis.set_xticks(slots, [str(n) for n in slots])
        axis.set_xlabel("slots in all")
        axis.set_title(title, fontsize=9)
        axis.set_ylim(bottom=0)
        axis.legend(fontsize=7)
    fig.suptitle(f"Width: {len(result.recordings)} long corpus recordings ({result.long_total_s:.0f} s), "
                 "tiny.en int8", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
