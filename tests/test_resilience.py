"""Nothing lost, nothing forged: real servers and workers killed, stalled, broken and abused on purpose."""

from __future__ import annotations

import concurrent.futures
import re
import signal

import pytest

from tests.support import ROOT, RawWorker, Server, Worker, corpus_file, manifest, wait_for, wer, write_config

BUSH = "bush_radio_address_2008-11-01.wav"  # 127 s: five slices
JFK = "jfk_inaugural_excerpt.wav"
FAULTY = [str(ROOT / "tests" / "faulty_worker.py")]


def results_logged(*workers: Worker, since: int = 0) -> list[tuple[str, int]]:
    """(job, index) of every result the workers delivered and the server accepted, from their own log lines
    (from character ``since`` of each log on)."""
    found = []
    for w in workers:
        lines = re.findall(r"slice (\w+)/(\d+): [\d.]+ s of audio in .*?real time\)(.*)", w.log()[since:])
        found += [(job, int(index)) for job, index, tail in lines if not tail.strip()]
    return found


@pytest.fixture
def fast_leases(tmp_path):
    """Config with short heartbeats and leases, so a stalled worker is noticed in seconds."""
    return write_config(tmp_path / "config.toml", scheduler={"heartbeat_s": 0.5, "lease_timeout_s": 3.0,
                                                            "straggler_factor": 1000.0})


def test_server_killed_mid_job_resumes_without_redoing_finished_slices(tmp_path, fast_leases):
    """SIGKILL the server after some slices are done; restarted on the same data folder, it shows the job as
    before, the worker reconnects by itself, unfinished slices are sent again and finished ones are not redone."""
    server = Server(tmp_path, config=fast_leases)
    worker = Worker(server, "steady")
    try:
        server.wait_workers(1)
        job_id = server.submit(corpus_file(BUSH))
        before = wait_for(lambda: 2 <= (j := server.job(job_id))["progress"]["done"] < j["progress"]["total"] and j,
                          120, "some but not all slices to be done", interval=0.05)
        server.kill()
        done_before = {s["index"]: s for s in before["slices"] if s["status"] == "done"}
        log_mark = len(worker.log())

        server.start()  # same port, same data folder
        server.wait_ready()
        view = server.job(job_id)
        assert (view["name"], view["duration"]) == (before["name"], before["duration"])
        for index, s in done_before.items():
            assert view["slices"][index]["text"] == s["text"] and view["slices"][index]["status"] == "done"
        assert any(j["id"] == job_id for j in server.get("/api/jobs").json()["jobs"])

        job = server.wait_job(job_id, timeout=180)
        assert job["status"] == "done"
        for index, s in done_before.items():
            assert job["slices"][index]["finished_at"] == s["finished_at"]
            assert job["slices"][index]["text"] == s["text"]
        after_restart = {i for j, i in results_logged(worker, since=log_mark) if j == job_id}
        assert after_restart == {s["index"] for s in job["slices"]} - set(done_before)
        assert job["transcript"] == " ".join(s["text"] for s in job["slices"])
    finally:
        worker.stop()
        server.stop()


def test_errors_go_to_another_worker(tmp_path):
    """A worker whose engine fails on every slice reports errors; each slice is then done by the good worker."""
    server = Server(tmp_path)
    broken = Worker(server, "broken", entry=FAULTY + ["fail-over=0"])
    server.wait_workers(1)
    good = Worker(server, "good")
    try:
        server.wait_workers(2)
        job = server.wait_job(server.submit(corpus_file(BUSH)))
        assert job["status"] == "done"
        assert {s["worker"] for s in job["slices"]} == {"good"}
        assert "simulated engine failure" in broken.log()
        assert any(s["attempts"] >= 2 for s in job["slices"]), "the broken worker should have been tried"
    finally:
        for w in (broken, good):
            w.stop()
        server.stop()


def test_slices_that_always_fail_are_marked_failed_and_the_job_says_where(tmp_path):
    """With only a worker that fails on long slices, those slices fail after max_attempts with the reason; the
    job finishes with the text it has and names each failed time span — never a silent gap."""
    server = Server(tmp_path)
    worker = Worker(server, "picky", entry=FAULTY + ["fail-over=15"])
    try:
        server.wait_workers(1)
        job = server.wait_job(server.submit(corpus_file(BUSH)))
        failed = [s for s in job["slices"] if s["status"] == "failed"]
        done = [s for s in job["slices"] if s["status"] == "done"]
        assert failed and done and job["status"] == "done"
        for s in failed:
            assert s["attempts"] == 3 and "simulated engine failure" in s["error"]
            assert "could not be transcribed" in job["error"]
        assert job["transcript"].count("could not be transcribed") == len(failed)
        for s in done:
            assert s["text"] and s["text"] in job["transcript"]
        assert "could not be transcribed" in server.get(f"/api/jobs/{job['id']}/transcript.srt").text
    finally:
        worker.stop()
        server.stop()


