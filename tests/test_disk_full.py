"""A full disk, for real: the data folder on a 20 MB tmpfs (mounted here as root, as CI runs), filled while a
slice is out, while audio arrives, and freed again. Nothing is left stuck, nothing answers a bare 500."""

from __future__ import annotations

import errno
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile

from tests.support import Server, Worker, corpus_file, wait_for, write_config
from tests.test_live_e2e import FakePage, chunks_of, load

JFK = "jfk_inaugural_excerpt.wav"


@pytest.fixture
def small_disk(tmp_path):
    """A 20 MB tmpfs as the server's data folder; unmounted afterwards."""
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(data)], check=True,
                   capture_output=True, timeout=30)
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False, timeout=30)


def fill(folder: Path, leave_mb: float = 0.0) -> Path:
    """Write a file until the disk holds only ``leave_mb`` free (0: until the disk refuses another byte)."""
    ballast = folder / "ballast"
    block = b"\0" * 65536
    with open(ballast, "wb", buffering=0) as f:
        try:
            while os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize > leave_mb * 2**20 + len(block):
                f.write(block)
            if leave_mb == 0:
                while True:
                    f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return ballast


def test_a_disk_filled_while_a_slice_is_out_holds_the_job_only_until_space_returns(tmp_path, small_disk):
    """The probe: one worker, the disk filled while its slice is out, then freed. The result that cannot be
    stored is not lost in between: the slice goes back to the queue (the worker is told why and is not left
    holding it), and once space returns the job finishes, its slice done once."""
    config = write_config(tmp_path / "c.toml", server={"min_free_disk_mb": 1.0})
    server = Server(tmp_path, config=config)
    worker = Worker(server, "slow", "--engine", "sleep", "--model", "0.4")  # 11 s of audio: 4.4 s out
    try:
        server.wait_workers(1)
        job_id = server.submit(corpus_file(JFK))
        wait_for(lambda: server.job(job_id)["slices"][0]["status"] == "leased", 30, "the slice to go out")
        ballast = fill(small_disk)
        wait_for(lambda: "the server's disk is full" in worker.log(), 30, "the result to meet the full disk")
        assert "was not stored" in server.log()
        job = server.job(job_id)
        assert job["status"] == "running" and job["slices"][0]["attempts"] <= 1, "the try is not counted"
        full = requests.post(f"{server.url}/api/jobs", files={"audio": ("x.wav", corpus_file(JFK).read_bytes())},
                             timeout=30)
        assert full.status_code == 507 and "the server's disk is full" in full.json()["error"]
        ballast.unlink()
        job = server.wait_job(job_id, timeout=60)
        assert job["status"] == "done" and job["slices"][0]["status"] == "done"
        assert job["slices"][0]["worker"] == "slow" and job["transcript"]
        assert server.workers()[0]["busy"] == 0
        assert "Traceback" not in server.log()
    finally:
        worker.stop()
        server.stop()


def test_uploads_and_live_audio_that_meet_a_full_disk_get_507(tmp_path, small_disk):
    """Below the free-space floor an upload is refused before it is read, with 507 and a sentence; one that
    passes the floor but fills the disk while it is converted (8-bit 8 kHz grows fourfold) gets 507 too and
    leaves no file behind; a live recording that reaches the floor ends with its audio kept and says why.
    The server keeps serving throughout."""
    server = Server(tmp_path, config=write_config(tmp_path / "c.toml", server={"min_free_disk_mb": 2.0}))
    try:
        page = FakePage(server)
        live = page.start()
        page.send(live, chunks_of(load(JFK))[:8])
        before_fill = sorted(p.name for p in (small_disk / "jobs").iterdir())

        grows = tmp_path / "grows.wav"  # 2.4 MB as sent, 9.6 MB once converted to 16-bit 16 kHz
        t = np.arange(8000 * 300) / 8000
        soundfile.write(grows, 0.3 * np.sin(2 * math.pi * 220 * t), 8000, subtype="PCM_U8")
        ballast = fill(small_disk, leave_mb=9.0)
        converted = server.upload(grows)
        assert converted.status_code == 507, converted.text
        assert "the server's disk is full" in converted.json()["error"]
        assert sorted(p.name for p in (small_disk / "jobs").iterdir()) == before_fill
        assert not list((small_disk / "uploads").iterdir())

        ballast.unlink()
        ballast = fill(small_disk, leave_mb=1.0)
        refused = server.upload(corpus_file(JFK))
        assert refused.status_code == 507
        assert refused.json()["error"].startswith("the server's disk is full: it keeps 2 MB free")
        stopped = page.call("live_chunk", {"job": live["job"], "key": live["key"], "seq": 8,
                                           "pcm": chunks_of(load(JFK))[8]})
        assert stopped["finished"] and "the server's disk is full" in stopped["error"] and stopped["ack"] == 7
        page.close()
        job = server.job(live["job"])
        assert job["recording"] is False and job["duration"] == 2.0

        ballast.unlink()
        assert server.upload(corpus_file(JFK)).status_code == 202
        assert "Traceback" not in server.log()
    finally:
        server.stop()
