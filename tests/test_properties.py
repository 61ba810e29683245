"""Property-based tests of every input surface against one real server (Hypothesis): HTTP routes with any job
id and any form, and any Socket.IO payload from a worker or a page. Whatever arrives, the answer is a 4xx with
a sentence or a correct result, never a 5xx; the server keeps serving; no file outside a job's own folder is
touched (a canary beside the data folder, the known job's audio, the data folder's layout)."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import urllib.parse

import pytest
import requests
import socketio
import werkzeug.http
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support import TOKEN, RawWorker, Server, corpus_file, wait_for, write_config
from tests.test_payloads import JSONISH, NEAR_RESULTS, strict_loads

JFK = "jfk_inaugural_excerpt.wav"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Site:
    """The module's server, a job it holds, and what must never change."""

    def __init__(self, tmp):
        self.canary = tmp / "canary.txt"
        self.canary.write_text("outside the data folder\n")
        config = write_config(tmp / "c.toml", server={"max_upload_mb": 2.0})
        self.server = Server(tmp, config=config)
        self.job = self.server.submit(corpus_file(JFK))
        self.audio = self.server.data_dir / "jobs" / self.job / "audio.wav"
        self.audio_hash = hashlib.sha256(self.audio.read_bytes()).hexdigest()
        self.top = sorted(p.name for p in self.server.data_dir.iterdir())

    def check(self) -> None:
        """Nothing outside a job's own folder was touched, and the server still serves."""
        assert self.canary.read_text() == "outside the data folder\n"
        assert hashlib.sha256(self.audio.read_bytes()).hexdigest() == self.audio_hash
        assert sorted(p.name for p in self.server.data_dir.iterdir()) == self.top
        known = {j["id"] for j in self.server.get("/api/jobs", params={"limit": 1000}).json()["jobs"]}
        folders = {p.name for p in (self.server.data_dir / "jobs").iterdir()}
        assert all(re.fullmatch(r"[0-9a-f]{16}", name) for name in folders), folders
        assert self.job in known and self.job in folders


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp("properties"))
    yield site
    log = site.server.log()
    site.server.stop()
    assert "Traceback" not in log, log[-3000:]


def answered_with_a_sentence(status: int, body: str) -> None:
    assert status < 500, (status, body)
    if status >= 400:
        error = json.loads(body)["error"]
        assert isinstance(error, str) and len(error) > 5, body


def raw(site: Site, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """A request sent byte for byte as given: no client-side normalisation of `%2e`, `..` or `//`."""
    conn = http.client.HTTPConnection("127.0.0.1", site.server.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


IDS = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40),
    st.lists(st.sampled_from(["..", ".", "%2e", "%2E%2e", "%2f", "%5c", "/", "\\", "%00", "0123456789abcdef",
                              "jobs", "audio.wav", "~", "%"]), max_size=6).map("".join))
SUFFIXES = ["", "/audio.wav", "/peaks.json?bins=7", "/transcript.txt", "/transcript.json", "/slices/0/redo",
            "/slices/0/segments/0", "/speakers/1"]


@SETTINGS
@given(job_id=IDS, suffix=st.sampled_from(SUFFIXES), method=st.sampled_from(["GET", "DELETE", "PATCH", "POST"]))
def test_any_job_id_on_any_route_gets_a_sentence_and_touches_nothing(site, job_id, suffix, method):
    path = "/api/jobs/" + urllib.parse.quote(job_id, safe="/%.~\\")
    status, body = raw(site, method, path + suffix, b"{}" if method in ("PATCH", "POST") else None,
                       {"Content-Type": "application/json"})
    answered_with_a_sentence(status, body)
    site.check()


FIELD_NAMES = st.sampled_from(["audio", "file", "engine", "model", "name", "speakers", ""]) | st.text(max_size=12)


@SETTINGS
@given(fields=st.lists(st.tuples(FIELD_NAMES, st.text(max_size=200)), max_size=4),
       filename=st.text(max_size=60) | st.none(),
       content=st.sampled_from(["wav", "empty", "junk"]) | st.binary(max_size=300),
       engine=st.text(max_size=20) | st.none())
def test_any_upload_form_gets_a_job_or_a_sentence(site, fields, filename, content, engine):
    """Fields named anything, any filename, the real recording or bytes that are not one, any engine field."""
    data = corpus_file(JFK).read_bytes() if content == "wav" else b"" if content == "empty" else \
        b"RIFF\x00\x00" if content == "junk" else content
    form = [(name, (None, value)) for name, value in fields]
    if engine is not None:
        form.append(("engine", (None, engine)))
    form.append(("audio", (filename, data, "audio/wav")))
    response = requests.post(f"{site.server.url}/api/jobs", files=form, timeout=60)
    answered_with_a_sentence(response.status_code, response.text)
    if response.status_code == 202:
        job = site.server.job(response.json()["id"])
        assert job["id"] == response.json()["id"] and job["duration"] > 0
        assert requests.delete(f"{site.server.url}/api/jobs/{job['id']}", timeout=30).ok
    site.check()


