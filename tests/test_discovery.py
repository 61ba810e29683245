"""Workers that find the server on the LAN (server/announce.py, client/discover.py), on a real network: two
network namespaces joined by a veth pair, the server in one and the worker in the other, mDNS between them.
A third link joins the server's namespace to this one so the test can upload and read the page. Needs root
(``ip netns``), as CI runs."""

from __future__ import annotations

import os
import shlex
import subprocess
import uuid

import pytest
from playwright.sync_api import sync_playwright

from tests.support import PYTHON, TOKEN, Process, Server, corpus_file, manifest, wait_for, wer
from tests.test_web import launch, open_page

SPEECH = "jfk_inaugural_excerpt.wav"
LAN = ("10.231.0.1", "10.231.0.2")  # the server's and the worker's ends of the LAN link
TEST_LINK = ("10.232.0.1", "10.232.0.2")  # the server's and this namespace's ends of the test's own link


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def lan():
    """Namespaces ``server`` and ``worker`` joined by a veth pair (multicast routed over it), and a veth from
    the server's namespace to this one. Yields the ``ip netns exec`` prefix of each."""
    tag = uuid.uuid4().hex[:6]
    server_ns, worker_ns = f"ss-srv-{tag}", f"ss-wrk-{tag}"
    lan_a, lan_b, test_a, test_b = (f"ss{x}{tag}" for x in ("la", "lb", "ta", "tb"))
    ip("netns", "add", server_ns)
    ip("netns", "add", worker_ns)
    try:
        ip("link", "add", lan_a, "type", "veth", "peer", "name", lan_b)
        ip("link", "set", lan_a, "netns", server_ns)
        ip("link", "set", lan_b, "netns", worker_ns)
        ip("link", "add", test_a, "type", "veth", "peer", "name", test_b)
        ip("link", "set", test_a, "netns", server_ns)
        for ns, dev, address in ((server_ns, lan_a, LAN[0]), (worker_ns, lan_b, LAN[1]),
                                 (server_ns, test_a, TEST_LINK[0])):
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        for ns, dev in ((server_ns, lan_a), (worker_ns, lan_b)):
            ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)  # mDNS goes out on the LAN link
        ip("addr", "add", f"{TEST_LINK[1]}/24", "dev", test_b)
        ip("link", "set", test_b, "up")
        yield {"server": ("ip", "netns", "exec", server_ns), "worker": ("ip", "netns", "exec", worker_ns)}
    finally:
        subprocess.run(["ip", "link", "del", test_b], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", server_ns], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", worker_ns], capture_output=True, timeout=30)


def worker_in(lan: dict, tmp_path, name: str, command: str) -> Process:
    """A worker process in the worker's namespace, run from ``command`` as the page writes it (its token
    given in the environment instead of the page's placeholder)."""
    token, python, rest = command.partition(".venv/bin/python ")
    assert token.startswith("SCATTERSCRIBE_TOKEN=") and python, command
    return Process([*lan["worker"], PYTHON, *shlex.split(rest), "--name", name, "--threads", "1"],
                   tmp_path / f"worker-{name}.log", env={"SCATTERSCRIBE_TOKEN": TOKEN})


def test_a_worker_with_no_server_finds_the_announced_one_and_transcribes(lan, tmp_path):
    """An https server on the LAN announces itself; the page's worker command is the shortest that works there
    (no --server, the certificate's --fingerprint); that command, run in the other namespace, prints the server
    it found, connects and transcribes a job."""
    server = Server(tmp_path, flags=("--self-signed",), host="0.0.0.0", reach=TEST_LINK[0], wrap=lan["server"])
    worker = None
    try:
        setup = server.get("/api/worker-setup").json()
        assert setup["announced"] is True and setup["fingerprint"] and setup["token_file"] is None, setup
        with sync_playwright() as playwright:
            browser = launch(playwright, "--ignore-certificate-errors")
            try:
                page = open_page(browser, server.url)
                page.wait_for_function("document.getElementById('worker-command').textContent.includes('client')")
                command = page.text_content("#worker-command")
            finally:
                browser.close()
        assert command == ("SCATTERSCRIBE_TOKEN=<the token the server was started with> .venv/bin/python -m client "
                           f"--fingerprint {setup['fingerprint']}"), command
        worker = worker_in(lan, tmp_path, "found-it", command)
        server.wait_workers(1, timeout=120)
        assert f"found Scatterscribe on {os.uname().nodename.split('.')[0]} ({server.port}) at " \
               f"https://{LAN[0]}:{server.port}" in worker.log(), worker.log()
        job = server.wait_job(server.submit(corpus_file(SPEECH)))
        assert job["status"] == "done" and wer(manifest()[SPEECH]["reference"], job["transcript"]) < 20
    finally:
        if worker is not None:
            worker.stop()
        server.stop()


def test_with_several_servers_in_sight_the_worker_lists_them_and_asks_for_one(lan, tmp_path):
    """Two servers announced on the LAN: a worker with no --server names both and exits (code 2) asking for
    --server; with --no-announce a server is not in the list."""
    for name in ("one", "two", "hidden"):
        (tmp_path / name).mkdir()
    servers = [Server(tmp_path / name, host="0.0.0.0", reach=TEST_LINK[0], wrap=lan["server"], name=name)
               for name in ("one", "two")]
    hidden = Server(tmp_path / "hidden", host="0.0.0.0", reach=TEST_LINK[0], wrap=lan["server"],
                    flags=("--no-announce",), name="hidden")
    try:
        worker = worker_in(lan, tmp_path, "puzzled", "SCATTERSCRIBE_TOKEN=x .venv/bin/python -m client")
        assert worker.proc.wait(timeout=120) == 2
        log = worker.log()
        assert "2 Scatterscribe servers are announced" in log and "--server" in log, log
        for server in servers:
            assert f"http://{LAN[0]}:{server.port}" in log, log
        assert str(hidden.port) not in log
        wait_for(lambda: not worker.alive(), 10, "the worker to exit")
    finally:
        for server in [*servers, hidden]:
            server.stop()
