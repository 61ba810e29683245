"""Ceiling: how much one server can coordinate.

A real server process; many simulated workers (``bench/swarm.py``: python-socketio ``AsyncClient``s spread over a
few processes, one slot each, answering every slice after sleeping ``rate`` × its audio seconds, no model);
100 simulated pages, each watching one job. The jobs are synthetic recordings of short bursts of sound between
pauses, cut into many short slices, uploaded before the workers connect, so the queue never runs dry while the
server is measured.

For 50, 200, 500 and 1,000 workers, over a window of steady state (all clients connected):

* slices returned per second, against what the workers could do (``demand``: workers / seconds per slice);
* hand-out latency: a worker's result sent → its next slice received (median, p99);
* page push latency: a slice stored on the server (its ``finished_at``) → a watching page has it (median, p99);
* the server's CPU (share of one core: eventlet runs on one) and peak memory;
* where the server's time goes: py-spy samples its stacks during the window; the report lists the functions
  with the most samples of their own (self time) and the most in total (inclusive).
"""

from __future__ import annotations

import collections
import json
import math
import signal
import statistics
import subprocess
import sys
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import psutil

from server.audio import TARGET_RATE
from tests.support import PYTHON, ROOT, TOKEN, Server, write_config

COUNTS = (50, 200, 500, 1000)
PAGES = 100
#: Simulated clients per swarm process (asyncio holds a few hundred websockets easily).
PER_PROCESS = 250
#: Simulated pages per swarm process.
PAGES_PER_PROCESS = 50
#: The synthetic recording: bursts of this long, then pauses of this long; slices hold one burst each.
BURST_S, PAUSE_S = 1.4, 0.6
#: Seconds a simulated worker sleeps per second of slice audio: 1.8 s slices take it 1.8 s, about what a real
#: worker spends on a full 28 s slice (how fast real workers run: bench/results/compare.md).
RATE = 1.0
SLICES_PER_JOB = 2000


@dataclass
class Point:
    workers: int
    pages: int
    window_s: float
    slice_s: float  # mean audio seconds of a slice
    demand_per_s: float  # what the workers could return if the server kept up
    results_per_s: float
    handout_ms: tuple[float, float]  # median, p99
    push_ms: tuple[float, float]
    pushes: int
    server_cpu: float  # share of one core over the window
    server_rss_mb: float  # peak over the point
    connect_s: float  # time for every client to connect
    errors: int  # calls that failed inside the window (a result the server did not take)
    queue_dry: bool  # the queue ran out during the window (then results/s is a floor, not the ceiling)
    profile_self: list[tuple[str, float]] = field(default_factory=list)  # (function, share of samples)
    profile_total: list[tuple[str, float]] = field(default_factory=list)
    profile_error: str = ""  # what py-spy said when it sampled nothing (it cannot read every Python build)


@dataclass
class CeilingResult:
    rate: float
    points: list[Point]
    stopped: str = ""  # why the run ended before its last count (the points before it stand)

    @property
    def knee(self) -> Point:
        """The first point where the server returns less than 80 % of what the workers could do (the last point
        if it always kept up)."""
        return next((p for p in self.points if p.results_per_s < 0.8 * p.demand_per_s), self.points[-1])


def synthetic_recording(path: Path, slices: int) -> float:
    """Bursts of noise at speech level between quiet pauses: the splitter makes one slice per burst. Returns the
    recording's length in seconds."""
    rate = TARGET_RATE
    rng = np.random.default_rng(7)
    burst, pause = int(BURST_S * rate), int(PAUSE_S * rate)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        for _ in range(slices):
            out.writeframes((rng.normal(0, 3000, burst)).astype("<i2").tobytes())
            out.writeframes((rng.normal(0, 10, pause)).astype("<i2").tobytes())
    return slices * (BURST_S + PAUSE_S)


def _percentiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return (math.nan, math.nan)
    ordered = sorted(values)
    return (statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000)


def _profile(raw: Path, top: int = 12) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Self and inclusive shares of py-spy's collapsed stacks (``frame;frame;... count`` per line)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].split("/")[-1] + ")" if " (" in f else f
                  for f in stack.split(";")]
        samples += n
        own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    if not samples:
        return [], []
    return ([(f, n / samples) for f, n in own.most_common(top)],
            [(f, n / samples) for f, n in total.most_common(top * 3) if not f.startswith(("<module>", "run ("))][:top])