@SETTINGS
@given(body=JSONISH.map(lambda v: json.dumps(v, default=bytes.hex).encode()) | st.binary(max_size=200),
       route=st.sampled_from(["", "/slices/0/segments/0", "/slices/0/redo", "/slices/99/segments/3",
                              "/speakers/1"]))
def test_any_body_on_the_known_jobs_routes_gets_a_correct_answer_or_a_sentence(site, body, route):
    method = "POST" if route.endswith("redo") else "PATCH"
    status, answer = raw(site, method, f"/api/jobs/{site.job}{route}", body, {"Content-Type": "application/json"})
    answered_with_a_sentence(status, answer)
    site.check()


JSON_ROUTES = [("PATCH", ""), ("PATCH", "/slices/0/segments/0"), ("POST", "/slices/0/redo"),
               ("PATCH", "/speakers/1")]


def nested(depth: int, opener: str, inside_name: bool) -> bytes:
    """JSON nested ``depth`` levels deep with ``opener`` (``[`` or ``{"a":``), alone or as a rename's name."""
    closer = "]" if opener == "[" else "}"
    text = opener * depth + "1" + closer * depth
    return (f'{{"name": {text}}}' if inside_name else text).encode()


@SETTINGS
@given(depth=st.integers(33, 40_000), opener=st.sampled_from(["[", '{"a":']), inside_name=st.booleans(),
       route=st.sampled_from(JSON_ROUTES))
def test_deeply_nested_json_on_every_json_route_gets_a_400_with_a_sentence(site, depth, opener, inside_name,
                                                                            route):
    """The review: a thousand brackets on the rename, correction, redo or speaker rename route were a 500 and a
    RecursionError traceback. Every JSON route now says the body is nested too deeply (bodies.json_object), or,
    past the route's size limit (64 KB for a correction, else 4 KB), that it is too large, unread."""
    method, suffix = route
    body = nested(depth, opener, inside_name)
    status, answer = raw(site, method, f"/api/jobs/{site.job}{suffix}", body, {"Content-Type": "application/json"})
    limit = 64 * 1024 if "segments" in suffix else 4096
    if len(body) > limit:
        assert status == 413 and "the request body is over" in json.loads(answer)["error"], answer
    else:
        assert status == 400 and "nested more than 32 levels deep" in json.loads(answer)["error"], answer
    site.check()


def raw_call(client: socketio.Client, namespace: str, packet: str, timeout: float = 10) -> object:
    """Send ``packet`` (an event's JSON as text, not encoded by the client) with an acknowledgement id, and
    return the server's acknowledgement."""
    answers: list = []
    ack = client._generate_ack_id(namespace, lambda *args: answers.append(args))
    client.eio.send(f"2{namespace + ',' if namespace != '/' else ''}{ack}{packet}")
    wait_for(lambda: answers, timeout, "the acknowledgement")
    return answers[0][0] if answers[0] else None


@SETTINGS
@given(depth=st.integers(33, 100_000), opener=st.sampled_from(["[", '{"a":']), who=st.sampled_from(["page", "worker"]),
       event=st.sampled_from(["watch", "live_start", "result", "heartbeat", "tentative_text", "nothing"]))
def test_deeply_nested_socketio_packets_are_refused_in_a_sentence(site, page, worker, depth, opener, who, event):
    """The review: ``42["watch",[[[[…`` put an engine.io traceback in the log per packet and answered nothing.
    Now the sender's acknowledgement says the message is nested too deeply, and the sender stays connected (the
    log holds no traceback: the ``site`` fixture checks it)."""
    closer = "]" if opener == "[" else "}"
    packet = f'["{event}",{opener * depth}1{closer * depth}]'
    client, namespace = (page, "/") if who == "page" else (worker.sio, "/worker")
    answer = raw_call(client, namespace, packet)
    assert answer == {"ok": False, "error": "the message is nested more than 32 levels deep; nothing this server "
                                            "takes is: it was not read"}
    assert raw_call(client, namespace, '["nothing",{"a":') == {"ok": False,
                                                               "error": "the message is not JSON: it was not read"}
    assert client.connected
    site.check()


