"""Corrections (server/corrections.py) and the other edits a person makes to a job through the API: a segment's
text (kept with the worker's original, restorable, refused when stale), a job's name, a slice transcribed
again (server/redo.py), and the search of past jobs.

The app runs in process (Flask's test client); the jobs are stored as a worker would have left them, since
these routes only read and write the store; where a slice is transcribed again, a worker is only an id in the
scheduler and its answers are the calls its events make. The real workers' path through them is in
tests/test_redo.py and tests/test_job_page.py.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder, run_wsgi_app

from server import audio, corrections, payloads, redo
from server.app import create_app
from server.config import ServerSettings, Settings
from server.records import JobRecord, SliceRecord
from server.scheduler import Requirement, WorkerInfo

JOB = "0123456789abcdef"
OTHER = "fedcba9876543210"


def done_slice(index: int, texts: list[str]) -> SliceRecord:
    start = 10.0 * index
    segments = [{"start": start + 2 * n, "end": start + 2 * n + 1.5, "text": t,
                 "words": [], "avg_logprob": None} for n, t in enumerate(texts)]
    return SliceRecord(index, start, start + 9, [(start, start + 9)], status="done", text=" ".join(texts),
                       segments=segments, worker="w", engine="faster-whisper", model="tiny.en")


def make_jobs(store) -> None:
    store.create_job(JobRecord(JOB, "meeting.wav", "upload", 1000.0, status="done", duration=30.0, slices=[
        done_slice(0, ["Hello there.", "The president frequencies."]),
        done_slice(1, ["Second slice speaks."]),
        SliceRecord(2, 20.0, 29.0, [(20.0, 29.0)], status="failed", error="boom"),
    ]))
    store.create_job(JobRecord(OTHER, "lecture_100%.wav", "upload", 2000.0, status="done", duration=10.0,
                               slices=[done_slice(0, ["Nothing about meetings_here."])]))


@pytest.fixture
def app(tmp_path):
    flask_app, _ = create_app(Settings(server=ServerSettings(data_dir=str(tmp_path / "data"), local_workers=0)))
    coord = flask_app.extensions["scatterscribe"]
    make_jobs(coord.store)
    for job_id, seconds in ((JOB, 30), (OTHER, 10)):  # their audio (quiet), for the slices sent again
        coord.job_dir(job_id).mkdir(parents=True, exist_ok=True)
        coord.audio_path(job_id).write_bytes(audio.wav_bytes(np.zeros(seconds * audio.TARGET_RATE, np.int16)))
    yield flask_app
    coord.stopped = True  # its reaper ends at its next tick, before it would read the closed store
    coord.store.close()


def patch(client, path: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body)
    response = client.patch(path, data=data, content_type="application/json")
    return response.status_code, response.get_json()


SEG = f"/api/jobs/{JOB}/slices/0/segments/1"


def test_a_correction_is_the_text_everywhere_and_the_original_is_kept(app):
    """After a correction the job's text, its segment, the .txt, the .srt and the search of past jobs use it;
    the original stays in the slice's edits and in the .json segment; restoring puts it back."""
    client = app.test_client()
    status, answer = patch(client, SEG, {"text": "The resonant  frequencies.", "was": "The president frequencies."})
    assert status == 200 and answer == {"slice": 0, "segment": 1, "text": "The resonant frequencies.",
                                        "edited": True, "original": "The president frequencies."}
    view = client.get(f"/api/jobs/{JOB}").get_json()
    assert "Hello there. The resonant frequencies. Second slice speaks." in view["transcript"]
    assert view["slices"][0]["segments"][1]["text"] == "The resonant frequencies."
    assert view["slices"][0]["edits"]["1"]["original"] == "The president frequencies."
    for ext in ("txt", "srt", "vtt"):
        body = client.get(f"/api/jobs/{JOB}/transcript.{ext}").get_data(as_text=True)
        assert "resonant" in body and "president" not in body, ext
    segments = client.get(f"/api/jobs/{JOB}/transcript.json").get_json()["segments"]
    assert segments[1]["edited"] is True and segments[1]["original"] == "The president frequencies."
    assert [j["id"] for j in client.get("/api/jobs?q=RESONANT").get_json()["jobs"]] == [JOB]
    assert client.get("/api/jobs?q=president").get_json()["jobs"] == []

    status, answer = patch(client, SEG, {"restore": True, "was": "The resonant frequencies."})
    assert status == 200 and answer["text"] == "The president frequencies." and answer["edited"] is False
    assert client.get(f"/api/jobs/{JOB}").get_json()["slices"][0]["edits"] == {}