def test_a_stalled_worker_loses_its_slice_when_heartbeats_stop(tmp_path, fast_leases):
    """SIGSTOP the worker holding a slice: after lease_timeout_s without heartbeats the slice goes to the other
    worker; when the stalled one wakes up, its late result is refused."""
    server = Server(tmp_path, config=fast_leases)
    workers = {n: Worker(server, n) for n in ("one", "two")}
    try:
        server.wait_workers(2)
        job_id = server.submit(corpus_file(BUSH))
        holder = wait_for(lambda: (s := server.job(job_id)["slices"][0])["status"] == "leased" and s["worker"],
                          60, "slice 0 to be handed out", interval=0.02)
        stalled = workers[holder]
        stalled.signal(signal.SIGSTOP)
        try:
            job = server.wait_job(job_id, timeout=180)
        finally:
            stalled.signal(signal.SIGCONT)
        assert job["status"] == "done" and job["slices"][0]["worker"] != holder
        assert job["slices"][0]["attempts"] == 2
        assert job["transcript"] == " ".join(s["text"] for s in job["slices"])
        delivered = results_logged(*workers.values())
        assert sorted(delivered) == sorted(set(delivered)), "a slice was accepted twice"
    finally:
        for w in workers.values():
            w.stop()
        server.stop()


def test_a_hung_worker_is_overtaken_by_a_duplicate(tmp_path):
    """A worker that keeps heartbeating but never answers: once the queue is empty and the slice is out far
    longer than predicted, an idle worker gets a duplicate; the first result wins and the hung one is told
    to drop it."""
    config = write_config(tmp_path / "config.toml", scheduler={"straggler_factor": 3.0, "straggler_min_s": 2.0})
    server = Server(tmp_path, config=config)
    good = Worker(server, "good")
    hung = None
    try:
        server.wait_workers(1)
        server.wait_job(server.submit(corpus_file(JFK)))  # measures the good worker's speed
        hung = Worker(server, "hung", entry=FAULTY + ["hang"])
        server.wait_workers(2)
        job = server.wait_job(server.submit(corpus_file(BUSH)), timeout=180)
        assert job["status"] == "done" and {s["worker"] for s in job["slices"]} == {"good"}
        assert job["transcript"] == " ".join(s["text"] for s in job["slices"])
        assert len(results_logged(good)) == len(set(results_logged(good)))
        assert re.search(rf"slice {job['id']}/\d+: done by good; cancel sent to hung", server.log()), \
            "the hung worker should be told to drop its copy"
    finally:
        for w in (good, hung):
            if w is not None:
                w.stop()
        server.stop()


def test_forged_and_oversized_results_are_refused(tmp_path):
    """A connected worker cannot answer for a slice it does not hold (made-up lease, someone else's lease,
    another job); an oversized text counts as an error; the real worker's text is what the job keeps."""
    server = Server(tmp_path)
    forger = RawWorker(server, "forger")
    thief = real = None
    try:
        server.wait_workers(1)
        job_id = server.submit(corpus_file(JFK))
        lease = forger.wait_slice()
        assert lease["job"] == job_id
        thief = RawWorker(server, "thief", max_slice_s=1.0)  # connected, but no slice fits it
        refused = {"ok": False, "error": "you do not hold this slice"}
        assert forger.result(lease, "forged words", lease="0" * 32) == refused
        assert forger.result(lease, "forged words", job="0123456789abcdef") == refused  # another job
        assert forger.result(lease, "forged words", job="someotherjob0000") == {
            "ok": False, "error": "malformed result: job must be a job id (16 hex digits)"}
        assert forger.result(lease, "forged words", index=1) == refused
        assert thief.result(lease, "forged words") == refused  # a stolen lease id
        assert server.job(job_id)["slices"][0]["status"] == "leased"
        assert forger.result(lease, "x" * 20_001)["ok"] is True  # accepted as an error report, not as text
        real = Worker(server, "real")
        server.wait_workers(3)
        forger.wait_slice()  # nobody else could take it yet, so it came back to the forger...
        forger.sio.disconnect()  # ...which now leaves: the real worker gets it
        job = server.wait_job(job_id)
        assert "forged" not in job["transcript"] and "xxxx" not in job["transcript"]
        assert job["slices"][0]["worker"] == "real"
        assert wer(manifest()[JFK]["reference"], job["transcript"]) < 15
    finally:
        for raw in (forger, thief):
            if raw is not None and raw.sio.connected:
                raw.sio.disconnect()
        if real is not None:
            real.stop()
        server.stop()