def measure(tmp: Path, workers: int, pages: int, recording: Path, slice_s: float, window_s: float, rate: float,
            slices_per_job: int, log: Callable[[str], None]) -> Point:
    tmp.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp / "config.toml",
                          # every simulated worker and page connects from 127.0.0.1: lift the per-address cap
                          server={"max_connections_per_client": 4000},
                          splitter={"max_slice_s": 2.0, "min_slice_s": 1.0},
                          live={"max_sessions": 0})
    server = Server(tmp, config=config)
    procs: list[subprocess.Popen] = []
    spy = None
    try:
        server_proc = psutil.Process(server.pid)
        demand = workers / (rate * slice_s)
        jobs_needed = max(1, math.ceil(min(demand, 400) * (window_s + 30) / slices_per_job))
        jobs = [server.submit(recording) for _ in range(jobs_needed)]
        outs = []
        t_connect = time.time()
        # Pages in processes of their own: a page decodes every push it gets, and a worker sharing its process
        # would answer late for it (its pings too: the server would drop it).
        shares = [(min(PER_PROCESS, workers - first), 0) for first in range(0, workers, PER_PROCESS)]
        shares += [(0, min(PAGES_PER_PROCESS, pages - first)) for first in range(0, pages, PAGES_PER_PROCESS)]
        for k, (n_workers, n_pages) in enumerate(shares):
            out = tmp / f"swarm{k}.json"
            outs.append(out)
            procs.append(subprocess.Popen(
                [PYTHON, "-m", "bench.swarm", "--url", server.url, "--token", TOKEN, "--workers", str(n_workers),
                 "--pages", str(n_pages), "--rate", str(rate), "--prefix", str(k), "--out", str(out),
                 "--jobs", *jobs], cwd=ROOT, stdout=subprocess.PIPE, stderr=open(tmp / f"swarm{k}.log", "wb"),
                text=True))
        for proc in procs:  # each prints "connected N" once all its clients are in
            line = proc.stdout.readline()
            if not line.startswith("connected"):
                proc.wait(timeout=30)
                said = " ".join((tmp / f"swarm{procs.index(proc)}.log").read_text(errors="replace").split())
                raise RuntimeError(f"a swarm process failed to connect its clients (exit {proc.returncode}): "
                                   f"{said[-400:] or 'it said nothing'}")
        connect_s = time.time() - t_connect
        log(f"  {workers} workers, {pages} pages connected in {connect_s:.1f} s; measuring {window_s:.0f} s")
        cpu0, t0 = server_proc.cpu_times(), time.time()
        with open(tmp / "py-spy.log", "wb") as spy_log:
            spy = subprocess.Popen([str(Path(PYTHON).parent / "py-spy"), "record", "--pid", str(server.pid),
                                    "--duration", str(int(window_s)), "--rate", "50", "--format", "raw",
                                    "--output", str(tmp / "profile.txt"), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=spy_log)
        rss = 0.0
        while time.time() - t0 < window_s:
            rss = max(rss, server_proc.memory_info().rss / 2**20)
            time.sleep(0.5)
        cpu1, t1 = server_proc.cpu_times(), time.time()
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:  # py-spy hung on a loaded machine: the counts stand without a profile
            spy.kill()
            with open(tmp / "py-spy.log", "ab") as spy_log:
                spy_log.write(b"py-spy did not finish within 60 s of its window; stopped")
        queue_dry = any(server.job(j)["status"] == "done" for j in jobs[-1:])
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        if spy is not None and spy.poll() is None:
            spy.kill()
        server.stop()
    results, handouts, pushes, errors = [], [], [], 0
    for out in outs:
        data = json.loads(out.read_text())
        results += [sent for sent, _ in data["results"] if t0 <= sent <= t1]
        handouts += [got - sent for sent, got in data["handouts"] if t0 <= sent <= t1]
        pushes += [latency for got, latency in data["pushes"] if t0 <= got <= t1]
        errors += sum(t0 <= t <= t1 for t in data["error_times"])  # not the calls cut off by the teardown
    own, total = _profile(tmp / "profile.txt") if (tmp / "profile.txt").exists() else ([], [])
    said = " ".join((tmp / "py-spy.log").read_text(errors="replace").split())[-300:]
    # py-spy samples busy threads only: a server idle the whole window gives none (and py-spy says nothing).
    profile_error = "" if own else said or "no samples: the server never ran Python code while py-spy watched"
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0)
    return Point(workers, pages, t1 - t0, slice_s, demand, len(results) / (t1 - t0), _percentiles(handouts),
                 _percentiles(pushes), len(pushes), cpu, rss, connect_s, errors, queue_dry, own, total, profile_error)


