"""The engines a worker can run: each on real speech where it can run here, each loaded once, and jobs routed
only to workers of the engine they ask for (real server and worker processes)."""

from __future__ import annotations

import inspect
import io
import json
import re
import sys
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from client.engines import ENGINES, create_engine
from client.engines.faster_whisper_engine import FasterWhisperEngine, bundled_model_path
from client.engines.google_engine import GoogleEngine
from client.engines.sleep_engine import SleepEngine
from client.engines.sphinx_engine import SphinxEngine
from client.engines.whisper_engine import WhisperEngine
from server import splitter
from server.audio import PcmFile
from tests.support import Server, Worker, corpus_file, manifest, wait_for, wer, write_config

ENGINE_CLASSES = [FasterWhisperEngine, WhisperEngine, SphinxEngine, GoogleEngine, SleepEngine]
#: Short, clearly spoken corpus recordings: Sphinx runs at only a few times real time.
CLEAR = ["pocketsphinx_goforward.wav", "librivox_sense_and_sensibility_ch01_0880.wav"]


def speech(name: str) -> np.ndarray:
    """A corpus recording as the worker hands it to an engine: float32, 16 kHz mono."""
    return PcmFile(corpus_file(name))[:].astype(np.float32) / 32768.0


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, attr: str) -> list[int]:
    """Wrap the real ``owner.attr`` (a model loader) so the test can count how often it runs; returns the
    counter (a one-element list)."""
    real, counter = getattr(owner, attr), [0]

    def counted(*args, **kwargs):
        counter[0] += 1
        return real(*args, **kwargs)
    monkeypatch.setattr(owner, attr, counted)
    return counter


def assert_well_formed(segments: list, duration_s: float | None = None) -> None:
    for seg in segments:
        assert isinstance(seg.text, str) and isinstance(seg.start, float) and isinstance(seg.end, float)
        assert 0.0 <= seg.start <= seg.end
        if duration_s is not None:
            assert seg.end <= duration_s + 0.05
    assert [s.start for s in segments] == sorted(s.start for s in segments)


# --- the contract -------------------------------------------------------------------------------------------


def test_every_engine_takes_the_same_keywords_and_has_the_same_transcribe_signature():
    """Every engine (the four real ones and the benchmarks' sleep engine) is registered under its own name,
    takes the worker's constructor keywords with the same defaults and offers the same transcribe(audio)
    signature, so the worker builds and calls any of them alike."""
    assert [cls.name for cls in ENGINE_CLASSES] == list(ENGINES)
    init = inspect.signature(FasterWhisperEngine.__init__)
    transcribe = inspect.signature(FasterWhisperEngine.transcribe)
    keywords = ["self", "model", "device", "compute_type", "threads", "beam_size", "slots"]
    assert list(init.parameters) == keywords
    for cls in ENGINE_CLASSES:
        assert inspect.signature(cls.__init__) == init, cls.name
        assert inspect.signature(cls.transcribe) == transcribe, cls.name
        assert inspect.isgeneratorfunction(cls.transcribe), f"{cls.name} must yield segments lazily"
        assert 0 < cls.max_slice_s <= 30.0


@pytest.mark.parametrize("engine, module, package", [
    ("faster-whisper", "faster_whisper", "faster-whisper"),
    ("whisper", "whisper", "openai-whisper"),
    ("sphinx", "pocketsphinx", "pocketsphinx"),
    ("sphinx", "speech_recognition", "SpeechRecognition"),
    ("google", "speech_recognition", "SpeechRecognition"),
])
def test_a_missing_library_says_which_package_to_install(monkeypatch, engine, module, package):
    """With its library not importable, an engine raises RuntimeError naming the pip package, chained to the
    ImportError."""
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    wanted = f"requires the {package} package \\(pip install .*{package}"
    with pytest.raises(RuntimeError, match=wanted) as info:
        create_engine(engine)
    assert isinstance(info.value.__cause__, ImportError)