def test_an_edit_made_on_a_stale_view_is_refused_with_the_current_text(app):
    """Two pages show the same segment; the first saves; the second's edit, based on the old text, is refused
    (409) with a sentence and the text it now holds, and the first page's correction stands."""
    client = app.test_client()
    assert patch(client, SEG, {"text": "First page's fix.", "was": "The president frequencies."})[0] == 200
    status, answer = patch(client, SEG, {"text": "Second page's fix.", "was": "The president frequencies."})
    assert status == 409 and answer["current"] == "First page's fix."
    assert "changed since your page showed it" in answer["error"]
    assert client.get(f"/api/jobs/{JOB}").get_json()["slices"][0]["segments"][1]["text"] == "First page's fix."


@pytest.mark.parametrize(("path", "body", "status", "words"), [
    (SEG, b"", 400, "no body"),
    (SEG, b"text=hello", 400, "not JSON"),
    (SEG, b"[1, 2]", 400, "not an object"),
    (SEG, {"text": "x"}, 400, "'was'"),
    (SEG, {"text": 5, "was": "The president frequencies."}, 400, "'text' must be a string"),
    (SEG, {"text": "x" * 2001, "was": "The president frequencies."}, 400, "at most 2000"),
    (SEG, {"text": "x", "was": "y", "colour": "red"}, 400, "unknown field"),
    (SEG, {"restore": "yes", "was": "y"}, 400, "true or false"),
    (f"/api/jobs/{JOB}/slices/9/segments/0", {"text": "x", "was": "y"}, 404, "no slice 9"),
    (f"/api/jobs/{JOB}/slices/0/segments/5", {"text": "x", "was": "y"}, 404, "no segment 5"),
    (f"/api/jobs/{JOB}/slices/2/segments/0", {"text": "x", "was": "y"}, 409, "it is failed"),
    ("/api/jobs/00000000000000ff/slices/0/segments/0", {"text": "x", "was": "y"}, 404, "no job"),
    (f"/api/jobs/{JOB}/slices/-1/segments/0", {"text": "x", "was": "y"}, 404, "nothing answers"),
    (SEG, b"{" * 70_000, 413, "over 64 KB"),
])
def test_bad_corrections_get_a_4xx_with_a_sentence(app, path, body, status, words):
    """Every bad correction (README: "Bad input") is answered with its status and a sentence saying what is
    wrong; nothing is stored."""
    client = app.test_client()
    got, answer = patch(client, path, body)
    assert got == status and words in answer["error"], answer
    assert client.get(f"/api/jobs/{JOB}").get_json()["slices"][0]["edits"] == {}


BODIES = st.one_of(
    st.binary(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=50),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                 max_leaves=8).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"text": st.text(max_size=80)},
                          optional={"was": st.sampled_from(["The president frequencies.", "Hello there.", ""]),
                                    "restore": st.booleans()}).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(-2, 4), number=st.integers(-2, 4), body=BODIES)
def test_any_correction_request_gets_a_sentence_or_is_stored_as_sent(app, index, number, body):
    """Whatever the body and whichever slice and segment: a 4xx with a sentence, or a 200 after which the
    segment holds exactly the text sent (cleaned to one line); the original is never lost."""
    client = app.test_client()
    before = client.get(f"/api/jobs/{JOB}").get_json()
    response = client.patch(f"/api/jobs/{JOB}/slices/{index}/segments/{number}", data=body,
                            content_type="application/json")
    answer = response.get_json()
    assert response.status_code in (200, 400, 404, 409, 413), response.status_code
    after = client.get(f"/api/jobs/{JOB}").get_json()
    if response.status_code != 200:
        assert isinstance(answer["error"], str) and len(answer["error"]) > 10
        assert after["slices"] == before["slices"]
        return
    sent = json.loads(body)
    segment = after["slices"][index]["segments"][number]
    original = {0: ["Hello there.", "The president frequencies."], 1: ["Second slice speaks."]}[index][number]
    expected = original if sent.get("restore") else corrections.clean(sent["text"])
    assert segment["text"] == answer["text"] == expected
    edit = after["slices"][index]["edits"].get(str(number))
    assert (edit is None) == (expected == original) and (edit is None or edit["original"] == original)