RANGES = st.one_of(
    st.text(st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=30).map(str.strip),
    st.builds(lambda unit, first, last: f"{unit}={first}-{last}", st.sampled_from(["bytes", "items", "Bytes"]),
              st.integers(0, 2_000_000).map(str) | st.just("") | st.text("0123456789abc-,", max_size=6),
              st.integers(0, 2_000_000).map(str) | st.just("")))


@SETTINGS
@given(header=RANGES)
@example(header="bytes=abc")
@example(header="bytes=0-1,4-5")
def test_any_range_on_the_recording_gets_the_bytes_asked_or_the_whole_file(site, header):
    """``Range: bytes=abc`` was a 416. Now, as RFC 9110 says, a Range that cannot be read (or not in bytes) is
    ignored: 200 with the whole file (as are several ranges at once, and the last N bytes of a file shorter than
    N); one readable range gets 206 with exactly those bytes, or 416 when it starts past the end."""
    whole = site.audio.read_bytes()
    response = requests.get(f"{site.server.url}/api/jobs/{site.job}/audio.wav", headers={"Range": header},
                            timeout=30)
    parsed = werkzeug.http.parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1 or -parsed.ranges[0][0] > len(whole):
        assert response.status_code == 200 and response.content == whole, (header, response.status_code)
    elif response.status_code == 206:
        first, last = map(int, re.fullmatch(r"bytes (\d+)-(\d+)/\d+", response.headers["Content-Range"]).groups())
        assert response.content == whole[first:last + 1]
    else:
        assert response.status_code == 416 and parsed.ranges[0][0] >= len(whole), (header, response.status_code)
    site.check()


NAMES = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=120)


@SETTINGS
@given(name=NAMES, ext=st.sampled_from(["txt", "srt", "vtt", "json"]))
def test_a_job_renamed_anything_can_still_be_downloaded(site, name, ext):
    """Any name a rename takes (any script, quotes, slashes, dots): every download answers 200 with an ASCII
    ``filename`` and, for a name that is not plain ASCII, ``filename*`` holding the name's letters and digits
    (RFC 6266); a non-Latin-1 name used to close the connection with no answer."""
    renamed = requests.patch(f"{site.server.url}/api/jobs/{site.job}", json={"name": name}, timeout=30)
    answered_with_a_sentence(renamed.status_code, renamed.text)
    stored = site.server.job(site.job)["name"]
    response = site.server.get(f"/api/jobs/{site.job}/transcript.{ext}")
    assert response.status_code == 200, response.text
    disposition = response.headers["Content-Disposition"]
    plain = re.fullmatch(r'attachment; filename="([A-Za-z0-9._\-]+)"(?:; filename\*=UTF-8\'\'([^;\s"]+))?',
                         disposition)
    assert plain, disposition
    shown = urllib.parse.unquote(plain.group(2), errors="strict") if plain.group(2) else plain.group(1)
    assert shown.endswith(f".{ext}") and not set('/\\"') & set(shown), shown
    stem = stored.rsplit(".", 1)[0]
    if any(ch.isalnum() for ch in stem):
        assert [ch for ch in shown[:-len(ext) - 1] if ch.isalnum()] == [ch for ch in stem if ch.isalnum()]
    else:
        assert plain.group(1) == f"{site.job}.{ext}"
    site.check()


@SETTINGS
@given(name=NAMES, start=st.integers(0, 120), length=st.integers(1, 30),
       case=st.sampled_from([str, str.upper, str.lower, str.swapcase, str.title]),
       other=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=250))
def test_the_search_of_past_jobs_finds_what_they_hold_in_any_case_and_nothing_else(site, name, start, length,
                                                                                    case, other):
    """``GET /api/jobs?q=``: a piece of the known job's name, in any case (Unicode case folding: ``ÉTÉ`` finds
    "été"), finds the job; any text (``%``, ``_``, quotes, any script, over the 200 characters kept) gets 200
    and only jobs whose name or text holds it."""
    if requests.patch(f"{site.server.url}/api/jobs/{site.job}", json={"name": name}, timeout=30).status_code != 200:
        return  # a name the rename refuses (blank): the rename's own test covers it
    stored = site.server.job(site.job)["name"]
    piece = " ".join(case(stored[start:start + length]).split())
    for query, must_find in ((piece, bool(piece) and piece.casefold() in stored.casefold()), (other, False)):
        response = site.server.get("/api/jobs", params={"q": query})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["query"] == " ".join(query.split())[:200]
        found = {job["id"]: job for job in answer["jobs"]}
        needle = answer["query"].casefold()
        for job_id in found:
            view = site.server.job(job_id)
            assert needle in view["name"].casefold() or any(
                needle in (s["text"] or "").casefold() for s in view["slices"]), (needle, view["name"])
        assert not must_find or site.job in found, (query, stored)
    site.check()