def run(tmp: Path, counts: tuple[int, ...] = COUNTS, pages: int = PAGES, window_s: float = 20.0,
        rate: float = RATE, slices_per_job: int = SLICES_PER_JOB, log: Callable[[str], None] = print) -> CeilingResult:
    tmp.mkdir(parents=True, exist_ok=True)
    recording = tmp / "bursts.wav"
    synthetic_recording(recording, slices_per_job)
    slice_s = BURST_S + 0.4  # a burst and the 0.2 s of pause kept on each side
    points: list[Point] = []
    for n in counts:
        try:
            point = measure(tmp / f"workers{n}", n, pages, recording, slice_s, window_s, rate, slices_per_job, log)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            if not points:
                raise
            log(f"  {n:4d} workers: stopped: {exc}")  # the counts measured so far stand
            return CeilingResult(rate, points, stopped=f"at {n} workers: {exc}")
        log(f"  {n:4d} workers: {point.results_per_s:6.1f} slices/s of {point.demand_per_s:6.1f} possible; "
            f"hand-out {point.handout_ms[0]:.0f}/{point.handout_ms[1]:.0f} ms, push {point.push_ms[0]:.0f}/"
            f"{point.push_ms[1]:.0f} ms (median/p99); server CPU {point.server_cpu:.0%}, "
            f"{point.server_rss_mb:.0f} MB; {point.errors} errors{'; queue ran dry' if point.queue_dry else ''}")
        points.append(point)
    return CeilingResult(rate, points)


def main() -> int:  # python -m bench.ceiling: a quick look without the rest of the bench
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        result = run(Path(tmp), counts=tuple(int(a) for a in sys.argv[1:]) or COUNTS)
    print(json.dumps([p.__dict__ for p in result.points], indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())


def markdown(result: CeilingResult) -> str:
    lines = [f"Simulated workers (one slot each, {result.rate:g} s of sleep per second of slice audio), "
             f"{result.points[0].pages} watching pages, slices of {result.points[0].slice_s:.1f} s; "
             f"a window of {result.points[0].window_s:.0f} s of steady state per row.", "",
             "| workers | slices/s returned | could return | hand-out median / p99 (ms) | page push median / p99 "
             "(ms) | server CPU (one core) | server peak (MB) | errors |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in result.points:
        dry = " (queue ran dry)" if p.queue_dry else ""
        lines.append(f"| {p.workers} | {p.results_per_s:.1f}{dry} | {p.demand_per_s:.1f} | "
                     f"{p.handout_ms[0]:.0f} / {p.handout_ms[1]:.0f} | {p.push_ms[0]:.0f} / {p.push_ms[1]:.0f} | "
                     f"{p.server_cpu:.0%} | {p.server_rss_mb:.0f} | {p.errors} |")
    if result.stopped:
        lines += ["", f"**The run stopped {result.stopped}** (the rows above stand)."]
    knee = result.knee
    lines += ["", f"**Knee:** {knee.workers} workers ({knee.results_per_s:.1f} slices/s of {knee.demand_per_s:.1f}). "
              "Where the server's time goes there (py-spy, share of samples):", "",
              "| function (self) | share | function (inclusive) | share |", "|---|---:|---|---:|"]
    if not knee.profile_self:
        said = knee.profile_error or "it wrote no samples and said nothing"
        lines.append(f"| py-spy could not sample the server: {said} | | | |")
    for k in range(max(len(knee.profile_self), len(knee.profile_total))):
        own = knee.profile_self[k] if k < len(knee.profile_self) else ("", 0.0)
        total = knee.profile_total[k] if k < len(knee.profile_total) else ("", 0.0)
        lines.append(f"| `{own[0]}` | {own[1]:.0%} | `{total[0]}` | {total[1]:.0%} |")
    return "\n".join(lines) + "\n"


def plot(result: CeilingResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workers = [p.workers for p in result.points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(workers, [p.demand_per_s for p in result.points], "k--", label="what the workers could return")
    left.plot(workers, [p.results_per_s for p in result.points], "o-", label="returned")
    left.set_xlabel("simulated workers")
    left.set_ylabel("slices per second")
    left.legend()
    right.plot(workers, [p.handout_ms[0] for p in result.points], "o-", label="hand-out, median")
    right.plot(workers, [p.handout_ms[1] for p in result.points], "o:", label="hand-out, p99")
    right.plot(workers, [p.push_ms[0] for p in result.points], "s-", label="page push, median")
    right.plot(workers, [p.push_ms[1] for p in result.points], "s:", label="page push, p99")
    right.set_yscale("log")
    right.set_xlabel("simulated workers")
    right.set_ylabel("ms")
    right.legend()
    fig.suptitle("One server's ceiling")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