def test_a_job_is_renamed_and_bad_names_are_refused(app):
    """PATCH /api/jobs/<id> {"name"} renames it (shown in the view and the list; the name is cleaned); an
    empty, over-long or missing name gets a 400 with a sentence, an unknown job a 404."""
    client = app.test_client()
    status, answer = patch(client, f"/api/jobs/{JOB}", {"name": "  Board\nmeeting, March "})
    assert status == 200 and answer["name"] == "Board meeting, March"
    assert client.get(f"/api/jobs/{JOB}").get_json()["name"] == "Board meeting, March"
    assert client.get("/api/jobs?q=board").get_json()["jobs"][0]["name"] == "Board meeting, March"
    for body, words in [({"name": "  "}, "empty"), ({"name": "x" * 121}, "at most 120"), ({}, "'name'"),
                        (b"nope", "not JSON"), ({"name": 3}, "'name'")]:
        status, answer = patch(client, f"/api/jobs/{JOB}", body)
        assert status == 400 and words in answer["error"], (body, answer)
    assert patch(client, "/api/jobs/00000000000000ff", {"name": "x"})[0] == 404


class Endless(io.RawIOBase):
    """A request body of ``size`` bytes made as it is read, counting what the server read of it."""

    def __init__(self, size: int):
        self.left, self.read_bytes = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = b" " * n
        self.left -= n
        self.read_bytes += n
        return n


@pytest.mark.parametrize("path", [f"/api/jobs/{JOB}", SEG, f"/api/jobs/{JOB}/slices/0/redo",
                                  f"/api/jobs/{JOB}/speakers/1"])
@pytest.mark.parametrize("with_length", [True, False])
def test_a_huge_body_on_any_json_route_is_refused_without_being_read(app, path, with_length):
    """The review: renaming a job read the whole body (a 200 MB PATCH cost 400 MB, then a 400). Every JSON route
    now answers 413 without reading a body whose Content-Length is over its limit, and reads one sent without a
    length only up to the limit."""
    body = Endless(20 * 2**20)
    method = "POST" if path.endswith("redo") else "PATCH"
    environ = EnvironBuilder(path=path, method=method, content_type="application/json").get_environ()
    environ["wsgi.input"] = io.BufferedReader(body)  # not seekable: the test client cannot send it
    if with_length:
        environ["CONTENT_LENGTH"] = str(body.left)
    else:
        environ.pop("CONTENT_LENGTH", None)
        environ["wsgi.input_terminated"] = True  # as a server passing on a chunked body says
    answer, status, _ = run_wsgi_app(app.wsgi_app, environ, buffered=True)
    assert status.startswith("413") and "the request body is over" in json.loads(b"".join(answer))["error"]
    assert body.read_bytes <= (0 if with_length else 64 * 1024 + 8192), body.read_bytes


def test_past_jobs_are_searched_by_name_and_text_and_show_their_first_words(app):
    """?q= matches names and text in any case, treating % and _ as themselves; every job lists its first
    words."""
    client = app.test_client()
    listed = client.get("/api/jobs").get_json()["jobs"]
    assert [j["id"] for j in listed] == [OTHER, JOB]
    assert listed[1]["first_words"] == "Hello there. The president frequencies."
    ids = lambda q: [j["id"] for j in client.get("/api/jobs", query_string={"q": q}).get_json()["jobs"]]  # noqa: E731
    assert ids("MEETING") == [OTHER, JOB]  # one by its text, one by its name
    assert ids("speaks") == [JOB] and ids("100%") == [OTHER] and ids("s_h") == [OTHER]
    assert ids("%") == [OTHER] and ids("nowhere at all") == []


