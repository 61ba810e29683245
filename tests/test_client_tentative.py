"""The worker's side of tentative text (client/tentative.py and the decoder's loop in client/decoding.py), run
in this process with real engines and no server: requests and slices are put in as the Socket.IO events would
put them, the worker's own threads decode them, and the order they were decoded in is read from its log."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from client.connection import Worker
from client.engines import create_engine
from client.tentative import TentativeBox, TentativeWork
from server import audio
from tests.support import corpus_file

HARVARD = "osr_us_000_0034_harvard_list72.wav"


def wav(seconds: float) -> bytes:
    samples = audio.PcmFile(corpus_file(HARVARD))[: int(seconds * 16000)]
    return audio.wav_bytes(samples)


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def request(request_id: str, job: str, seconds: float) -> dict:
    return {"id": request_id, "job": job, "audio": wav(seconds), "prefix": ""}


def test_the_box_keeps_the_newest_request_of_each_recording():
    """A newer request of a recording replaces an older one not yet started (which is returned, dropped);
    recordings are taken in the order they first asked; a called-back request is dropped."""
    box = TentativeBox()
    first = TentativeWork("a1", "job-a", b"", "", 0)
    assert box.put(first) is None
    assert box.put(TentativeWork("b1", "job-b", b"", "", 0)) is None
    assert box.put(TentativeWork("a2", "job-a", b"", "", 0)) is first
    assert len(box) == 2
    assert box.cancel("b1") and not box.cancel("b1")
    assert box.take().id == "a2" and box.take() is None


def decoded_in_order(worker: Worker, events: list[tuple[str, dict]], lines: int) -> list[str]:
    """Put ``events`` in (before the worker's threads start, so the queue holds them all at once), run the
    worker's loop until ``lines`` slices and tentative decodes are logged; returns those log lines."""
    for event, data in events:
        {"slice": worker._on_slice, "tentative": worker._on_tentative}[event](data)
    done, seen = threading.Event(), []

    class Decodes(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if message.startswith(("slice ", "tentative ")) and " of audio in " in message:
                seen.append(message)
                if len(seen) >= lines:
                    done.set()

    handler = Decodes(logging.DEBUG)
    logger = logging.getLogger("scatterscribe.worker")
    logger.addHandler(handler)
    try:
        threading.Thread(target=worker.decoder.loop, daemon=True).start()
        assert done.wait(120), seen
        worker.stopped.wait(0.3)  # anything decoded after these would show now
    finally:
        worker.stopped.set()
        logger.removeHandler(handler)
    return seen


@pytest.mark.parametrize("engine", ["sleep", "faster-whisper"])
def test_slices_go_first_and_an_overtaken_request_is_dropped(engine, whisper_model, caplog):
    """A request, then a slice, then a newer request of the same recording, all waiting: the slice is decoded
    first, then only the newer request (the older one was overtaken); with a plain engine fed slice by slice
    (sleep) and a batch engine (faster-whisper) alike. The worker offers tentative decoding to the server
    because its engine can."""
    caplog.set_level(logging.DEBUG, logger="scatterscribe.worker")
    model = whisper_model if engine == "faster-whisper" else create_engine("sleep", model="0.01")
    worker = Worker("http://127.0.0.1:9", "token", model, "test", slots=1)
    assert worker.auth["tentative"] is True
    order = decoded_in_order(worker, [
        ("tentative", request("old", "job", 2.0)),
        ("slice", {"lease": "lease-1", "job": "job", "index": 0, "audio": wav(3.0)}),
        ("tentative", request("new", "job", 4.0)),
    ], lines=2)
    assert order[0].startswith("slice job/0: 3.0 s of audio"), order
    assert order[1].startswith("tentative job: 4.0 s of audio"), order
    assert any("dropped, overtaken" in r.getMessage() for r in caplog.records)
    assert len(order) == 2


def test_a_tentative_decode_is_abandoned_half_way_when_a_slice_comes(caplog):
    """A slice that arrives while a tentative decode runs makes the worker give the decode up at its next step
    and decode the slice; the abandoned request gets no answer."""
    caplog.set_level(logging.DEBUG, logger="scatterscribe.worker")
    worker = Worker("http://127.0.0.1:9", "token", create_engine("sleep", model="0.5"), "test", slots=1)
    worker._on_tentative(request("slow", "job", 4.0))  # 2 s of "decoding", asked half-way
    thread = threading.Thread(target=worker.decoder.loop, daemon=True)
    thread.start()
    try:
        time.sleep(0.3)
        worker._on_slice({"lease": "lease-1", "job": "job", "index": 0, "audio": wav(0.5)})
        assert wait_until(lambda: any(r.getMessage().startswith("slice job/0") for r in caplog.records), 10)
    finally:
        worker.stopped.set()
    messages = [r.getMessage() for r in caplog.records]
    assert any("abandoned" in m for m in messages), messages
    assert not any(m.startswith("tentative job: 4.0 s of audio in") for m in messages), messages