def test_oversized_segment_text_counts_as_an_error_too(tmp_path):
    """A short text with one huge segment (3 MB) is not stored: like an over-long text it counts as an error for
    the slice, which goes out again; a proper answer then is what the job and its subtitles keep."""
    server = Server(tmp_path)
    raw = RawWorker(server, "padder")
    try:
        server.wait_workers(1)
        job_id = server.submit(corpus_file(JFK))
        lease = raw.wait_slice()
        huge = [{"start": 0.0, "end": 1.0, "text": "y" * 3_000_000}]
        assert raw.result(lease, "short", segments=huge) == {"ok": True}  # taken as an error report
        wait_for(lambda: len(raw.slices) >= 2, 30, "the slice to come back after the error")
        again = raw.wait_slice()
        assert again["job"] == job_id and again["lease"] != lease["lease"]
        retried = server.job(job_id)["slices"][0]
        assert retried["status"] == "leased" and retried["attempts"] == 2 and "over 20000" in retried["error"]
        assert raw.result(lease, "short", segments=huge[:0]) == {"ok": False, "error": "you do not hold this slice"}
        tidy = [{"start": 0.0, "end": 1.5, "text": "ask not"}, {"start": 1.5, "end": 3.0, "text": "what"}]
        assert raw.result(again, "ask not what", segments=tidy) == {"ok": True}
        job = server.wait_job(job_id, timeout=30)
        assert job["transcript"] == "ask not what" and "yyyy" not in job["transcript"]
        srt = server.get(f"/api/jobs/{job_id}/transcript.srt").text
        assert len(srt) < 1000 and "yyyy" not in srt and "ask not" in srt
    finally:
        if raw.sio.connected:
            raw.sio.disconnect()
        server.stop()


def test_twenty_jobs_at_once_with_four_workers(tmp_path):
    """20 uploads at the same time, 4 workers, short jobs of one slice and longer ones of several mixed:
    every job completes and every slice is accepted exactly once."""
    server = Server(tmp_path)
    workers = [Worker(server, f"w{n}") for n in range(4)]
    try:
        server.wait_workers(4, timeout=120)
        longer = ["osr_us_000_0034_harvard_list72.wav", "librivox_shakespeare_sonnet_001.wav",
                  "librivox_shakespeare_sonnet_002.wav", "ls_dev-clean_1272-128104-0004_8k.wav"]
        names = sorted(n for n in manifest() if n.startswith("ljspeech_"))[:16] + longer
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            ids = dict(zip(names, pool.map(lambda n: server.submit(corpus_file(n)), names), strict=False))
        jobs = {n: server.wait_job(i, timeout=300) for n, i in ids.items()}
        assert all(j["status"] == "done" for j in jobs.values())
        assert sum(len(j["slices"]) > 1 for j in jobs.values()) >= 3, "the load must include jobs of several slices"
        expected = sorted((j["id"], s["index"]) for j in jobs.values() for s in j["slices"])
        assert sorted(results_logged(*workers)) == expected
        trusted = [n for n in names if manifest()[n]["tier"] == "A"]  # the sonnets' references are tier B
        assert wer([manifest()[n]["reference"] for n in trusted], [jobs[n]["transcript"] for n in trusted]) < 12
        assert len({s["worker"] for j in jobs.values() for s in j["slices"]}) == 4
    finally:
        for w in workers:
            w.stop()
        server.stop()


def test_a_worker_drops_a_message_it_cannot_decode_with_a_line_in_its_log(caplog):
    """A slice's audio read as a packet of its own (the connection closed between the packet and its binary
    attachment) is dropped with a warning, not raised in python-socketio's thread; a real packet after it is
    still handled."""
    from client.connection import _Client

    client = _Client()
    seen = []
    client.on("cancel", lambda data: seen.append(data), namespace="/worker")
    client.namespaces["/worker"] = "sid"
    client._handle_eio_message(b"RIFF$\x00\x00\x00WAVEfmt ")
    assert "dropped a message cut short by the connection closing" in caplog.text
    client._handle_eio_message('2/worker,["cancel",{"lease":"x"}]')
    assert seen == [{"lease": "x"}]
