"""Connection floods and slow clients, with real sockets against a real server (``server/serving.py``,
``server/limits.py``): half-sent requests, stalled bodies and too many connections from one address never stop
pages, the API or workers. Every flood is bounded in count and every wait in time."""

from __future__ import annotations

import resource
import socket
import time

import psutil
import requests
import socketio
from hypothesis import given, settings
from hypothesis import strategies as st

from server.serving import fast_apply_mask
from tests.support import RawWorker, Server, wait_for, write_config

HALF_REQUEST = b"GET /api/jobs HTTP/1.1\r\nHost: x\r\n"  # what the probe sent: no blank line, never finished


def open_files(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def connect(server: Server, source: str = "127.0.0.1", timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout, source_address=(source, 0))


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (EOF, reset, or an answer followed by EOF)."""
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
        return data == b"" or b"Connection: close" in data
    except BlockingIOError:
        return False
    except OSError:
        return True


def served(server: Server) -> bool:
    """A page's Socket.IO connection, an API call and a worker connection all work, each within 10 s."""
    t0 = time.monotonic()
    assert requests.get(f"{server.url}/api/jobs", timeout=10).ok
    page = socketio.Client(reconnection=False)
    page.connect(server.url, transports=["websocket"], wait_timeout=10)
    name = f"w{time.monotonic_ns()}"
    worker = RawWorker(server, name)
    try:
        assert page.call("watch", {"job": "0123456789abcdef"}, timeout=10) is None
        assert wait_for(lambda: any(w["name"] == name for w in server.workers()), 10, "the worker")
    finally:
        page.disconnect()
        worker.sio.disconnect()
    return time.monotonic() - t0 < 30


def test_a_thousand_half_sent_requests_stop_nobody(tmp_path):
    """The probe: 1,100 connections from one address, each sending the start of `GET /api/jobs` and nothing
    more. While they are open, pages, the API and workers are served at once (stragglers make room); the server
    never holds more than its per-address cap; within header_timeout_s every straggler is closed."""
    open_files(2000)
    server = Server(tmp_path)
    flood: list[socket.socket] = []
    try:
        for _ in range(1100):
            try:
                sock = connect(server)
                sock.sendall(HALF_REQUEST)
            except OSError:
                break  # refused outright is fine too
            flood.append(sock)
        assert len(flood) == 1100
        assert served(server)
        held = [c for c in psutil.Process(server.pid).net_connections(kind="tcp")
                if c.status == psutil.CONN_ESTABLISHED]
        assert len(held) <= 256 + 5, f"the server holds {len(held)} connections from one address"
        deadline = 10.0 + 5.0  # header_timeout_s and some room for a loaded machine
        wait_for(lambda: all(closed_by_server(s) for s in flood), deadline, "every straggler to be closed",
                 interval=0.5)
        assert served(server)
        assert "Traceback" not in server.log()
    finally:
        for sock in flood:
            sock.close()
        server.stop()


def test_slow_clients_and_one_greedy_address(tmp_path):
    """Headers sent a byte at a time are cut off after header_timeout_s; a body that stops coming gets 408 after
    socket_timeout_s; one address holding its cap of stalled uploads gets 503 with a sentence for more, while
    another address is served and a page and a worker stay connected through all of it (their WebSockets are
    quiet for up to Socket.IO's 10 s ping interval, well inside socket_timeout_s)."""
    config = write_config(tmp_path / "c.toml", server={"header_timeout_s": 2.0, "socket_timeout_s": 15.0,
                                                       "max_connections_per_client": 40})
    server = Server(tmp_path, config=config)
    page = socketio.Client(reconnection=False)
    worker = None
    greedy: list[socket.socket] = []
    try:
        page.connect(server.url, transports=["websocket"], wait_timeout=10)
        worker = RawWorker(server, "steady")
        body = b"--b\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"a.wav\"\r\n\r\nRIFF"
        stalled = (b"POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                   b"Content-Length: 100000\r\n\r\n" + body)
        for _ in range(40):
            sock = connect(server, "127.0.0.2", timeout=30)
            sock.sendall(stalled)
            greedy.append(sock)
        time.sleep(0.5)  # let the server read their headers: they are being served, not stragglers
        extra = connect(server, "127.0.0.2")
        answer = extra.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 503") and "at most 40 connections from one address" in answer
        extra.close()
        assert requests.get(f"{server.url}/api/jobs", timeout=10).ok  # another address is served

        trickle = connect(server, "127.0.0.3")
        t0 = time.monotonic()
        cut_off = None
        for byte in (HALF_REQUEST * 10)[:40]:  # 8 s of headers at most, a byte every 0.2 s
            try:
                trickle.setblocking(True)
                trickle.send(bytes([byte]))
            except OSError:
                cut_off = time.monotonic() - t0
                break
            time.sleep(0.2)
            if closed_by_server(trickle):
                cut_off = time.monotonic() - t0
                break
        trickle.close()
        assert cut_off is not None and 1.5 < cut_off < 2.0 + 3.0, f"headers a byte at a time: cut off at {cut_off}"

        answers = []
        for sock in greedy:
            sock.settimeout(30)
            answers.append(sock.recv(4096).decode())
        assert all(a.startswith("HTTP/1.1 408") and "stopped arriving" in a for a in answers), answers[0]
        assert page.connected and worker.sio.connected
        assert [w["name"] for w in server.workers()] == ["steady"]
        assert "Traceback" not in server.log()
    finally:
        for sock in greedy:
            sock.close()
        if worker is not None and worker.sio.connected:
            worker.sio.disconnect()
        if page.connected:
            page.disconnect()
        server.stop()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.tuples(*[st.integers(0, 255)] * 4), st.integers(0, 7))
def test_the_fast_websocket_unmasking_is_eventlets_own(data, mask, offset):
    """Byte for byte what eventlet's generator computes, at any offset into a frame."""
    slow = b"".join(bytes((data[i] ^ mask[(offset + i) % 4],)) for i in range(len(data)))
    assert fast_apply_mask(data, mask, len(data), offset) == slow
