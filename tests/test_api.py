"""Uploads against a real server: a large upload never stalls everyone else, and bodies without a length are
refused with a message that says so."""

from __future__ import annotations

import http.client
import os
import struct
import threading
import time
from pathlib import Path

import socketio

from tests.support import TOKEN, Server

UPLOAD_MB = 200
#: Longest a request or heartbeat may wait while the large upload is stored (generous: 2 shared cores).
BOUND_S = 1.5


def multipart_file(path: Path, size: int, boundary: str = "scatterscribe-test-boundary") -> str:
    """A multipart/form-data body on disk holding ``size`` bytes in the field 'audio' (never all in memory).
    The bytes begin as a WAV (so the server stores them all) whose header promises more samples than follow,
    so the server refuses it once it is stored: this measures storing, not decoding."""
    block = os.urandom(1 << 20)
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + \
        struct.pack("<I", 0xFFFFFFF0)
    with open(path, "wb") as f:
        f.write(f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="big.wav"\r\n'
                f"Content-Type: audio/wav\r\n\r\n".encode() + header)
        for _ in range(size >> 20):
            f.write(block)
        f.write(f"\r\n--{boundary}--\r\n".encode())
    return boundary


def paced(f, chunk: int = 1 << 20, pause_s: float = 0.01):
    """The file in 1 MB pieces with a pause after each, as a network delivers it (about 2 s for 200 MB): the
    server parses and stores the body while it arrives, and the polls have a window to land in."""
    while piece := f.read(chunk):
        yield piece
        time.sleep(pause_s)


def test_a_large_upload_does_not_stall_requests_or_heartbeats(tmp_path):
    """While a ~200 MB upload arrives and is stored, polling /api/workers and a worker's heartbeat each get an
    answer within BOUND_S every time (the upload is written where the job reads it, as it arrives: there is no
    second copy of it to make afterwards)."""
    body = tmp_path / "body"
    boundary = multipart_file(body, UPLOAD_MB << 20)
    server = Server(tmp_path)
    worker = socketio.Client(reconnection=False)
    worker.connect(server.url, namespaces=["/worker"], transports=["websocket"], wait_timeout=10,
                   auth={"token": TOKEN, "name": "watcher"})
    waits: list[tuple[str, float]] = []
    uploading = threading.Event()
    finished = threading.Event()
    answer: dict = {}

    def upload():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        try:
            with open(body, "rb") as f:
                uploading.set()
                conn.request("POST", "/api/jobs", body=paced(f), headers={
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Content-Length": str(body.stat().st_size)})
                response = conn.getresponse()
                answer.update(status=response.status, body=response.read())
        finally:
            conn.close()
            finished.set()

    def poll():
        import requests
        session = requests.Session()
        while not finished.is_set():
            t0 = time.monotonic()
            assert session.get(f"{server.url}/api/workers", timeout=30).ok
            waits.append(("http", time.monotonic() - t0))
            t0 = time.monotonic()
            assert worker.call("heartbeat", {}, namespace="/worker", timeout=30) == {"ok": True}
            waits.append(("heartbeat", time.monotonic() - t0))
            time.sleep(0.05)

    try:
        sender = threading.Thread(target=upload)
        sender.start()
        assert uploading.wait(10)
        poll()
        sender.join(timeout=120)
        assert not sender.is_alive()
        assert answer["status"] == 400 and b"it is truncated" in answer["body"], answer
        slowest = max(waits, key=lambda w: w[1])
        assert slowest[1] < BOUND_S, f"a {slowest[0]} waited {slowest[1]:.2f} s during the upload"
        assert len(waits) >= 6, f"too few polls to say anything: {waits}"
        assert list((server.data_dir / "uploads").iterdir()) == []  # the refused upload is not kept
    finally:
        worker.disconnect()
        server.stop()