@SETTINGS
@given(query=st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=3),
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
def test_the_worker_setup_answers_the_same_whatever_is_sent(site, query, method):
    """``/api/worker-setup`` takes no input: any query, on GET, gives the same answer, the fields the page
    builds its worker command from and nothing else; any other method gets 405 with a sentence."""
    status, body = raw(site, method, "/api/worker-setup?" + urllib.parse.urlencode(query),
                       b"{}" if method != "GET" else None)
    answered_with_a_sentence(status, body)
    if method != "GET":
        assert status == 405
        return
    plain = site.server.get("/api/worker-setup")
    assert status == 200 and json.loads(body) == plain.json()
    assert set(plain.json()) == {"token_file", "announced", "fingerprint"}
    site.check()


@pytest.fixture(scope="module")
def worker(site):
    raw_worker = RawWorker(site.server, "prop-worker")
    yield raw_worker
    if raw_worker.sio.connected:
        raw_worker.sio.disconnect()


def held(worker: RawWorker) -> dict:
    return {"lease": worker.slices[-1]["lease"], "job": worker.slices[-1]["job"],
            "index": worker.slices[-1]["index"]} if worker.slices else {}


@SETTINGS
@given(event=st.sampled_from(["result", "slice_error", "heartbeat"]),
       payload=NEAR_RESULTS | JSONISH, use_lease=st.booleans())
def test_any_worker_payload_gets_an_answer_and_keeps_the_worker(site, worker, event, payload, use_lease):
    """Near-results (any field anything) and anything at all; sometimes for the slice the worker really holds.
    The answer says ok or why not; the worker stays connected; every job stays strict JSON."""
    if use_lease and isinstance(payload, dict) and worker.slices:
        payload = {**payload, **held(worker)}
    answer = worker.sio.call(event, payload, namespace="/worker", timeout=10)
    if event != "heartbeat":
        assert isinstance(answer, dict) and (answer["ok"] is True or len(answer["error"]) > 5), answer
    assert worker.sio.connected
    for path in (f"/api/jobs/{site.job}", "/api/jobs"):
        strict_loads(site.server.get(path).text)
    site.check()


LEASE_LIKE = st.text("0123456789abcdef", min_size=30, max_size=34) | JSONISH


@SETTINGS
@given(payload=st.fixed_dictionaries({}, optional={"leases": st.lists(LEASE_LIKE, max_size=5) | JSONISH,
                                                   "extra": JSONISH}) | JSONISH,
       hand_back_held=st.booleans())
def test_any_hand_back_gets_an_answer_and_a_good_one_ends_the_workers_turn(site, payload, hand_back_held):
    """A fresh worker, holding a slice, sends a hand-back of anything, sometimes with the lease it holds: a
    malformed one is refused with a sentence and the worker stays on the list; a well-formed one says how many
    of the leases were its own, takes the worker off the list (it gets nothing more) and puts the slice it held
    back in the queue, the try not counted, whether the hand-back listed it or not (a hand-back that left out a
    lease used to leave its slice 'leased' in the store forever)."""
    fresh = RawWorker(site.server, "hand-back")
    answer: dict = {}
    try:
        try:
            wait_for(lambda: fresh.slices, 3, "a free slice")
        except TimeoutError:  # every slice is out (or done): make one, until this worker is the one given it
            for _ in range(5):  # (the module's other raw worker, if free, may take a new slice first)
                site.server.submit(corpus_file(JFK))
                try:
                    wait_for(lambda: fresh.slices, 10, "a slice of a new job")
                    break
                except TimeoutError:
                    continue
            fresh.wait_slice()
        held_slice = fresh.slices[-1]
        mine = [held_slice["lease"]]
        before = site.server.job(held_slice["job"])["slices"][held_slice["index"]]["attempts"]
        if hand_back_held and isinstance(payload, dict):
            sent = payload.get("leases") if isinstance(payload.get("leases"), list) else []
            payload = {**payload, "leases": [*mine, *[x for x in sent if isinstance(x, str)]]}
        answer = fresh.sio.call("hand_back", payload, namespace="/worker", timeout=10)
        listed = lambda: [w for w in site.server.workers() if w["name"] == "hand-back"]  # noqa: E731
        if answer["ok"] is False:
            assert answer["error"].startswith("malformed hand-back: ") and len(answer["error"]) > 25, answer
            assert listed() and fresh.sio.connected
        else:
            given_back = {x for x in payload["leases"] if x in mine}
            assert answer == {"ok": True, "handed_back": len(given_back)}, (answer, mine)
            assert not listed() and fresh.sio.connected
            now = site.server.job(held_slice["job"])["slices"][held_slice["index"]]
            assert now["worker"] != "hand-back" and now["attempts"] == before - 1, (before, now)
    finally:
        if not answer.get("ok"):  # give its slice back, so no try is spent on this test's worker
            fresh.sio.call("hand_back", {"leases": [x["lease"] for x in fresh.slices]}, namespace="/worker",
                           timeout=10)
        fresh.sio.disconnect()
    site.check()


