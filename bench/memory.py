"""Memory: the server's peak resident set while a 60-minute upload is processed, while a 2-hour MP3 is
decoded, while a file holding its whole recording in one block is decoded, and one real worker's.

The peak is the kernel's own high-water mark (``VmHWM`` in ``/proc/<pid>/status``), so no short spike is
missed between samples. The server gets the 60-minute WAV upload with four sleep-engine workers taking the
slices (its memory does not depend on the engine); a second server, started fresh so its high-water mark is
the MP3's alone, gets the 2-hour recording as a 128 kbit/s stereo 44.1 kHz MP3 (encoded from the workload with
PyAV, ``tests/media_files.py``) and decodes it with FFmpeg block by block; a third gets a Matroska file of
16 MB holding 70 minutes of 4 kHz 8-bit PCM in one block (one packet that decodes to one frame: the server
must resample it piece by piece, as 16 kHz float it is 16 times the file); the worker is a real faster-whisper
worker, as the speed comparison runs it, transcribing the ten-minute recording.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tests.media_files import ENCODINGS, encode_wav, one_block_mkv

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
    mp3_s: float = 0.0  # length of the MP3 the second server was given
    mp3_mb: float = 0.0  # its size
    server_mp3_idle_mb: float = 0.0
    server_mp3_peak_mb: float = 0.0
    block_s: float = 0.0  # length of the one-block Matroska file the third server was given
    block_mb: float = 0.0  # its size
    server_block_idle_mb: float = 0.0
    server_block_peak_mb: float = 0.0


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size so far, in MB (2**20 bytes)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc: peak memory can only be read on Linux")


def mp3_of(work: workload.Workload, repeat: int, log: Callable[[str], None] = print) -> tuple[Path, float]:
    """``work`` ``repeat`` times over as an MP3 beside it (made once, then reused), and its length in seconds."""
    path = work.path.with_name(f"{work.path.stem}-x{repeat}.mp3")
    if not path.exists():
        log(f"  encoding {work.seconds * repeat / 60:.0f} min of MP3 (once; kept as {path.name})")
        partial = path.with_name(path.stem + "-partial.mp3")
        encode_wav(work.path, partial, ENCODINGS["MP3"], repeat=repeat)
        partial.replace(path)
    return path, work.seconds * repeat


def run(tmp: Path, long_work: workload.Workload, short_work: workload.Workload,
        worker: Spec = CLUSTERS["ss-1x2"], mp3_repeat: int = 12, block_mb: float = 16.0,
        log: Callable[[str], None] = print) -> MemoryResult:
    """``mp3_repeat``: how many times ``short_work`` is repeated in the MP3 (12 × the 10-minute workload: 2 h);
    ``block_mb``: the size of the one-block Matroska file (``short_work`` looped, 4 kHz 8-bit: 4000 bytes a
    second)."""
    spec = Spec("4 sleep workers", workers=4, engine="sleep", model="0.002")
    with Cluster(spec, tmp / "server") as cluster:
        idle = peak_rss_mb(cluster.server.pid)
        job = cluster.run(long_work.path)
        peak = peak_rss_mb(cluster.server.pid)
    minutes = job.view["duration"] / 60
    log(f"  server: {idle:.0f} MB idle, {peak:.0f} MB peak with a {minutes:.0f}-minute upload")
    mp3, mp3_s = mp3_of(short_work, mp3_repeat, log)
    with Cluster(spec, tmp / "server-mp3") as cluster:
        mp3_idle = peak_rss_mb(cluster.server.pid)
        cluster.run(mp3, timeout_s=3600)
        mp3_peak = peak_rss_mb(cluster.server.pid)
    log(f"  server: {mp3_idle:.0f} MB idle, {mp3_peak:.0f} MB peak with a {mp3_s / 60:.0f}-minute MP3 "
        f"({mp3.stat().st_size / 2**20:.0f} MB)")
    block_s = block_mb * 2**20 / 4000
    block = one_block_mkv(short_work.path, tmp / "one-block.mkv", block_s)
    with Cluster(spec, tmp / "server-block") as cluster:
        block_idle = peak_rss_mb(cluster.server.pid)
        cluster.run(block, timeout_s=3600)
        block_peak = peak_rss_mb(cluster.server.pid)
    log(f"  server: {block_idle:.0f} MB idle, {block_peak:.0f} MB peak with a {block_s / 60:.0f}-minute "
        f"recording in one {block_mb:.0f} MB Matroska block")
    with Cluster(worker, tmp / "worker") as cluster:
        cluster.run(short_work.path)
        worker_peak = peak_rss_mb(cluster.workers[0].pid)
    log(f"  worker ({worker.label}): {worker_peak:.0f} MB peak")
    return MemoryResult(long_work.seconds, long_work.path.stat().st_size / 2**20, idle, peak, worker.label,
                        worker_peak, short_work.seconds, mp3_s, mp3.stat().st_size / 2**20, mp3_idle, mp3_peak,
                        block_s, block.stat().st_size / 2**20, block_idle, block_peak)