def connect(app, worker_id: str, engine: str, model: str = "") -> None:
    """A worker that is only an id in the scheduler (what the server sends it goes nowhere; the calls a real
    worker's events make are made here): enough for the routes to know who is connected."""
    app.extensions["scatterscribe"].worker_connected(worker_id, WorkerInfo(worker_id, engine=engine, model=model))


def downloads(client, job: str) -> dict[str, str]:
    """The job's transcript as the view gives it and as every download gives it (the .json: its text and
    segments)."""
    out = {"view": client.get(f"/api/jobs/{job}").get_json()["transcript"]}
    for ext in ("txt", "srt", "vtt"):
        out[ext] = client.get(f"/api/jobs/{job}/transcript.{ext}").get_data(as_text=True)
    data = client.get(f"/api/jobs/{job}/transcript.json").get_json()
    out["json"] = json.dumps([data["transcript"], data["segments"]])
    return out


def test_a_slice_is_sent_to_be_transcribed_again_unless_corrections_would_be_lost(app):
    """A done slice goes back to the queue, asking for a named engine if told; until the new text comes its
    last text stays in the view's transcript and every download; a corrected slice is redone only with
    replace_corrections, and keeps its correction (and the worker's original) until the new text comes; a
    slice already out, bad JSON and unknown slices are refused with a sentence."""
    client = app.test_client()
    connect(app, "sphinx-worker", "sphinx")
    before = downloads(client, JOB)
    redo = f"/api/jobs/{JOB}/slices/1/redo"
    response = client.post(redo, json={"engine": "sphinx"})
    assert response.status_code == 202 and response.get_json()["engine"] == "sphinx"
    view = client.get(f"/api/jobs/{JOB}").get_json()
    s = view["slices"][1]
    assert s["status"] == "leased" and s["asked_engine"] == "sphinx" and s["text"] == "Second slice speaks."
    assert s["redo_of"] == "done" and view["status"] == "running"
    assert downloads(client, JOB) == before, "the last text stands while the slice is transcribed again"
    assert [j["first_words"] for j in client.get("/api/jobs").get_json()["jobs"] if j["id"] == JOB] == \
        ["Hello there. The president frequencies."]
    again = client.post(redo)
    assert again.status_code == 409 and "being transcribed already" in again.get_json()["error"]

    patch(client, SEG, {"text": "Fixed.", "was": "The president frequencies."})
    refused = client.post(f"/api/jobs/{JOB}/slices/0/redo")
    assert refused.status_code == 409 and refused.get_json()["corrected"] is True
    assert "replace_corrections" in refused.get_json()["error"]
    assert client.post(f"/api/jobs/{JOB}/slices/0/redo", json={"replace_corrections": True}).status_code == 202
    s = client.get(f"/api/jobs/{JOB}").get_json()["slices"][0]
    assert s["status"] == "queued" and s["edits"]["1"]["original"] == "The president frequencies."
    for name, body in downloads(client, JOB).items():
        assert "Fixed." in body and "Hello there." in body and "president" not in body.replace(
            '"original": "The president frequencies."', ""), name
    assert client.post(f"/api/jobs/{JOB}/slices/2/redo").status_code == 202  # a failed slice, tried again
    for body, status in [(b"{bad", 400), (b'{"engine": "a b"}', 400), (b'{"speed": 2}', 400), (b"[]", 400)]:
        response = client.post(f"/api/jobs/{OTHER}/slices/0/redo", data=body, content_type="application/json")
        assert response.status_code == status and response.get_json()["error"], body
    assert client.post(f"/api/jobs/{OTHER}/slices/7/redo").status_code == 404


def test_a_redo_no_connected_worker_can_take_is_refused_and_the_job_stays_done(app):
    """Asking for an engine no connected worker runs (or asking with no worker at all) is refused with a 409
    that names what was asked and who is connected; nothing changes: the job stays done, its text whole."""
    client = app.test_client()
    before = downloads(client, JOB)
    url = f"/api/jobs/{JOB}/slices/0/redo"
    nobody = client.post(url, json={"engine": "nonexist", "replace_corrections": True})
    assert nobody.status_code == 409 and "no worker is connected" in nobody.get_json()["error"]
    connect(app, "fw", "faster-whisper", "tiny.en")
    refused = client.post(url, json={"engine": "nonexist", "replace_corrections": True})
    error = refused.get_json()["error"]
    assert refused.status_code == 409 and "nonexist" in error and "faster-whisper tiny.en" in error, error
    assert client.post(url, json={"model": "large-v3"}).status_code == 409
    view = client.get(f"/api/jobs/{JOB}").get_json()
    assert view["status"] == "done" and all(s["status"] != "queued" for s in view["slices"])
    assert downloads(client, JOB) == before