@SETTINGS
@given(payload=st.fixed_dictionaries({}, optional={
    "id": LEASE_LIKE, "job": st.just("0123456789abcdef") | JSONISH, "text": st.text(max_size=300) | JSONISH,
    "elapsed": st.floats() | JSONISH}) | JSONISH, known_job=st.booleans())
def test_any_tentative_text_is_dropped_unless_it_was_asked_for(site, worker, payload, known_job):
    """``tentative_text`` from a worker that was asked nothing, with anything in it (the known job's id or
    not): it is dropped without an answer; the worker stays connected; no job shows tentative text
    (``partial`` stays null) and every job stays strict JSON."""
    if known_job and isinstance(payload, dict):
        payload = {**payload, "job": site.job}
    assert worker.sio.call("tentative_text", payload, namespace="/worker", timeout=10) is None
    assert worker.sio.connected
    view = strict_loads(site.server.get(f"/api/jobs/{site.job}").text)
    assert view["partial"] is None
    site.check()


@SETTINGS
@given(auth=st.fixed_dictionaries({"token": st.just(TOKEN)}, optional={
    "name": JSONISH, "engine": JSONISH, "model": JSONISH, "slots": JSONISH | st.integers(-5, 100),
    "max_slice_s": JSONISH | st.floats()}))
def test_any_worker_announcement_is_taken_bounded_or_refused(site, auth):
    client = socketio.Client(reconnection=False)
    try:
        client.connect(site.server.url, namespaces=["/worker"], transports=["websocket"], auth=auth,
                       wait_timeout=10)
        names = wait_for(lambda: [w for w in site.server.workers() if w["slots"] <= 64], 10, "the worker list")
        assert all(len(w["name"]) <= 64 and 1 <= w["max_slice_s"] <= 3600 for w in names)
    except socketio.exceptions.ConnectionError:
        pass
    finally:
        if client.connected:
            client.disconnect()
    site.check()


@pytest.fixture(scope="module")
def page(site):
    client = socketio.Client(reconnection=False)
    client.connect(site.server.url, transports=["websocket"], wait_timeout=10)
    yield client
    client.disconnect()


LIVE = st.fixed_dictionaries({}, optional={
    "job": st.just("0123456789abcdef") | JSONISH, "key": st.text(max_size=70) | JSONISH,
    "seq": st.integers(-3, 2**32) | JSONISH, "pcm": st.binary(max_size=64) | JSONISH,
    "last_seq": st.integers(-3, 3) | JSONISH, "name": JSONISH | st.text(max_size=300),
    "sample_rate": st.sampled_from([8000, 16000, 44100, 192000]) | JSONISH})


@SETTINGS
@given(event=st.sampled_from(["watch", "unwatch", "live_start", "live_chunk", "live_stop", "live_resume"]),
       payload=LIVE | JSONISH, extra=st.none() | JSONISH)
def test_any_page_payload_gets_an_answer_and_keeps_the_page(site, page, event, payload, extra):
    """Any payload, or none, or two arguments where one belongs, for every event a page may send."""
    answer = page.call(event, payload, timeout=10) if extra is None else page.call(event, (payload, extra),
                                                                                   timeout=10)
    if event == "watch":  # a payload nested past strict_json.MAX_DEPTH is refused in words, as for any event
        assert answer is None or len(answer.get("error", "")) > 5 or answer["id"] == payload.get("job"), answer
    elif event != "unwatch":
        assert isinstance(answer, dict) and ("job" in answer or "ack" in answer or "error" in answer), answer
        assert "error" not in answer or len(answer["error"]) > 5
    assert page.connected
    site.check()


def test_the_server_still_serves_after_all_of_it(site, worker, page):
    """After every example above: the known job is intact and a real upload still becomes a job."""
    assert site.server.job(site.job)["id"] == site.job
    assert site.server.upload(corpus_file(JFK)).status_code == 202
    assert page.connected and worker.sio.connected
    site.check()