def test_unknown_engine_and_bad_options_are_clear_errors(tmp_path):
    """An unknown engine name, a whisper model that is neither a name nor a file, cuda on a CPU-only torch, a
    second sphinx model and a google model that is no language tag each raise a ValueError/RuntimeError that
    says what is wrong."""
    with pytest.raises(ValueError, match="unknown engine 'vosk'; choose from: faster-whisper"):
        create_engine("vosk")
    with pytest.raises(ValueError, match="neither a checkpoint file nor one of tiny.en"):
        create_engine("whisper", model=str(tmp_path / "missing.pt"))
    with pytest.raises(RuntimeError, match="sees no CUDA device"):
        create_engine("whisper", device="cuda")
    with pytest.raises(ValueError, match="one model, 'en-US'"):
        create_engine("sphinx", model="de-DE-huge")
    with pytest.raises(ValueError, match="language tag"):
        create_engine("google", model="../../etc/passwd")


# --- each engine on its own ---------------------------------------------------------------------------------


def test_faster_whisper_finds_the_bundled_model_loads_once_and_transcribes_real_speech(monkeypatch):
    """With no --model the bundled tiny.en is found; the model is loaded once for any number of slices; the
    JFK excerpt and a LibriSpeech utterance come out with under 15 % WER; a model folder given as a string
    works too."""
    import faster_whisper
    loads = count_calls(monkeypatch, faster_whisper, "WhisperModel")
    engine = create_engine("faster-whisper", threads=1)
    assert (engine.name, engine.model, loads[0]) == ("faster-whisper", "tiny.en", 1)
    names = ["jfk_inaugural_excerpt.wav", "ls_dev-clean_2412-153948-0000.wav"]
    texts = []
    for name in names:
        audio = speech(name)
        segments = list(engine.transcribe(audio))
        assert_well_formed(segments, len(audio) / 16000)
        texts.append(" ".join(s.text.strip() for s in segments))
    assert loads[0] == 1, "a slice must never load the model again"
    assert wer([manifest()[n]["reference"] for n in names], texts) < 15.0
    # The worker's own path: a worker of 2 threads and 2 slots decodes its slices as a batch, dealt out to two
    # one-thread decoders; their copy of the model is loaded with the engine, not by the first batch. So is
    # it with one slot: a lone slice may be decoded on it (``faster_decoder``).
    loads[0] = 0
    assert create_engine("faster-whisper", threads=2, slots=1) and loads[0] == 2
    loads[0] = 0
    batched = create_engine("faster-whisper", threads=2, slots=2)
    assert loads[0] == 2
    results = batched.transcribe_batch([speech(n) for n in names])
    assert loads[0] == 2, "a batch must never load a model"
    assert wer([manifest()[n]["reference"] for n in names], [" ".join(s.text.strip() for s in r)
                                                             for r in results]) < 15.0
    from_folder = FasterWhisperEngine(model=str(bundled_model_path()), threads=1)
    assert from_folder.model == bundled_model_path().name
    assert " ".join(s.text.strip() for s in from_folder.transcribe(speech(names[0]))) == texts[0]


