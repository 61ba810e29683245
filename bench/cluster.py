"""Scatterscribe as a user runs it: a real server process and real worker processes on this machine, a job
uploaded over HTTP and watched over Socket.IO like the page does.

A job's time runs from the moment the upload starts to the moment the server marked the job done (its
``finished_at``: the last slice's text is stored and pushed to pages then). Both clocks are this machine's
``time.time()``, so nothing has to poll fast: the bench waits for the page push that says the job is done.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import socketio

from tests.support import ROOT, Server, Worker, write_config


@dataclass(frozen=True)
class Spec:
    """A cluster: ``workers`` worker processes of ``threads`` threads, each holding ``slots`` slices."""

    label: str
    workers: int
    threads: int = 1
    slots: int = 1
    engine: str = "faster-whisper"
    model: str = ""


@dataclass
class JobRun:
    """One job, measured."""

    wall_s: float  # upload start → job done
    upload_s: float  # upload start → server has the file (before decoding)
    view: dict[str, Any]  # the job as GET /api/jobs/<id> shows it when done
    server_cpu_s: float  # CPU time the server process used meanwhile
    worker_cpu_s: float  # CPU time all worker processes used meanwhile

    @property
    def transcript(self) -> str:
        return self.view["transcript"]

    @property
    def stats(self) -> dict[str, Any]:
        return self.view["stats"]


@dataclass
class Cluster:
    spec: Spec
    tmp: Path
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    root: Path = ROOT  # the code the server and workers run (another commit's, for bench/before.py)
    server: Server | None = None
    workers: list[Worker] = field(default_factory=list)

    def start(self, timeout_s: float = 120) -> "Cluster":
        self.tmp.mkdir(parents=True, exist_ok=True)
        config = write_config(self.tmp / "config.toml", **self.config) if self.config else None
        self.server = Server(self.tmp, config=config, cwd=self.root)
        extra = ["--slots", str(self.spec.slots), "--engine", self.spec.engine, "--log-level", "warning"]
        if self.spec.model:
            extra += ["--model", self.spec.model]
        self.workers = [Worker(self.server, f"w{n + 1}", *extra, threads=self.spec.threads, cwd=self.root)
                        for n in range(self.spec.workers)]
        self.server.wait_workers(self.spec.workers, timeout=timeout_s)
        self._page = _Page(self.server.url)
        return self

    def stop(self) -> None:
        if getattr(self, "_page", None) is not None:
            self._page.close()
        for worker in self.workers:
            worker.stop()
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def pids(self) -> tuple[int, list[int]]:
        return self.server.pid, [w.pid for w in self.workers]

    def run(self, path: Path, timeout_s: float = 900, accept_failed: bool = False) -> JobRun:
        """Upload ``path``, wait until the job is done, and measure it. A job that ended ``failed`` raises,
        unless ``accept_failed`` (the width part counts failed slices instead)."""
        server_proc = psutil.Process(self.server.pid)
        worker_procs = [psutil.Process(w.pid) for w in self.workers]
        cpu_server, cpu_workers = _cpu(server_proc), sum(map(_cpu, worker_procs))
        t0 = time.time()
        job_id = self.server.submit(path)
        view = self._page.wait_done(job_id, self.server, timeout_s)
        cpu_server, cpu_workers = _cpu(server_proc) - cpu_server, sum(map(_cpu, worker_procs)) - cpu_workers
        if view["status"] != "done" and not (accept_failed and view["status"] == "failed"):
            raise RuntimeError(f"job {job_id} ended {view['status']}: {view.get('error')}")
        stats = view["stats"]
        received = view["created_at"] - stats["decode_s"] - stats["split_s"]
        return JobRun(view["finished_at"] - t0, max(0.0, received - t0), view, cpu_server, cpu_workers)


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


class _Page:
    """A page's Socket.IO connection: it watches a job and learns at once when it is done."""

    def __init__(self, url: str):
        self.done: dict[str, threading.Event] = {}
        self.client = socketio.Client()
        self.client.on("job", self._on_job)
        self.client.connect(url, transports=["websocket"], wait_timeout=10)

    def _on_job(self, view: dict[str, Any]) -> None:
        if view.get("status") in ("done", "failed"):
            self.done.setdefault(view["id"], threading.Event()).set()

    def wait_done(self, job_id: str, server: Server, timeout_s: float) -> dict[str, Any]:
        event = self.done.setdefault(job_id, threading.Event())
        self.client.call("watch", {"job": job_id}, timeout=30)
        deadline = time.monotonic() + timeout_s
        while not event.wait(1.0):  # a push can only be missed before the watch began: look now and then
            if server.job(job_id)["status"] in ("done", "failed"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} not done after {timeout_s:.0f} s")
        return server.job(job_id)

    def close(self) -> None:
        self.client.disconnect()
