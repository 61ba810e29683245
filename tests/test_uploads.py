"""Upload bodies judged by their first bytes (server/uploads.py), against a real server over a real socket."""

from __future__ import annotations

import io
import json
import select
import socket
import time

import pytest

from server import sniff
from server.uploads import NotAudio, SniffedFile
from tests.support import Server

BODY_MB = 100


def read_answer(buffer: bytes) -> tuple[int, dict] | None:
    """The status and JSON body of a complete HTTP answer in ``buffer``; None while it is incomplete."""
    head, sep, body = buffer.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:]) if k.lower() == "content-length")
    return (int(lines[0].split()[1]), json.loads(body[:length])) if len(body) >= length else None


def test_a_100_mb_body_that_is_no_audio_is_refused_before_it_is_all_sent(tmp_path):
    """A 100 MB ZIP sent as the 'audio' file, like curl sends it (watching for an answer while it sends): the
    400 naming a ZIP archive arrives while most of the body is still unsent, the server then closes the
    connection instead of reading the rest, keeps no part of the file and goes on serving."""
    server = Server(tmp_path)
    boundary = "b0undary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="talk.mp3"\r\n'
            f"Content-Type: audio/mpeg\r\n\r\n").encode() + b"PK\x03\x04"
    total = len(head) + (BODY_MB << 20)
    request = (f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {total}\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()
    chunk = bytes(256 << 10)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(request + head)
        sent, received, answer, sent_at_answer = len(head), b"", None, None
        sock.setblocking(False)
        deadline = time.monotonic() + 60
        closed = False
        while time.monotonic() < deadline and not closed and sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                closed = not data
                received += data
                if answer is None and (answer := read_answer(received)) is not None:
                    sent_at_answer = sent
            if writable and not closed:
                try:
                    sent += sock.send(chunk[: total - sent])
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
        assert answer is not None, f"no answer after sending {sent >> 20} MB"
        status, body = answer
        assert status == 400 and "ZIP archive" in body["error"], body
        assert sent_at_answer < total // 4, f"the answer came only after {sent_at_answer >> 20} MB"
        assert closed and sent < total // 2, f"the server read {sent >> 20} MB of a body it had refused"
    finally:
        sock.close()
    assert server.get("/api/workers").ok
    assert list((server.data_dir / "uploads").iterdir()) == []
    server.stop()


@pytest.mark.parametrize("content, audio", [(b"ID3\x04" + bytes(600), True), (b"%PDF-1.7\n" + bytes(600), False),
                                            (b"RIFF", True), (b"", False)])
def test_a_sniffed_file_judges_its_first_bytes_however_they_arrive(content, audio):
    """The verdict is the same whether the first bytes come in one write or byte by byte, and a file shorter
    than HEAD_BYTES is judged when the parser rewinds it."""
    for step in (len(content) or 1, 1):
        target = SniffedFile(io.BytesIO())
        try:
            for i in range(0, len(content), step):
                target.write(content[i:i + step])
            target.seek(0)
            judged_audio = True
        except NotAudio as exc:
            judged_audio = False
            assert str(exc) == sniff.sniff(content[: sniff.HEAD_BYTES]).refusal
        assert judged_audio == audio
