"""Stopping for real: the server and workers given Ctrl-C or SIGTERM mid-job. The server exits 0 within 10 s
with no traceback, its slices out back in the queue (in SQLite, the tries not counted), its local workers
stopped (one that does not answer SIGTERM killed); a worker hands back what it holds and exits 0."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import psutil
import pytest

from tests.support import Server, Worker, corpus_file, wait_for, write_config

BUSH = "bush_radio_address_2008-11-01.wav"  # 127 s: 12 s and more of work per slice at the sleep speed used
JFK = "jfk_inaugural_excerpt.wav"  # 11 s: one slice
TROUBLE = ("Traceback", "RuntimeError", "Unknown receive error", "SystemExit")


def slices_in_store(server: Server) -> list[tuple[str, int]]:
    db = sqlite3.connect(server.data_dir / "scatterscribe.db")
    try:
        return db.execute("SELECT status, attempts FROM slices ORDER BY idx").fetchall()
    finally:
        db.close()


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_the_server_stops_cleanly_mid_job(tmp_path, how):
    """Three slices out (two local workers, one remote). SIGTERM to the server, with one local worker frozen
    so that it cannot act on its own SIGTERM; or Ctrl-C, which a terminal sends to the server and its local
    workers together. Either way: exit 0 within 10 s, no traceback, every slice that was out stored as queued
    with its try given back, local workers gone (the frozen one killed), SQLite closed; the remote worker
    carries on and finishes the job with the server started again."""
    config = write_config(tmp_path / "c.toml", worker={"engine": "sleep", "model": "0.5", "slots": 1})
    server = Server(tmp_path, local_workers=2, config=config)
    remote = Worker(server, "remote", "--engine", "sleep", "--model", "0.5")
    try:
        server.wait_workers(3)
        job_id = server.submit(corpus_file(BUSH))
        wait_for(lambda: sum(s["status"] == "leased" for s in server.job(job_id)["slices"]) == 3, 30,
                 "three slices out")
        local = psutil.Process(server.pid).children()
        assert len(local) == 2
        t0 = time.monotonic()
        if how == "SIGTERM":
            os.kill(local[0].pid, signal.SIGSTOP)  # it will never act on the SIGTERM it is sent
            server.signal(signal.SIGTERM)
        else:
            os.killpg(server.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert server.proc.wait(timeout=20) == 0
        assert time.monotonic() - t0 < 10
        log = server.log()
        assert not [word for word in TROUBLE if word in log], log
        assert "stopped; 3 slice(s) that were out are back in the queue" in log
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in local)
        if how == "SIGTERM":
            assert "did not stop within 5 s of SIGTERM: killed" in log
            assert "local worker local-2 stopped (exit code 0)" in log or \
                "local worker local-1 stopped (exit code 0)" in log
        else:
            assert log.count("stopped (exit code 0)") == 2
        stored = slices_in_store(server)
        assert {status for status, _ in stored} == {"queued"}, "nothing was done yet, and nothing is left leased"
        assert all(attempts == 0 for _, attempts in stored), "a try cut short by the server is not counted"
        assert remote.alive()
        server.stop()

        server.start()  # same port, same data folder
        server.wait_ready()
        job = server.wait_job(job_id, timeout=120)
        assert job["status"] == "done" and all(s["attempts"] == 1 for s in job["slices"])
    finally:
        remote.stop()
        server.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_worker_stopped_hands_back_its_slice_and_exits_0(tmp_path, sig):
    """A worker holding a slice (22 s of work) is given SIGTERM or Ctrl-C: it tells the server, which queues the
    slice again at once without counting the try, exits 0 within 5 s, and another worker finishes the job."""
    server = Server(tmp_path)
    leaving = Worker(server, "leaving", "--engine", "sleep", "--model", "2")
    other = None
    try:
        server.wait_workers(1)
        job_id = server.submit(corpus_file(JFK))
        wait_for(lambda: server.job(job_id)["slices"][0]["worker"] == "leaving", 30, "the slice to go out")
        other = Worker(server, "other", "--engine", "sleep", "--model", "0.05")
        server.wait_workers(2)
        t0 = time.monotonic()
        leaving.signal(sig)
        assert leaving.proc.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 5
        assert "handed back 1 slice(s) (taken)" in leaving.log()
        assert "Traceback" not in leaving.log()
        job = server.wait_job(job_id, timeout=20)
        assert job["slices"][0]["worker"] == "other" and job["slices"][0]["attempts"] == 1
        assert "worker leaving is stopping; it handed back 1 slice(s)" in server.log()
    finally:
        for w in (leaving, other):
            if w is not None:
                w.stop()
        server.stop()