def test_a_redo_that_waits_can_be_called_off_and_the_slice_is_as_it_was(app):
    """A redo whose worker went away waits; DELETE on it calls it off: the worker holding it (if any) is told
    to drop it, the slice is done again with its text and corrections, the job done again; calling off a slice
    that is not being redone is a 409 with a sentence."""
    client = app.test_client()
    coord = app.extensions["scatterscribe"]
    sent: list[tuple[str, dict, str | None]] = []
    # What the server sends, workers' messages included: the one emitter the app was built with.
    app.extensions["socketio"].emit = lambda event, data, to=None, **_: sent.append((event, data, to))
    patch(client, SEG, {"text": "Fixed.", "was": "The president frequencies."})
    before = downloads(client, JOB)
    connect(app, "sphinx-worker", "sphinx")
    url = f"/api/jobs/{JOB}/slices/0/redo"
    assert client.post(url, json={"engine": "sphinx", "replace_corrections": True}).status_code == 202
    lease = next(data["lease"] for event, data, _ in sent if event == "slice")
    coord.worker_disconnected("sphinx-worker")  # its slice goes back to the queue: nobody left to take it
    assert client.get(f"/api/jobs/{JOB}").get_json()["slices"][0]["status"] == "queued"
    connect(app, "sphinx-2", "sphinx")
    coord.dispatch()  # what the server's every-second tick does
    assert client.get(f"/api/jobs/{JOB}").get_json()["slices"][0]["status"] == "leased"
    del sent[:]
    response = client.delete(url)
    assert response.status_code == 200 and response.get_json() == {"slice": 0, "cancelled": True}
    assert [(event, to) for event, data, to in sent if event == "cancel"] == [("cancel", "sphinx-2")]
    assert lease not in [data["lease"] for event, data, _ in sent if event == "cancel"]
    view = client.get(f"/api/jobs/{JOB}").get_json()
    s = view["slices"][0]
    assert s["status"] == "done" and s["redo_of"] == "" and s["edits"]["1"]["original"] == "The president frequencies."
    assert view["status"] == "done" and downloads(client, JOB) == before
    assert not coord.scheduler.tasks and not coord.scheduler.leases
    again = client.delete(url)
    assert again.status_code == 409 and "not being transcribed again" in again.get_json()["error"]
    assert client.delete(f"/api/jobs/{JOB}/slices/9/redo").status_code == 404
    assert client.post(f"/api/jobs/{JOB}/slices/2/redo").status_code == 202  # a failed slice, called off: failed
    assert client.delete(f"/api/jobs/{JOB}/slices/2/redo").status_code == 200
    assert client.get(f"/api/jobs/{JOB}").get_json()["slices"][2]["status"] == "failed"


