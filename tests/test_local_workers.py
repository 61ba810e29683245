"""The server's own local workers, as real processes: started with the server, started again when one dies."""

from __future__ import annotations

import signal

import psutil

from server.local_workers import HEALTHY_RUN_S, quick_exits_after, restart_delay_s
from tests.support import Server, corpus_file, manifest, wait_for, wer

JFK = "jfk_inaugural_excerpt.wav"  # 11 s


def _local_worker_pids(server: Server) -> list[int]:
    return [p.pid for p in psutil.Process(server.pid).children(recursive=True)
            if "client" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE]


def test_the_restart_pause_grows_while_a_worker_dies_young_and_starts_afresh_after_a_healthy_run():
    streak, delays = 0, []
    for _ in range(8):  # a worker that exits a second after every start
        streak = quick_exits_after(streak, ran_s=1.0)
        delays.append(restart_delay_s(streak))
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    streak = quick_exits_after(streak, ran_s=HEALTHY_RUN_S)  # then one that had served a while
    assert restart_delay_s(streak) == 2.0
    assert restart_delay_s(quick_exits_after(streak, ran_s=HEALTHY_RUN_S - 1)) == 4.0


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


def test_a_local_worker_killed_holding_a_slice_is_replaced_and_the_job_completes(tmp_path):
    """The only worker is the server's local one. It is frozen (SIGSTOP) so that it surely still holds the
    job's slice, then killed (SIGKILL): the server starts a new process, which connects as local-1 and
    transcribes the slice (its second try) and the rest of the job; one local worker is left, not two."""
    server = Server(tmp_path, local_workers=1)
    try:
        server.wait_workers(1, timeout=120)
        (first,) = wait_for(lambda: _local_worker_pids(server), 30, "the local worker process")
        psutil.Process(first).send_signal(signal.SIGSTOP)
        job_id = server.submit(corpus_file(JFK))
        held = wait_for(lambda: [s["index"] for s in server.job(job_id)["slices"] if s["status"] == "leased"], 30,
                        "the frozen local worker to be handed a slice", interval=0.05)
        psutil.Process(first).send_signal(signal.SIGKILL)
        job = server.wait_job(job_id, timeout=180)
        assert job["status"] == "done"
        assert {s["worker"] for s in job["slices"]} == {"local-1"}
        assert all(job["slices"][n]["attempts"] == 2 for n in held)
        assert wer(manifest()[JFK]["reference"], job["transcript"]) < 15
        assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE
        (second,) = _local_worker_pids(server)
        assert second != first
        assert [w["name"] for w in server.workers()] == ["local-1"]
        assert "local worker local-1 exited with code -9" in server.log()
    finally:
        server.stop()
