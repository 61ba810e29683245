"""Security by default, checked against real processes: tokens, limits, binding, paths."""

from __future__ import annotations

import time

import psutil
import pytest
import requests
import socketio

from server.config import Settings
from tests.support import TOKEN, Server, Worker, corpus_file, wait_for, write_config

ACCESS = "page-secret-42"


def test_tokens_are_never_logged_nor_put_on_a_command_line(tmp_path):
    """Neither the worker token nor a wrong guess appears in any log, and local workers get the token through
    their environment, not their command line (which `ps` shows to every user)."""
    server = Server(tmp_path, local_workers=1)
    guess = Worker(server, "guesser", token="wrong-guess-1234")
    try:
        server.wait_workers(1)
        assert guess.proc.wait(timeout=60) == 3
        children = psutil.Process(server.pid).children(recursive=True)
        assert children, "the local worker should be a child of the server"
        for child in children:
            assert TOKEN not in " ".join(child.cmdline())
        for log in (server.log(), guess.log()):
            assert TOKEN not in log and "wrong-guess-1234" not in log
    finally:
        server.stop()
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in children), \
        "local workers outlived their server"


def test_a_worker_socket_without_a_token_is_refused(tmp_path):
    """A raw Socket.IO connection to /worker that presents no token at all (no auth, empty auth, no token key,
    an empty or null token) is refused by the server, not only by the worker program, which will not start
    without one, and never joins the worker list; the refusals make one log line, not five."""
    server = Server(tmp_path)
    try:
        for auth in (None, {}, {"name": "no-token"}, {"token": ""}, {"token": None}):
            raw = socketio.Client(reconnection=False)
            with pytest.raises(socketio.exceptions.ConnectionError):
                raw.connect(server.url, namespaces=["/worker"], auth=auth, transports=["websocket"],
                            wait_timeout=5)
            assert not raw.connected, auth
            assert server.workers() == [], auth
        assert server.log().count("refused a worker") == 1, "refusals are logged once per interval"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("guarded")
    server = Server(tmp, env={"SCATTERSCRIBE_ACCESS_TOKEN": ACCESS})
    yield server
    server.stop()


def test_access_token_guards_the_api_and_the_page(guarded):
    """With an access token set, the API answers 401 without it and 200 with it (header, or the cookie the page
    URL sets); a wrong one is refused."""
    url = guarded.url
    denied = requests.get(f"{url}/api/jobs", timeout=10)
    assert denied.status_code == 401 and "access token" in denied.json()["error"]
    assert requests.get(f"{url}/api/jobs", headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
    assert requests.get(f"{url}/api/jobs", headers={"Authorization": f"Bearer {ACCESS}"}, timeout=10).ok
    assert requests.get(f"{url}/", timeout=10).status_code == 401
    browser = requests.Session()
    page = browser.get(f"{url}/?access_token={ACCESS}", timeout=10)
    assert page.ok and "Scatterscribe" in page.text
    assert browser.get(f"{url}/api/jobs", timeout=10).ok  # the cookie carries it from now on


def test_access_token_guards_page_sockets_but_not_workers(guarded):
    """A page socket without the access token is refused, with it accepted; workers use their own token."""
    anonymous = socketio.Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        anonymous.connect(guarded.url, transports=["websocket"], wait_timeout=5)
    page = socketio.Client()
    page.connect(guarded.url, auth={"access_token": ACCESS}, transports=["websocket"], wait_timeout=5)
    assert page.connected
    page.disconnect()
    worker = Worker(guarded, "allowed")
    try:
        assert guarded.wait_workers(1)[0]["name"] == "allowed"
    finally:
        worker.stop()


def test_the_server_binds_loopback_unless_told(tmp_path):
    """By default the server listens on 127.0.0.1 only."""
    assert Settings().server.host == "127.0.0.1"
    server = Server(tmp_path)
    try:
        listening = [c.laddr for c in psutil.Process(server.pid).net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening)
    finally:
        server.stop()


def test_oversized_socket_messages_are_dropped_and_the_server_keeps_serving(tmp_path):
    """A message over max_message_mb closes the sender's connection; nothing else is affected."""
    server = Server(tmp_path, config=write_config(tmp_path / "c.toml", server={"max_message_mb": 1.0}))
    try:
        flooder = socketio.Client(reconnection=False)
        flooder.connect(server.url, namespaces=["/worker"], transports=["websocket"], wait_timeout=5,
                        auth={"token": TOKEN, "name": "flooder"})
        server.wait_workers(1)
        flooder.emit("result", {"lease": "x", "job": "y", "index": 0, "text": "a" * 2_000_000}, namespace="/worker")
        wait_for(lambda: not flooder.connected, 20, "the server to drop the oversized sender")
        wait_for(lambda: server.workers() == [], 20, "the flooder to leave the worker list")
        assert server.get("/api/workers").ok
        assert server.upload(corpus_file("jfk_inaugural_excerpt.wav")).status_code == 202
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["/api/jobs/..%2F..%2Fetc%2Fpasswd/audio.wav", "/api/jobs/../../etc/passwd",
                                  "/api/jobs/a.b/transcript.txt", "/static/../server/app.py"])
