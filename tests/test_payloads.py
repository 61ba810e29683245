"""Socket.IO payloads parsed at the edge (``server/payloads.py``), and JSON that is always JSON: a worker that
sends Infinity or a negative time gets its result taken as an error, and no answer of the server ever carries a
bare ``Infinity`` (the probe's case, with a real server and a hand-driven worker)."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server import payloads, strict_json
from server.payloads import PayloadError
from server.records import JobRecord, SliceRecord
from server.store import Store
from tests.support import RawWorker, Server, corpus_file, wait_for

JFK = "jfk_inaugural_excerpt.wav"
LEASE = "0123456789abcdef" * 2
JOB = "0123456789abcdef"


def strict_loads(text: str):
    """JSON.parse as browsers and node do it: NaN and Infinity are errors."""
    def refuse(token):
        raise ValueError(f"not JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def parse(data: dict, limit: int = 20_000) -> payloads.Result:
    return payloads.result(data, payloads.slice_ref(data), limit)


def base(**changes) -> dict:
    return {"lease": LEASE, "job": JOB, "index": 0, "text": "ask not", **changes}


def test_a_good_result_becomes_typed_values_words_included():
    """The Words contract: segments carry words and avg_logprob, which pass through unchanged."""
    word = {"start": 0.1, "end": 0.4, "word": "ask", "probability": 0.93}
    result = parse(base(segments=[{"start": 0.0, "end": 1.5, "text": "ask not", "words": [word],
                                   "avg_logprob": -0.21}], elapsed=0.8, batch=2, engine="faster-whisper"))
    assert result.ref.key == (JOB, 0) and result.elapsed_s == 0.8 and result.batch == 2
    assert result.segments[0].as_dict() == {"start": 0.0, "end": 1.5, "text": "ask not", "words": [word],
                                            "avg_logprob": -0.21}
    assert parse(base()).segments == () and parse(base()).engine is None


@pytest.mark.parametrize("changes, message", [
    ({"elapsed": math.inf}, "elapsed must be a number from 0 to 86400"),
    ({"elapsed": math.nan}, "elapsed must be a number"),
    ({"elapsed": -1e9}, "elapsed must be a number from 0"),
    ({"elapsed": "3"}, "elapsed must be a number"),
    ({"elapsed": 10**400}, "elapsed must be a number"),
    ({"batch": True}, "batch must be a whole number"),
    ({"batch": 2.0}, "batch must be a whole number"),
    ({"segments": [{"start": -1e9, "end": 1.0, "text": "x"}]}, "segments[0].start must be a number from 0"),
    ({"segments": [{"start": 0, "end": math.inf, "text": "x"}]}, "segments[0].end"),
    ({"segments": [{"text": "x", "avg_logprob": 0.5}]}, "segments[0].avg_logprob"),
    ({"segments": [{"text": "x", "words": [{"start": 0, "end": 1, "word": "x", "probability": 1.5}]}]},
     "segments[0].words[0].probability must be a number from 0 to 1"),
    ({"segments": [{"text": "x", "words": [{"start": 0, "end": 1, "word": "x" * 201, "probability": 1}]}]},
     "segments[0].words[0].word is over 200 characters"),
    ({"segments": [{"text": "x", "words": [{"start": 0, "end": 1, "probability": 1}]}]},
     "segments[0].words[0].word is missing"),
    ({"segments": "lots"}, "segments must be a list"),
    ({"segments": [[1, 2]]}, "segments[0] must be an object"),
    ({"text": "x" * 20_001}, "text is over 20000 characters"),
    ({"text": ["a"]}, "text must be a string"),
])
def test_a_result_with_a_bad_number_or_field_is_refused_by_name(changes, message):
    with pytest.raises(PayloadError) as refused:
        parse(base(**changes))
    assert message in str(refused.value)


def test_an_end_before_its_start_is_taken_as_the_start():
    """An engine's rounding, not an attack: the result is kept, the time put in order."""
    word = {"start": 1.2, "end": 1.1, "word": "x", "probability": 0.5}
    result = parse(base(segments=[{"start": 2.0, "end": 1.0, "text": "x", "words": [word]}]))
    assert result.segments[0].end == 2.0 and result.segments[0].words[0].end == 1.2


def test_counts_are_bounded_by_the_text_limit():
    """More segments than half the text limit, or more words than the text limit allows, are refused."""
    with pytest.raises(PayloadError, match="more than 5 segments"):
        parse(base(segments=[{"text": "a"}] * 6), limit=10)
    word = {"start": 0, "end": 0, "word": "a", "probability": 1}
    with pytest.raises(PayloadError, match="more words"):
        parse(base(segments=[{"text": "a", "words": [word] * 6}, {"text": "b", "words": [word] * 5}]), limit=10)


@pytest.mark.parametrize("data, message", [
    ({"lease": "x", "job": JOB, "index": 0}, "lease must be"),
    ({"lease": LEASE, "job": "../../etc", "index": 0}, "job must be a job id"),
    ({"lease": LEASE, "job": JOB, "index": -1}, "index must be a whole number"),
    ({"lease": LEASE, "job": JOB}, "index is missing"),
    ([1, 2, 3], "must be an object"),
])
def test_which_slice_a_message_is_about_must_be_exact(data, message):
    with pytest.raises(PayloadError, match=message):
        payloads.slice_ref(data)


