"""The server's own local workers, as real processes: started with the server, started again when one dies."""

from __future__ import annotations

import signal

import psutil

from tests.support import Server, wait_for


def _local_worker_pids(server: Server) -> list[int]:
    return [p.pid for p in psutil.Process(server.pid).children(recursive=True)
            if "client" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE]


def test_a_local_worker_that_dies_is_started_again(tmp_path):
    """Kill the local worker (SIGKILL): the server logs it, starts a new process after its short pause, and the
    new one connects under the same name."""
    server = Server(tmp_path, local_workers=1)
    try:
        server.wait_workers(1, timeout=120)
        (first,) = wait_for(lambda: _local_worker_pids(server), 30, "the local worker process")
        psutil.Process(first).send_signal(signal.SIGKILL)
        wait_for(lambda: "local worker local-1 exited" in server.log(), 30, "the server to notice")
        second = wait_for(lambda: [p for p in _local_worker_pids(server) if p != first], 60,
                          "a new local worker process")
        assert first not in second
        wait_for(lambda: [w for w in server.workers() if w["name"] == "local-1"], 120,
                 "the restarted worker to connect")
        assert "started local worker local-1" in server.log().split("exited", 1)[1]
    finally:
        server.stop()