def test_sphinx_loads_its_decoders_once_and_gives_recognize_sphinx_text_on_real_speech(monkeypatch):
    """Sphinx builds one decoder per slot at start and none per slice; its text equals SpeechRecognition's
    recognize_sphinx on the same audio, its segments are timed inside the slice, each with its words (pocketsphinx's
    times and posterior probabilities, one per word of the text, in order, inside the segment), and on two clearly
    spoken recordings its pooled WER is under 25 % (Sphinx is far less accurate than Whisper in general)."""
    import pocketsphinx
    import speech_recognition as sr
    loads = count_calls(monkeypatch, pocketsphinx, "Decoder")
    engine = create_engine("sphinx", slots=2)
    assert (engine.name, engine.model, loads[0]) == ("sphinx", "en-US", 2)
    texts = {}
    for name in CLEAR:
        audio = speech(name)
        segments = list(engine.transcribe(audio))
        assert segments
        assert_well_formed(segments, len(audio) / 16000)
        texts[name] = " ".join(s.text for s in segments)
        for seg in segments:
            assert [w.word for w in seg.words] == seg.text.split() and seg.avg_logprob is None
            assert all(seg.start <= w.start <= w.end <= seg.end and 0.0 <= w.probability <= 1.0 for w in seg.words)
            assert [w.start for w in seg.words] == sorted(w.start for w in seg.words)
        assert any(w.probability < 1.0 for seg in segments for w in seg.words), "posteriors, not placeholders"
    assert loads[0] == 2, "a slice must never load the model again"
    for name in CLEAR:
        raw = PcmFile(corpus_file(name))[:].tobytes()
        assert texts[name] == sr.Recognizer().recognize_sphinx(sr.AudioData(raw, 16000, 2))
    assert wer([manifest()[n]["reference"] for n in CLEAR], [texts[n] for n in CLEAR]) < 25.0


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory):
    """An openai-whisper checkpoint with tiny dimensions and random weights (seeded), saved the way whisper's
    own checkpoints are: {"dims", "model_state_dict"}. It proves the loading and decoding paths offline; its
    words are noise."""
    import torch
    from whisper.model import ModelDimensions, Whisper
    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
                           n_vocab=51864, n_text_ctx=16, n_text_state=64, n_text_head=2, n_text_layer=1)
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.pt"
    torch.save({"dims": asdict(dims), "model_state_dict": Whisper(dims).state_dict()}, path)
    return path


def test_whisper_loads_a_checkpoint_once_and_decodes_arrays_to_well_formed_segments(monkeypatch,
                                                                                      random_checkpoint):
    """openai-whisper loads a checkpoint file once, sets torch's threads, and turns two slices given as numpy
    arrays (no ffmpeg) into non-empty lists of timed segments with str text."""
    import torch
    import whisper
    loads = count_calls(monkeypatch, whisper, "load_model")
    engine = create_engine("whisper", model=str(random_checkpoint), threads=1, beam_size=5)
    assert (engine.name, engine.model, loads[0]) == ("whisper", "tiny-random.pt", 1)
    assert torch.get_num_threads() == 1
    for name in ["pocketsphinx_goforward.wav", "timit_LDC93S1_sample.wav"]:
        segments = list(engine.transcribe(speech(name)))
        assert segments, "the decoding path must produce segments"
        assert_well_formed(segments)
    assert loads[0] == 1, "a slice must never load the model again"


# --- google, through a real server and worker ---------------------------------------------------------------


class FakeGoogle(BaseHTTPRequestHandler):
    """Stands in for Google's speech endpoint, which cannot be reached from the test machines: records each
    request and answers in Google's format with the number of samples it received."""

    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        import soundfile
        body = self.rfile.read(int(self.headers["Content-Length"]))
        samples, rate = soundfile.read(io.BytesIO(body), dtype="int16", always_2d=True)
        self.requests.append({"path": urlparse(self.path).path, "query": parse_qs(urlparse(self.path).query),
                              "content_type": self.headers["Content-Type"], "rate": rate,
                              "channels": samples.shape[1], "samples": samples.shape[0]})
        answer = {"result": [{"alternative": [{"transcript": f"heard {samples.shape[0]} samples",
                                               "confidence": 0.9}], "final": True}], "result_index": 0}
        payload = ('{"result":[]}\n' + json.dumps(answer) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_google():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeGoogle)
    FakeGoogle.requests = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/speech-api/v2/recognize", FakeGoogle.requests
    httpd.shutdown()


def slice_seconds(s: dict) -> float:
    return sum(b - a for a, b in s["pieces"])