def test_what_a_worker_announces_is_bounded():
    info = payloads.worker_info({"name": "a\x00b" * 100, "slots": 1000, "max_slice_s": 1e6, "engine": None})
    assert info.name == ("ab" * 100)[:64] and info.slots == 64 and info.max_slice_s == 3600 and \
        info.engine == "unknown"
    assert payloads.worker_info({"slots": 8, "parallel": 100}).parallel == 8  # never more than its slots
    assert payloads.worker_info({"slots": 8}).parallel == 8 and payloads.worker_info({"words": 1}).words is False
    for auth in ({"slots": 0}, {"slots": "2"}, {"max_slice_s": math.inf}, {"max_slice_s": 0.5}, {"name": {}},
                 {"parallel": 0}, {"parallel": 1.5}, {"parallel": True}):
        with pytest.raises(PayloadError):
            payloads.worker_info(auth)


def test_page_payloads_are_exact():
    assert payloads.watched_job({"job": JOB}) == JOB
    chunk = payloads.live_chunk({"job": JOB, "key": "k" * 24, "seq": 3, "pcm": b"\0\0"})
    assert chunk == payloads.LiveChunk(payloads.LiveRef(JOB, "k" * 24), 3, b"\0\0")
    bad = [(payloads.watched_job, {"job": "../x"}), (payloads.live_chunk, {"job": JOB, "key": "k", "seq": -1,
                                                                          "pcm": b"\0\0"}),
           (payloads.live_chunk, {"job": JOB, "key": "k", "seq": 0, "pcm": b"\0"}),
           (payloads.live_chunk, {"job": JOB, "key": "k" * 65, "seq": 0, "pcm": b"\0\0"}),
           (payloads.live_stop, {"job": JOB, "key": "k", "last_seq": True}),
           (payloads.live_start, {"name": "x", "sample_rate": 16000.0}),
           (payloads.live_start, {"name": 5, "sample_rate": 16000})]
    for parser, data in bad:
        with pytest.raises(PayloadError):
            parser(data)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20)
#: Payloads close to real ones, with any field replaced by anything: what a confused or hostile sender makes.
FIELDS = {"lease": st.just(LEASE), "job": st.just(JOB), "index": st.integers(-2, 3), "text": st.text(max_size=40),
          "elapsed": st.floats(), "batch": st.integers(-1, 70), "engine": JSONISH, "model": JSONISH,
          "segments": st.lists(st.fixed_dictionaries({}, optional={
              "start": st.floats(), "end": st.floats(), "text": st.text(max_size=20), "avg_logprob": st.floats(),
              "words": st.lists(st.fixed_dictionaries({}, optional={
                  "start": st.floats(), "end": st.floats(), "word": st.text(max_size=10),
                  "probability": st.floats()}), max_size=3)}), max_size=4)}
NEAR_RESULTS = st.fixed_dictionaries({}, optional={name: s | JSONISH for name, s in FIELDS.items()})


