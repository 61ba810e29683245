"""Serving the app over eventlet: the one module that knows eventlet's WSGI server (``runtime.py`` picks it).

``eventlet.wsgi.server`` on its own (what ``socketio.run`` calls) serves at most 1,024 connections, from a pool
it blocks on when full, and waits forever for a request that never finishes its headers: about a thousand
half-sent requests stopped every page, API call and worker. Here eventlet's own per-connection protocol runs
under our accept loop, which never blocks on a pool, and:

* a request's line and headers must arrive within ``header_timeout_s`` (an idle keep-alive connection waiting
  for its next request is closed after as long);
* its body must keep coming: each read within ``socket_timeout_s``, the whole at ``min_upload_kb_s`` on
  average after the first ``socket_timeout_s`` (else 408);
* connections per client address and in all are capped (:class:`limits.ConnectionLimits`); connections still
  waiting for their headers make room first, so Socket.IO connections of pages and workers (WebSocket, an
  engine.io ping every 10 s, far inside ``socket_timeout_s``) are never starved by stragglers;
* WebSocket frames are unmasked four bytes at a time in numpy instead of eventlet's byte-by-byte generator,
  and read one per turn of the event loop, so a client flooding frames cannot keep the loop to itself;
* :meth:`Serving.stop` ends it cleanly (see ``__main__``).
"""

from __future__ import annotations

import itertools
import logging
import resource
import socket
import ssl
import time
import warnings
from typing import Any, Callable

# eventlet warns that it is deprecated on import; the user's card asks for it (see __main__).
warnings.filterwarnings("ignore", message=r"(?s)\s*Eventlet is deprecated")

import eventlet  # noqa: E402
import eventlet.hubs  # noqa: E402
import eventlet.websocket  # noqa: E402
import eventlet.wsgi  # noqa: E402
import greenlet  # noqa: E402
import numpy as np  # noqa: E402
from werkzeug.exceptions import RequestTimeout  # noqa: E402

from .config import ServerSettings  # noqa: E402
from .limits import ConnectionLimits  # noqa: E402

log = logging.getLogger("scatterscribe")


class _Stopped(Exception):
    """Thrown into the accept loop by :meth:`Serving.stop`."""


class HeaderTimeout(socket.timeout):
    """A request's headers did not arrive in time (eventlet closes the connection quietly on a timeout)."""


def fast_apply_mask(data: bytes, mask: tuple[int, ...], length: int | None = None, offset: int = 0) -> bytes:
    """What ``RFC6455WebSocket._apply_mask`` computes (each byte XOR the mask byte at its position), four bytes
    at a time in numpy rather than one at a time in Python, which holds the event loop far longer on a large
    frame."""
    n = len(data) if length is None else length
    key = bytes(mask[(offset + i) % 4] for i in range(4))
    out = np.frombuffer(data, np.uint8, n).copy()
    whole = n // 4 * 4
    out[:whole].view(np.uint32)[...] ^= np.frombuffer(key, np.uint32)[0]
    out[whole:] ^= np.frombuffer(key, np.uint8)[: n - whole]
    return out.tobytes()


eventlet.websocket.RFC6455WebSocket._apply_mask = staticmethod(fast_apply_mask)
_recv_frame = eventlet.websocket.RFC6455WebSocket._recv_frame


def _recv_frame_in_turn(self: Any, message: Any = None) -> Any:
    """One frame per turn of the event loop: a green socket whose data is already there never yields, so a
    client sending frames faster than they are handled kept the loop to itself and everyone else waited."""
    eventlet.sleep(0)
    return _recv_frame(self, message)


eventlet.websocket.RFC6455WebSocket._recv_frame = _recv_frame_in_turn


class _Protocol(eventlet.wsgi.HttpProtocol):
    """eventlet's HTTP protocol with a deadline on each request's line and headers, telling the connection
    limits when a connection is waiting for headers and when it is being served."""

    def handle_one_request(self):
        serving: Serving = self.server.serving
        conn = self.conn_state[3]
        serving.limits.idle(conn)
        self._deadline = eventlet.Timeout(serving.settings.header_timeout_s,
                                          HeaderTimeout("the request's headers did not arrive in time"))
        try:
            super().handle_one_request()
        finally:
            self._deadline.cancel()

    def parse_request(self):
        try:
            return super().parse_request()
        finally:
            self._deadline.cancel()
            self.server.serving.limits.busy(self.conn_state[3])


class _TimedInput:
    """A request body that must keep arriving: a read that waits longer than the socket's timeout, or a body
    still incomplete after its deadline, ends the request with 408."""

    def __init__(self, stream: Any, deadline: float):
        self.stream, self.deadline = stream, deadline

    def _read(self, method: Callable[..., bytes], *args: Any) -> Any:
        if time.monotonic() > self.deadline:
            raise RequestTimeout("the request's body arrived too slowly; send it again on a faster connection")
        try:
            return method(*args)
        except TimeoutError:
            raise RequestTimeout("the request's body stopped arriving; send it again") from None

    def read(self, *args: Any) -> bytes:
        return self._read(self.stream.read, *args)

    def readline(self, *args: Any) -> bytes:
        return self._read(self.stream.readline, *args)

    def readlines(self, *args: Any) -> list[bytes]:
        return self._read(self.stream.readlines, *args)

    def __iter__(self):
        return iter(self.readline, b"")

    def __getattr__(self, name: str) -> Any:  # eventlet's own extras (get_socket, ...)
        return getattr(self.stream, name)


