"""Many simulated workers and pages in one process, for the ceiling bench (``bench/ceiling.py``).

``python -m bench.swarm --url URL --token T --workers N --pages P --rate R --out FILE``

Each simulated worker is a python-socketio ``AsyncClient`` on ``/worker`` that announces one slot, answers every
slice after sleeping ``rate`` × its audio seconds (no model), and heartbeats like a real worker. Each simulated page
connects to ``/`` and watches one job, as a browser tab does. Everything they see is timestamped with this
machine's ``time.time()`` (the server's clock too), and written to ``--out`` as JSON when the process gets SIGTERM
or SIGINT:

* ``results``: when each result was sent and acknowledged;
* ``handouts``: for a worker that got its next slice, the time from sending a result to receiving that slice;
* ``pushes``: for a page, the time from a slice being stored (its ``finished_at``) to the page holding it;
* ``errors``: when each failed call was made, and why (a result sent while the swarm disconnects at its end
  fails too: the orchestrator counts only those inside its window).

The process prints ``connected N`` once all its clients are connected, so the orchestrator knows when the steady
state begins.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import Any

import socketio

WORKER = "/worker"


class Tally:
    def __init__(self) -> None:
        self.results: list[tuple[float, float]] = []  # (sent, acknowledged)
        self.handouts: list[tuple[float, float]] = []  # (result sent, next slice received)
        self.pushes: list[tuple[float, float]] = []  # (page received, latency)
        self.errors: list[tuple[float, str]] = []  # (when, what)


async def worker(n: int, args: argparse.Namespace, tally: Tally, ready: asyncio.Event) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    sent_at: list[float] = []

    async def on_slice(data: dict[str, Any]) -> None:
        now = time.time()
        if sent_at:
            tally.handouts.append((sent_at.pop(), now))
        await asyncio.sleep(args.rate * float(data["seconds"]))
        answer = {"lease": data["lease"], "job": data["job"], "index": data["index"], "text": "simulated words",
                  "segments": [{"start": 0.0, "end": float(data["seconds"]), "text": "simulated words"}],
                  "elapsed": args.rate * float(data["seconds"]), "batch": 1, "engine": "sim", "model": "sim"}
        t0 = time.time()
        sent_at[:] = [t0]
        try:
            await sio.call("result", answer, namespace=WORKER, timeout=120)
            tally.results.append((t0, time.time()))
        except Exception as exc:  # noqa: BLE001 - counted and reported, the swarm goes on
            tally.errors.append((time.time(), f"result: {type(exc).__name__}: {exc}"))

    async def heartbeat() -> None:
        while sio.connected:
            await asyncio.sleep(args.heartbeat_s)
            try:
                await sio.emit("heartbeat", {}, namespace=WORKER)
            except Exception:  # noqa: BLE001 - the connection is gone; the loop ends
                return

    sio.on("slice", on_slice, namespace=WORKER)
    auth = {"token": args.token, "name": f"sim-{args.prefix}-{n}", "engine": "sim", "model": "sim", "slots": 1,
            "max_slice_s": 30.0}
    await sio.connect(args.url, auth=auth, namespaces=[WORKER], transports=["websocket"], wait_timeout=60)
    asyncio.get_running_loop().create_task(heartbeat())
    return sio


async def page(n: int, args: argparse.Namespace, tally: Tally) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    seen: set[int] = set()
    job = args.jobs[n % len(args.jobs)]

    async def on_job(view: dict[str, Any]) -> None:
        now = time.time()
        if view.get("id") != job:
            return
        for s in view.get("slices", []):
            if s.get("status") == "done" and s["index"] not in seen and s.get("finished_at"):
                seen.add(s["index"])
                tally.pushes.append((now, now - float(s["finished_at"])))

    sio.on("job", on_job)
    await sio.connect(args.url, transports=["websocket"], wait_timeout=60)
    view = await sio.call("watch", {"job": job}, timeout=120)
    for s in (view or {}).get("slices", []):
        if s.get("status") == "done":
            seen.add(s["index"])
    return sio


async def main_async(args: argparse.Namespace) -> Tally:
    tally = Tally()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    clients = []
    # Connect in small waves: a thousand handshakes at once is a test of the kernel's backlog, not of us.
    for first in range(0, args.workers, 25):
        batch = range(first, min(args.workers, first + 25))
        clients += await asyncio.gather(*(worker(n, args, tally, stop) for n in batch))
    for first in range(0, args.pages, 25):
        batch = range(first, min(args.pages, first + 25))
        clients += await asyncio.gather(*(page(n, args, tally) for n in batch))
    print(f"connected {len(clients)}", flush=True)
    await stop.wait()
    await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
    return tally


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.swarm")
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--pages", type=int, default=0)
    p.add_argument("--jobs", nargs="*", default=[], help="job ids the pages watch (round robin)")
    p.add_argument("--rate", type=float, default=1.0, help="seconds slept per second of slice audio")
    p.add_argument("--heartbeat-s", type=float, default=5.0)
    p.add_argument("--prefix", default="0", help="distinguishes this process's worker names")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    tally = asyncio.run(main_async(args))
    with open(args.out, "w") as f:
        json.dump({"results": tally.results, "handouts": tally.handouts, "pushes": tally.pushes,
                   "errors": tally.errors[:50], "error_times": [t for t, _ in tally.errors]}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
