"""Shared fixtures. The speech model is loaded once per session; servers and workers are real processes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import Server, Worker, corpus_file  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def socketio_encoder_as_found():
    """A server app built in the test process (``SocketIO(json=strict_json.SocketIOJSON)``) sets python-socketio's
    packet encoder for the whole process; each module gets back the encoder it found, so the next module's
    clients write packets as a real client does (the property tests' clients send bare ``Infinity`` and ``NaN``,
    as Python's ``json`` writes them and a hostile sender may)."""
    import socketio.packet
    found = socketio.packet.Packet.json
    yield
    socketio.packet.Packet.json = found


@pytest.fixture(scope="session")
def whisper_model():
    """The worker's default model (faster-whisper, tiny.en int8, 2 threads, a slot per thread), loaded once for
    the session."""
    from client.engines.faster_whisper_engine import FasterWhisperEngine
    return FasterWhisperEngine(threads=2, slots=2)


@pytest.fixture(scope="session")
def voice_embedder():
    """The ``--diarize`` worker's voice encoder (resemblyzer), loaded once for the session."""
    from client.diarize import VoiceEmbedder
    return VoiceEmbedder()


@pytest.fixture(scope="session")
def whole_file_text(whisper_model):
    """Text of a corpus recording transcribed whole by the same model (cached per file)."""
    from server.audio import PcmFile
    cache: dict[str, str] = {}

    def transcribe(name: str) -> str:
        if name not in cache:
            samples = PcmFile(corpus_file(name))[:].astype(np.float32) / 32768.0
            cache[name] = " ".join(s.text.strip() for s in whisper_model.transcribe(samples))
        return cache[name]
    return transcribe


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """One server and two real worker processes (one thread each), shared by the tests that only read."""
    tmp = tmp_path_factory.mktemp("cluster")
    server = Server(tmp)
    workers = [Worker(server, "alpha"), Worker(server, "beta")]
    server.wait_workers(2)
    yield server, workers
    for w in workers:
        w.stop()
    server.stop()


@pytest.fixture(scope="session")
def diarizing(tmp_path_factory):
    """A server and two real workers started with --diarize (one thread each), and a two-person conversation
    built from the corpus (LJ Speech sentences and the 2008 radio address, turns of 2–20 s), shared by the
    speaker tests: ``{"server", "conversation"}`` (``"job"`` once it has been transcribed)."""
    from bench import conversations

    tmp = tmp_path_factory.mktemp("diarizing")
    conversation = conversations.build("two-people", ["lj", "bush"], tmp / "mix", 100, seed=11)
    server = Server(tmp)
    workers = [Worker(server, name, "--diarize") for name in ("alpha", "beta")]
    try:
        server.wait_workers(2, timeout=240)
        yield {"server": server, "conversation": conversation, "tmp": tmp}
    finally:
        for w in workers:
            w.stop()
        server.stop()