class BodyDeadline:
    """WSGI middleware: a body of ``n`` bytes must arrive within ``socket_timeout_s + n / min_upload_kb_s``."""

    def __init__(self, app: Callable, settings: ServerSettings):
        self.app, self.settings = app, settings

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > 0:
            allowed = self.settings.socket_timeout_s + length / (self.settings.min_upload_kb_s * 1024)
            environ["wsgi.input"] = _TimedInput(environ["wsgi.input"], time.monotonic() + allowed)
        return self.app(environ, start_response)


class Serving:
    """The listening socket, the accept loop and every connection it serves."""

    def __init__(self, app: Callable, settings: ServerSettings, ssl_context: ssl.SSLContext | None = None):
        for name in ("header_timeout_s", "socket_timeout_s", "min_upload_kb_s"):
            if not getattr(settings, name) > 0:
                raise ValueError(f"[server] {name} must be positive")
        if settings.socket_timeout_s < 15:  # a quiet WebSocket hears from its page every 10 s (engine.io ping)
            raise ValueError("[server] socket_timeout_s must be at least 15 (Socket.IO pings every 10 s)")
        self.settings = settings
        self.limits = ConnectionLimits(settings.max_connections, settings.max_connections_per_client)
        self.ssl_context = ssl_context
        family, _, _, _, address = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)[0]
        self.listener = eventlet.listen(address, family)
        self.wsgi = eventlet.wsgi.Server(self.listener, self.listener.getsockname(), BodyDeadline(app, settings),
                                         log_output=settings.log_level == "debug", protocol=_Protocol,
                                         socket_timeout=settings.socket_timeout_s, debug=False)
        self.wsgi.serving = self
        self.connections: dict[int, eventlet.greenthread.GreenThread] = {}
        self._ids = itertools.count()
        self._loop: Any = None  # the green thread in serve_forever
        self.stopping = False
        _allow_open_files(settings.max_connections + 256)

    def serve_forever(self) -> None:
        """Accept connections until :meth:`stop`; each is served in its own green thread."""
        self._loop = greenlet.getcurrent()
        try:
            self._accept_until_stopped()
        finally:
            self.listener.close()

    def _accept_until_stopped(self) -> None:
        while not self.stopping:
            try:
                client, addr = self.listener.accept()
            except _Stopped:
                break
            except OSError as exc:
                if self.stopping:
                    break
                log.warning("accepting a connection failed: %s", exc)  # out of file descriptors, say
                eventlet.sleep(0.1)
                continue
            conn = next(self._ids)
            admission = self.limits.admit(conn, addr[0])
            for victim in admission.evict:
                thread = self.connections.pop(victim, None)
                if thread is not None:
                    thread.kill(HeaderTimeout("closed to make room for another connection"))
            if not admission.accepted:
                _refuse(client, admission.reason)
                continue
            client.settimeout(self.settings.socket_timeout_s)
            self.connections[conn] = eventlet.spawn(self._serve, conn, client, addr)

    def _serve(self, conn: int, client: socket.socket, addr: tuple) -> None:
        try:
            if self.ssl_context is not None:  # the handshake here, under the header deadline, not in accept
                with eventlet.Timeout(self.settings.header_timeout_s, HeaderTimeout("no TLS handshake in time")):
                    client = self.ssl_context.wrap_socket(client, server_side=True)
            self.wsgi.process_request([addr, client, eventlet.wsgi.STATE_IDLE, conn])
        except (OSError, ssl.SSLError):
            pass  # the client went away, or never finished a handshake: nothing to answer
        finally:
            self.limits.closed(conn)
            self.connections.pop(conn, None)
            try:
                client.close()
            except OSError:
                pass

    def stop(self) -> None:
        """Stop accepting: :meth:`serve_forever` returns (open connections are ended by :meth:`close_all`).
        It only schedules that, so a signal handler may call it wherever the event loop is, even in its hub."""
        if self.stopping:
            return
        self.stopping = True
        if self._loop is not None:
            eventlet.hubs.get_hub().schedule_call_global(0, self._loop.throw, _Stopped())

    def close_all(self) -> None:
        for thread in list(self.connections.values()):
            thread.kill()


def _refuse(client: socket.socket, reason: str) -> None:
    """Answer a connection over the limits with 503 and a sentence, without waiting for it, and close it."""
    body = ('{"error": "%s"}' % reason).encode()
    try:
        client.setblocking(False)
        client.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    b"Content-Length: %d\r\nRetry-After: 5\r\n\r\n%s" % (len(body), body))
    except OSError:
        pass
    finally:
        client.close()


def _allow_open_files(wanted: int) -> None:
    """Every connection is a file descriptor: raise this process's soft limit towards ``wanted`` (the hard limit
    permitting), so the connection caps, not a default of 1,024 descriptors, say how many are served."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
