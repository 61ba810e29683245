"""Live mode's limits with real sockets (``server/limits.py`` AudioPace, ``live_jobs.py``): pages that send
audio faster than they record it, or start recordings they never make, slow down only themselves."""

from __future__ import annotations

import socket
import statistics
import threading
import time

import numpy as np
import requests
import socketio

from tests.support import Server

RATE = 16000
SECOND = (np.random.default_rng(0).normal(0, 3000, RATE)).astype("<i2").tobytes()  # 1 s of noise


def page_from(server: Server, source: str = "127.0.0.1") -> socketio.Client:
    """A page's Socket.IO connection from ``source`` (any 127.x.y.z address reaches this machine)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10, source_address=(source, 0))
    page = socketio.Client(reconnection=False, websocket_extra_options={"socket": sock})
    page.connect(server.url, transports=["websocket"], wait_timeout=10)
    return page


def test_four_pages_flooding_live_audio_get_real_time_and_the_api_keeps_answering(tmp_path):
    """The probe: four live recordings each sending 1 s chunks as fast as they can, never waiting for an
    acknowledgement, for 8 s, while GET /api/jobs is timed. Each recording takes at most max_speed (4x) real
    time after its 30 s allowance; the chunks beyond what may wait are refused at once with a sentence; the API
    answers throughout (median well under a second; before this limit it was ~4 s and audio piled up at ~140x
    real time per page)."""
    server = Server(tmp_path)
    pages = [page_from(server) for _ in range(2)] + [page_from(server, "127.0.0.2") for _ in range(2)]
    try:
        lives = [page.call("live_start", {"name": f"flood{n}", "sample_rate": RATE}, timeout=10)
                 for n, page in enumerate(pages)]
        assert all("job" in live for live in lives), lives
        refusals: list[str] = []
        t0 = time.monotonic()
        stop = t0 + 8.0

        def flood(page: socketio.Client, live: dict) -> None:
            seq = 0
            while time.monotonic() < stop:
                page.emit("live_chunk", {"job": live["job"], "key": live["key"], "seq": seq, "pcm": SECOND},
                          callback=lambda answer: answer.get("error") and refusals.append(answer["error"]))
                seq += 1
                time.sleep(0.005)

        threads = [threading.Thread(target=flood, args=pair) for pair in zip(pages, lives, strict=True)]
        for thread in threads:
            thread.start()
        latencies = []
        while time.monotonic() < stop:
            began = time.monotonic()
            assert requests.get(f"{server.url}/api/jobs", timeout=30).ok
            latencies.append(time.monotonic() - began)
            time.sleep(0.2)
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - t0
        print(f"GET /api/jobs under the flood: median {statistics.median(latencies):.3f} s, "
              f"max {max(latencies):.3f} s over {len(latencies)} requests")
        assert statistics.median(latencies) < 1.0 and len(latencies) >= 10
        assert any("faster than 4 times real time" in r for r in refusals)
        time.sleep(6.0)  # chunks still waiting their turn (5 s at most) are taken
        for live in lives:
            stored = server.job(live["job"])["duration"]
            assert 30 <= stored <= 30 + 4 * (elapsed + 5) + 1, f"{stored} s of audio stored in {elapsed:.1f} s"
        assert "Traceback" not in server.log()
    finally:
        for page in pages:
            page.disconnect()
        server.stop()


def test_one_page_or_one_address_cannot_hold_every_live_recording(tmp_path):
    """The probe's page called live_start 100 times and so held every live session. Now: one recording per page
    connection, two per address; a page from another address can still record; a page that reconnects keeps
    its recording (resume moves it to the new connection)."""
    server = Server(tmp_path)
    greedy, second, third, elsewhere = (page_from(server), page_from(server), page_from(server),
                                        page_from(server, "127.0.0.2"))
    try:
        answers = [greedy.call("live_start", {"name": "x", "sample_rate": RATE}, timeout=10) for _ in range(100)]
        assert sum("job" in a for a in answers) == 1
        assert "this page is already recording live" in answers[-1]["error"]
        assert "job" in second.call("live_start", {"name": "y", "sample_rate": RATE}, timeout=10)
        refused = third.call("live_start", {"name": "z", "sample_rate": RATE}, timeout=10)
        assert "your address already records 2 live recordings" in refused["error"]
        own = elsewhere.call("live_start", {"name": "w", "sample_rate": RATE}, timeout=10)
        assert "job" in own
        greedy.disconnect()
        back = page_from(server)
        first = answers[0]
        assert back.call("live_resume", {"job": first["job"], "key": first["key"]}, timeout=10)["ack"] == -1
        assert "already recording" in back.call("live_start", {"name": "x", "sample_rate": RATE}, timeout=10)["error"]
        for page, live in ((back, first), (elsewhere, own)):
            assert page.call("live_stop", {"job": live["job"], "key": live["key"], "last_seq": -1},
                             timeout=10)["finished"]
        back.disconnect()
    finally:
        for page in (greedy, second, third, elsewhere):
            if page.connected:
                page.disconnect()
        server.stop()
