"""Memory: the server's peak resident set while a 60-minute upload is processed, and one real worker's.

The peak is the kernel's own high-water mark (``VmHWM`` in ``/proc/<pid>/status``), so no short spike is
missed between samples. The server gets the 60-minute upload with four sleep-engine workers taking the slices
(its memory does not depend on the engine); the worker is a real faster-whisper worker, as the speed
comparison runs it, transcribing the ten-minute recording.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import workload
from .cluster import Cluster, Spec
from .compare import CLUSTERS


@dataclass
class MemoryResult:
    upload_s: float  # length of the recording the server was given
    upload_mb: float  # size of the WAV uploaded
    server_idle_mb: float  # before the upload
    server_peak_mb: float  # high-water mark after the job
    worker_label: str
    worker_peak_mb: float
    worker_audio_s: float


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size so far, in MB (2**20 bytes)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc: peak memory can only be read on Linux")


def run(tmp: Path, long_work: workload.Workload, short_work: workload.Workload,
        worker: Spec = CLUSTERS["ss-1x2"], log: Callable[[str], None] = print) -> MemoryResult:
    spec = Spec("4 sleep workers", workers=4, engine="sleep", model="0.002")
    with Cluster(spec, tmp / "server") as cluster:
        idle = peak_rss_mb(cluster.server.pid)
        job = cluster.run(long_work.path)
        peak = peak_rss_mb(cluster.server.pid)
    minutes = job.view["duration"] / 60
    log(f"  server: {idle:.0f} MB idle, {peak:.0f} MB peak with a {minutes:.0f}-minute upload")
    with Cluster(worker, tmp / "worker") as cluster:
        cluster.run(short_work.path)
        worker_peak = peak_rss_mb(cluster.workers[0].pid)
    log(f"  worker ({worker.label}): {worker_peak:.0f} MB peak")
    return MemoryResult(long_work.seconds, long_work.path.stat().st_size / 2**20, idle, peak, worker.label,
                        worker_peak, short_work.seconds)