def test_google_slices_fit_its_limit_and_its_answers_become_the_slice_text(tmp_path, monkeypatch,
                                                                          fake_google):
    """Google's endpoint is replaced by a local fake HTTP server (the real one needs internet). A real google
    worker announces 25 s; a 53 s recording that the default plan cuts into longer slices is cut so every
    slice fits; each slice reaches the fake as 16 kHz mono FLAC with the language and key, and the fake's
    answer is the slice's text."""
    url, seen = fake_google
    name = "librivox_shakespeare_sonnet_001.wav"
    default_plan = splitter.split_at_silence(PcmFile(corpus_file(name))[:])
    assert max(s.length for s in default_plan) / 16000 > GoogleEngine.max_slice_s  # the rule has work to do
    monkeypatch.setenv("SCATTERSCRIBE_GOOGLE_URL", url)
    monkeypatch.setenv("SCATTERSCRIBE_GOOGLE_KEY", "test-key")
    server = Server(tmp_path)
    worker = Worker(server, "goo", "--engine", "google")
    try:
        assert server.wait_workers(1)[0]["max_slice_s"] == GoogleEngine.max_slice_s
        job = server.wait_job(server.submit(corpus_file(name), engine="google"), timeout=60)
    finally:
        worker.stop()
        server.stop()
    assert job["status"] == "done" and len(job["slices"]) == len(seen) >= 3
    for s in job["slices"]:
        assert slice_seconds(s) <= GoogleEngine.max_slice_s + 1e-3
        assert (s["worker"], s["engine"], s["model"]) == ("goo", "google", "en-US")
        assert [seg["words"] for seg in s["segments"]] == [[]], "Google times nothing: one segment, no words"
        heard = int(re.fullmatch(r"heard (\d+) samples", s["text"]).group(1))
        assert abs(heard - slice_seconds(s) * 16000) <= 16 * 2 * len(s["pieces"])  # pieces are kept to 1 ms
    for request in seen:
        assert request["path"] == "/speech-api/v2/recognize"
        assert request["content_type"] == "audio/x-flac; rate=16000"
        assert (request["rate"], request["channels"]) == (16000, 1)
        assert request["query"]["lang"] == ["en-US"] and request["query"]["key"] == ["test-key"]
    assert sorted(r["samples"] for r in seen) == sorted(int(s["text"].split()[1]) for s in job["slices"])


# --- routing ------------------------------------------------------------------------------------------------


def test_jobs_go_only_to_workers_of_the_engine_or_model_they_ask_for(tmp_path):
    """With a faster-whisper worker idle, a job asking for sphinx waits (and says so) until a sphinx worker
    connects, which then does every slice; a whisper-family job then goes only to the faster-whisper worker;
    jobs asking for an engine or model nobody runs say waiting_for_workers."""
    name = "ls_dev-clean_1272-141231-0002.wav"  # 13 s: two slices at a 10 s maximum
    server = Server(tmp_path, config=write_config(tmp_path / "config.toml", splitter={"max_slice_s": 10.0}))
    workers = [Worker(server, "fw")]
    try:
        server.wait_workers(1)
        sphinx_job = server.job(server.submit(corpus_file(name), engine="sphinx"))
        assert sphinx_job["waiting_for_workers"] and sphinx_job["status"] == "queued"
        assert len(sphinx_job["slices"]) >= 2 and {s["status"] for s in sphinx_job["slices"]} == {"queued"}
        workers.append(Worker(server, "sx", "--engine", "sphinx"))
        done = server.wait_job(sphinx_job["id"])
        assert not done["waiting_for_workers"] and done["status"] == "done" and done["transcript"]
        assert {(s["worker"], s["engine"], s["model"]) for s in done["slices"]} == {("sx", "sphinx", "en-US")}

        family = server.wait_job(server.submit(corpus_file(name), engine="whisper-family"))
        assert family["status"] == "done"
        assert {(s["worker"], s["engine"], s["model"]) for s in family["slices"]} == \
            {("fw", "faster-whisper", "tiny.en")}
        nobody = [{"engine": "google"}, {"model": "base.en"}, {"engine": "whisper-family", "model": "en-US"}]
        for form in nobody:
            view = server.job(server.submit(corpus_file(name), **form))
            assert view["waiting_for_workers"] and view["status"] == "queued", form
        served = server.job(server.submit(corpus_file(name), engine="sphinx", model="en-US"))
        assert not served["waiting_for_workers"]
        wait_for(lambda: server.job(served["id"])["status"] == "done", 120, "the en-US sphinx job")
    finally:
        for w in workers:
            w.stop()
        server.stop()
    assert workers[1].log().count("loaded sphinx en-US") == 1  # one load for all its slices