def finite_everywhere(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite_everywhere(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(finite_everywhere(v) for v in value)
    return True


@settings(max_examples=400, deadline=None)
@given(NEAR_RESULTS | JSONISH)
def test_any_result_payload_is_typed_and_finite_or_refused_with_a_sentence(data):
    """Whatever a worker sends as a result: PayloadError with a sentence, or a Result whose numbers are all
    finite, times from 0 and in order, and which serialises as strict JSON."""
    try:
        result = parse(data)
    except PayloadError as exc:
        assert str(exc) and str(exc)[0].islower()
        return
    segments = [seg.as_dict() for seg in result.segments]
    assert finite_everywhere([result.elapsed_s, segments])
    assert all(0 <= s["start"] <= s["end"] for s in segments)
    assert all(0 <= w["start"] <= w["end"] and 0 <= w["probability"] <= 1 for s in segments for w in s["words"])
    strict_loads(strict_json.dumps(segments))


@settings(max_examples=200, deadline=None)
@given(JSONISH | st.fixed_dictionaries({}, optional={"job": st.just(JOB) | JSONISH, "key": st.text(max_size=70),
                                                     "seq": st.integers(-3, 2**32) | JSONISH,
                                                     "pcm": st.binary(max_size=9) | JSONISH,
                                                     "last_seq": st.integers(-3, 3) | JSONISH,
                                                     "name": JSONISH, "sample_rate": JSONISH}))
def test_any_page_payload_is_typed_or_refused_with_a_sentence(data):
    for parser in (payloads.watched_job, payloads.live_start, payloads.live_ref, payloads.live_chunk,
                   payloads.live_stop):
        try:
            parser(data)
        except PayloadError as exc:
            assert str(exc)


@settings(max_examples=200, deadline=None)
@given(JSONISH | st.fixed_dictionaries({}, optional={"id": st.just(LEASE) | JSONISH, "job": st.just(JOB) | JSONISH,
                                                     "text": st.text(max_size=60) | JSONISH,
                                                     "elapsed": st.floats() | JSONISH}))
def test_any_tentative_answer_is_typed_or_refused_with_a_sentence(data):
    """A worker's tentative text: three bounded strings (the request's id, a job id, the text), or PayloadError
    with a sentence; a text over the limit is refused."""
    try:
        answer = payloads.tentative_text(data, 50)
    except PayloadError as exc:
        assert str(exc) and str(exc)[0].islower()
        return
    assert answer.id == LEASE and answer.job == JOB and isinstance(answer.text, str) and len(answer.text) <= 50
    assert math.isfinite(answer.elapsed_s) and 0 <= answer.elapsed_s
    assert payloads.tentative_text({"id": LEASE, "job": JOB, "text": "a gold ring"}, 50).text == "a gold ring"
    with pytest.raises(PayloadError, match="over 5 characters"):
        payloads.tentative_text({"id": LEASE, "job": JOB, "text": "a gold ring"}, 5)


def test_the_servers_json_never_holds_nan_or_infinity():
    """A non-finite number that reached a writer would fail loudly, not be written."""
    from flask import Flask

    with pytest.raises(ValueError):
        strict_json.dumps({"elapsed": math.inf})
    with pytest.raises(ValueError):
        strict_json.SocketIOJSON.dumps([math.nan])
    with pytest.raises(ValueError):
        strict_json.FlaskJSON(Flask(__name__)).dumps({"x": -math.inf})


def test_a_database_written_before_the_checks_is_cleaned_when_opened(tmp_path):
    """An older version stored Infinity and negative times as a worker sent them; opening the store makes the
    job readable as strict JSON again, times inside their slice."""
    path = tmp_path / "old.db"
    store = Store(path)
    store.create_job(JobRecord(id=JOB, name="x.wav", source="upload", created_at=1.0,
                               slices=[SliceRecord(index=0, start=10.0, end=20.0, pieces=[(10.0, 20.0)])]))
    store.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE slices SET status='done', elapsed=?, segments=? WHERE idx=0",
               [math.inf, json.dumps([{"start": -math.inf, "end": math.inf, "text": "x", "p": math.nan}])])
    db.execute("UPDATE jobs SET stats=?", [json.dumps({"decode_s": math.inf, "ok": 1})])
    db.commit()
    db.close()
    job = Store(path).get_job(JOB)
    assert job.slices[0].elapsed is None and job.stats == {"ok": 1}
    assert job.slices[0].segments == [{"start": 10.0, "end": 20.0, "text": "x"}]


def test_a_worker_sending_infinity_or_negative_times_cannot_make_a_job_unreadable(tmp_path):
    """The probe: a result with `elapsed: Infinity`, then one with a time of -1e9, each for a slice the worker
    holds. Each is taken as an error for the slice (it goes out again at once, the reason names the field);
    the job view, transcript.json and every push to a watching page stay strict JSON; a proper result is then
    stored as sent."""
    import socketio

    server = Server(tmp_path)
    raw = RawWorker(server, "infinite")
    page = socketio.Client()
    pushes: list[str] = []
    try:
        server.wait_workers(1)
        job_id = server.submit(corpus_file(JFK))
        page.on("job", lambda data: pushes.append(json.dumps(data)))
        page.connect(server.url, transports=["websocket"], wait_timeout=10)
        page.call("watch", {"job": job_id}, timeout=10)
        held = raw.wait_slice()
        assert raw.result(held, "ask not", elapsed=math.inf) == {"ok": True}  # sent as the token Infinity
        again = wait_for(lambda: len(raw.slices) >= 2 and raw.wait_slice(), 30, "the slice to come back")
        error = server.job(job_id)["slices"][0]["error"]
        assert "unusable result: elapsed must be a number from 0 to 86400" in error
        bad_time = [{"start": -1e9, "end": 1.0, "text": "ask not"}]
        assert raw.result(again, "ask not", segments=bad_time, elapsed=1.0) == {"ok": True}
        third = wait_for(lambda: len(raw.slices) >= 3 and raw.wait_slice(), 30, "the slice to come back again")
        assert "segments[0].start must be a number from 0" in server.job(job_id)["slices"][0]["error"]
        good = [{"start": 0.0, "end": 2.0, "text": "ask not", "words": [], "avg_logprob": -0.3}]
        assert raw.result(third, "ask not", segments=good, elapsed=0.5) == {"ok": True}
        job = server.wait_job(job_id, timeout=30)
        assert job["transcript"] == "ask not" and job["slices"][0]["elapsed"] == 0.5
        for path in (f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/transcript.json", "/api/jobs"):
            strict_loads(server.get(path).text)
        wait_for(lambda: pushes, 10, "a push to the watching page")
        for pushed in pushes:
            strict_loads(pushed)
        assert "Traceback" not in server.log()
    finally:
        for client in (raw.sio, page):
            if client.connected:
                client.disconnect()
        server.stop()