def test_the_new_text_replaces_the_old_and_its_corrections_only_when_it_comes(app):
    """The worker's result for a redone slice replaces its text and drops its corrections (the page asked
    first); a redo whose every try fails leaves a done slice done, with its text and a note saying so."""
    client = app.test_client()
    coord = app.extensions["scatterscribe"]
    sent: list[tuple[str, dict, str | None]] = []
    # What the server sends, workers' messages included: the one emitter the app was built with.
    app.extensions["socketio"].emit = lambda event, data, to=None, **_: sent.append((event, data, to))
    patch(client, SEG, {"text": "Fixed.", "was": "The president frequencies."})
    connect(app, "w", "sphinx")
    assert client.post(f"/api/jobs/{JOB}/slices/0/redo", json={"replace_corrections": True}).status_code == 202
    held = next(data for event, data, _ in sent if event == "slice")
    ref = payloads.slice_ref(held)
    result = payloads.result({**held, "text": "Brand new words.", "engine": "sphinx", "model": "",
                              "segments": [{"start": 0.5, "end": 2.0, "text": "Brand new words."}]}, ref, 10_000)
    assert coord.result("w", result) == {"ok": True}
    s = client.get(f"/api/jobs/{JOB}").get_json()["slices"][0]
    assert s["status"] == "done" and s["text"] == "Brand new words." and s["edits"] == {} and s["redo_of"] == ""
    assert "Fixed." not in downloads(client, JOB)["txt"]

    del sent[:]
    assert client.post(f"/api/jobs/{JOB}/slices/1/redo").status_code == 202
    for _ in range(coord.settings.scheduler.max_attempts):  # the only worker fails every try
        held = [data for event, data, _ in sent if event == "slice"][-1]
        assert coord.error("w", payloads.slice_failure({**held, "error": "decoder crashed"},
                                                       payloads.slice_ref(held))) == {"ok": True}
    view = client.get(f"/api/jobs/{JOB}").get_json()
    s = view["slices"][1]
    assert s["status"] == "done" and s["text"] == "Second slice speaks." and "decoder crashed" in s["error"]
    assert view["status"] == "done" and "Second slice speaks." in view["transcript"]


def test_searching_past_jobs_waits_for_neither_the_coordinator_nor_the_store(app):
    """A search scans every slice's text: it reads on a connection of its own, so it answers while another
    thread holds the coordinator's lock and the store's (a result being stored, a job being handed out), and
    holds neither itself."""
    import threading

    coord = app.extensions["scatterscribe"]
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with coord.lock, coord.store._lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(10)
    answers: list = []
    searcher = threading.Thread(target=lambda: answers.append(app.test_client().get("/api/jobs?q=speaks")),
                                daemon=True)
    searcher.start()
    searcher.join(10)
    release.set()
    holder.join(10)
    searcher.join(10)
    assert answers and answers[0].status_code == 200, "answered while both locks were held"
    assert [j["id"] for j in answers[0].get_json()["jobs"]] == [JOB]
    assert answers[0].get_json()["jobs"][0]["first_words"] == "Hello there. The president frequencies."


def test_a_search_that_runs_past_its_limit_is_stopped_with_a_sentence(tmp_path):
    """Store.search gives up at its time limit (SearchTooLong), rather than holding a thread for ever."""
    from server.store import SearchTooLong, Store

    store = Store(tmp_path / "big.db")
    slices = [SliceRecord(i, i, i + 1.0, [(i, i + 1.0)], status="done", text=f"words number {i} " * 20)
              for i in range(3000)]
    store.create_job(JobRecord(JOB, "big.wav", "upload", 1.0, status="done", slices=slices))
    assert [job.id for job, _ in store.search("number 2999")[0]] == [JOB]
    with pytest.raises(SearchTooLong, match="took over 0 s"):
        store.search("nowhere to be found", max_s=0.0)
    store.close()


@pytest.mark.parametrize(("body", "words"), [
    (b'{"engine": 0}', "'engine' must be a string"),
    (b'{"engine": false}', "'engine' must be a string"),
    (b'{"model": []}', "'model' must be a string"),
    (b'{"engine": "a b"}', "'engine' may hold only letters"),
    (b'{"model": "' + b"m" * 129 + b'"}', "'model' may hold only letters, digits, '.', '-', '_' and '/', at most 128"),
])
def test_a_redo_names_the_field_it_refuses(body, words):
    """The review: ``0``, ``false`` and ``[]`` were taken as "any engine", and engine and model were checked as
    one string ("engine and model are …" for a model too long by itself). Each field is now checked alone and
    named; a redo may still name neither, or null, or 128 characters each."""
    with pytest.raises(corrections.Refused, match=re.escape(words)) as refused:
        redo.parse(body)
    assert refused.value.status == 400
    assert redo.parse(b'{"engine": null, "model": null}').asked == Requirement("", "")
    both = redo.parse(json.dumps({"engine": "e" * 128, "model": " tiny.en "}).encode()).asked
    assert both == Requirement("e" * 128, "tiny.en")
