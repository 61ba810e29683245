"""Upload bodies judged by their first bytes as they arrive, and refused without reading the rest.

A 100 MB file that is not audio should cost its sender a moment, not the whole transfer: the file part is
written through :class:`SniffedFile`, which looks at its first bytes (:func:`sniff.sniff`) and raises
:class:`NotAudio` as soon as they are no audio container; the request then answers 400 and
:func:`close_after_answer` makes the server close the connection instead of reading the body to its end.
"""

from __future__ import annotations

import socket
import time
from typing import IO, Any

from flask import Response, request

from . import sniff

#: After a refusal the server reads (and drops) at most this much more of the body, for at most this long, so
#: that a client still sending gets the answer before the connection closes (closing a socket with unread data
#: resets the connection, and the client may lose the answer): curl and browsers stop once they see it.
DRAIN_BYTES = 4 * 2**20
DRAIN_S = 2.0


class NotAudio(Exception):
    """A file part whose first bytes are no audio container; the message is the sentence for the user.

    Not a ValueError on purpose: Werkzeug's form parser silently drops those (the form would read as empty)."""


class SniffedFile:
    """A file part's temporary file that judges the part by its first bytes as they are written: it raises
    :class:`NotAudio` once :data:`sniff.HEAD_BYTES` have arrived (or the part ended sooner) and they are no
    audio container. Everything else goes to the file."""

    def __init__(self, file: IO[bytes]):
        self.file = file
        self.head = b""
        self.judged = False

    def write(self, data: bytes) -> int:
        if not self.judged:
            self.head += data[: sniff.HEAD_BYTES - len(self.head)]
            if len(self.head) >= sniff.HEAD_BYTES:
                self._judge()
        return self.file.write(data)

    def seek(self, *args: Any) -> int:
        if not self.judged:  # the parser rewinds the file when the part has ended: a short file is whole now
            self._judge()
        return self.file.seek(*args)

    def _judge(self) -> None:
        self.judged = True
        sniffed = sniff.sniff(self.head)
        if not sniffed.audio:
            self.file.close()  # a temporary file: closing it deletes it
            raise NotAudio(sniffed.refusal)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


def close_after_answer(response: Response) -> Response:
    """Send ``response``, then close the connection rather than read the rest of the request's body.

    Under eventlet's WSGI server the connection's socket is at hand: once the answer is out, the server reads
    what more arrives for a moment (:data:`DRAIN_S`, :data:`DRAIN_BYTES`) and shuts the socket, so eventlet
    finds the body ended. Elsewhere (Werkzeug's test client) ``Connection: close`` is all it can do.
    """
    response.headers["Connection"] = "close"
    body = request.environ.get("eventlet.input")
    sock = body.get_socket() if body is not None and hasattr(body, "get_socket") else None
    if sock is not None:
        response.call_on_close(lambda: _drain_and_shut(sock))
    return response


def _drain_and_shut(sock: socket.socket) -> None:
    deadline, drained = time.monotonic() + DRAIN_S, 0
    try:
        while drained < DRAIN_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                break
            drained += len(data)
    except OSError:  # a timeout, a reset, a TLS error: the connection is being dropped anyway
        pass
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