def test_paths_from_clients_never_reach_the_file_system(guarded, path):
    """Job ids and static paths that try to climb out of the data or web folder get 404, never a file."""
    response = requests.get(guarded.url + path, headers={"Authorization": f"Bearer {ACCESS}"}, timeout=10)
    assert response.status_code == 404
    assert "root:" not in response.text and "create_app" not in response.text


def _raw_request(server: Server, method: str, path: str) -> tuple[int, str]:
    """A request sent byte for byte as given (no client-side normalisation of ``%2e`` or ``..``)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


HOSTILE_IDS = ["%2e%2e", "%2e", "..", ".", "%2e%2e%2f%2e%2e", "..%2f..", "%2E%2E", "..%5c..", "%00", "jobs",
               "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "0123456789abcde%2e"]


def test_a_job_id_of_any_other_form_touches_nothing(tmp_path):
    """The probe's request (`DELETE /api/jobs/%2e%2e`, sent as is) and its relatives, on every job route: each
    gets a 404 with a sentence, and the data folder's jobs/, the database and every job's audio are still there;
    uploads still work afterwards."""
    server = Server(tmp_path)
    try:
        job_id = server.submit(corpus_file("ljspeech_LJ001-0001.wav"))
        jobs = server.data_dir / "jobs"
        audio = jobs / job_id / "audio.wav"
        before = sorted(p.name for p in server.data_dir.iterdir())
        assert audio.exists()
        for bad in HOSTILE_IDS:
            for method, suffix in [("DELETE", ""), ("GET", ""), ("GET", "/audio.wav"), ("GET", "/peaks.json"),
                                   ("GET", "/transcript.txt")]:
                status, body = _raw_request(server, method, f"/api/jobs/{bad}{suffix}")
                assert status == 404, (method, bad, suffix, status, body)
                assert "error" in body, body
            assert audio.exists() and jobs.is_dir(), f"DELETE /api/jobs/{bad} touched the data folder"
        assert sorted(p.name for p in server.data_dir.iterdir()) == before
        assert server.job(job_id)["id"] == job_id
        assert server.upload(corpus_file("ljspeech_LJ001-0002.wav")).status_code == 202
        # The real id still deletes its own job, and only it.
        assert _raw_request(server, "DELETE", f"/api/jobs/{job_id}")[0] == 200
        assert not (jobs / job_id).exists() and jobs.is_dir()
    finally:
        server.stop()


def test_token_guessing_is_slowed_per_address_and_logged_once(tmp_path):
    """The probe: wrong access tokens as fast as one client can send them for 4 s, then 40 worker connections
    with wrong tokens. After the first 10 wrong guesses each address waits (1 s, then twice as long after each
    further one) before another guess is even checked: the rest get 429 with a Retry-After and a sentence, or
    a refused Socket.IO connection saying to wait. Another address is not slowed; the right token works again
    once the wait is over; the log holds one line for each kind, not one per guess."""
    server = Server(tmp_path, env={"SCATTERSCRIBE_ACCESS_TOKEN": ACCESS})
    try:
        session = requests.Session()
        statuses = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.0:
            response = session.get(f"{server.url}/api/jobs", headers={"Authorization": "Bearer xyzzy-77"}, timeout=10)
            statuses.append(response.status_code)
        checked = statuses.count(401)
        assert 10 <= checked <= 13 and statuses.count(429) == len(statuses) - checked > 100, statuses[:20]
        throttled = session.get(f"{server.url}/api/jobs", headers={"Authorization": "Bearer xyzzy-77"}, timeout=10)
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
        assert "too many failed attempts from your address" in throttled.json()["error"]
        elsewhere = requests.Session()
        elsewhere.mount("http://", SourceAddressAdapter("127.0.0.2"))
        assert elsewhere.get(f"{server.url}/api/jobs", headers={"Authorization": f"Bearer {ACCESS}"},
                             timeout=10).ok

        refusals: list[str] = []
        for n in range(40):
            guesser = socketio.Client(reconnection=False)
            guesser.on("connect_error", lambda data: refusals.append(data.get("message", "")), namespace="/worker")
            with pytest.raises(socketio.exceptions.ConnectionError):
                guesser.connect(server.url, namespaces=["/worker"], transports=["websocket"], wait_timeout=5,
                                auth={"token": f"wrong-{n}", "name": "guesser"})
        assert len(refusals) == 40 and all("too many failed attempts" in r for r in refusals), refusals[:3]

        wait = int(throttled.headers["Retry-After"])
        retry = wait_for(lambda: session.get(f"{server.url}/api/jobs", timeout=10,
                                             headers={"Authorization": f"Bearer {ACCESS}"}).ok, wait + 70,
                         "the wait to pass", interval=1.0)
        assert retry
        log = server.log()
        assert log.count("refused a request with a wrong or missing access token") == 1
        assert log.count("refused a worker") == 1 and "xyzzy" not in log and "wrong-1" not in log
    finally:
        server.stop()


class SourceAddressAdapter(requests.adapters.HTTPAdapter):
    """Requests from another loopback address (127.0.0.0/8 all reach this machine): another client."""

    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)
