"""The whole loop with real parts: server and worker processes on 127.0.0.1, the real model, real speech."""

from __future__ import annotations

import signal
import wave

import numpy as np
import pytest
import requests
import socketio

from tests.support import (
    ROOT,
    TOKEN,
    Server,
    Worker,
    corpus_file,
    free_port,
    manifest,
    normalise,
    wait_for,
    wer,
    write_config,
)

#: Long corpus recordings with trustworthy references (tier C is for timing only).
LONG = sorted(name for name, row in manifest().items() if float(row["seconds"]) > 20 and row["tier"] != "C")
BUSH = "bush_radio_address_2008-11-01.wav"  # 127 s, five slices


def test_split_and_scattered_text_is_as_good_as_the_whole_file(cluster, whole_file_text):
    """Two workers transcribe the long recordings; pooled WER is within 2 points of the same model run on each
    whole file, and both workers took part."""
    server, _ = cluster
    ids = {name: server.submit(corpus_file(name)) for name in LONG}
    jobs = {name: server.wait_job(job_id) for name, job_id in ids.items()}
    refs = [manifest()[name]["reference"] for name in LONG]
    split = wer(refs, [jobs[name]["transcript"] for name in LONG])
    whole = wer(refs, [whole_file_text(name) for name in LONG])
    print(f"pooled WER over {len(LONG)} long recordings: split {split:.2f} %, whole file {whole:.2f} %")
    assert split <= whole + 2.0
    assert all(job["status"] == "done" for job in jobs.values())
    assert {s["worker"] for job in jobs.values() for s in job["slices"]} == {"alpha", "beta"}
    for job in jobs.values():
        assert job["transcript"] == " ".join(s["text"] for s in job["slices"] if s["text"])


def test_every_word_is_timed_on_the_recording(cluster):
    """A recording cut into several slices: every segment carries its words, each with a probability and
    times on the recording's timeline inside its own slice, in order across the job; the words spell the
    segment's text; the JSON export carries them and each segment's avg_logprob."""
    server, _ = cluster
    job = server.wait_job(server.submit(corpus_file("librivox_shakespeare_sonnet_001.wav")))
    assert job["status"] == "done" and len(job["slices"]) >= 2
    last = 0.0
    for s in job["slices"]:
        for seg in s["segments"]:
            assert seg["words"] and isinstance(seg["avg_logprob"], float)
            assert normalise(" ".join(w["word"] for w in seg["words"])) == normalise(seg["text"])
            for w in seg["words"]:
                assert max(s["start"], last) <= w["start"] <= w["end"] <= s["end"] + 0.05
                assert 0.0 <= w["probability"] <= 1.0 and w["word"] == w["word"].strip()
                last = w["start"]
    exported = server.get(f"/api/jobs/{job['id']}/transcript.json").json()["segments"]
    assert exported and all(seg["words"] and "avg_logprob" in seg for seg in exported)


def test_pages_see_the_transcript_grow_in_order(cluster):
    """A page watching a job is pushed the slices as they land (results within ``push_interval_s`` of each other
    share a push; each push after the first carries only the slices that changed since the one before): the
    page's copy, changes put in place as web/app.js does, holds the text of the slices done so far, in recording
    order, whatever order they finish in, and ends as the stored job."""
    server, _ = cluster
    pushes: list[dict] = []
    page = socketio.Client()
    page.on("job", lambda view: pushes.append(view))
    page.connect(server.url, transports=["websocket"], wait_timeout=10)
    try:
        job_id = server.submit(corpus_file(BUSH))
        held = page.call("watch", {"job": job_id}, timeout=10)
        assert held["id"] == job_id
        final = server.wait_job(job_id)
        wait_for(lambda: any(p["status"] == "done" for p in pushes), 10, "the final push")
    finally:
        page.disconnect()
    mine = [p for p in pushes if p["id"] == job_id]
    assert any(p.get("slice_changes") for p in mine), "later pushes carry only what changed"
    done_counts = []
    for pushed in mine:
        if pushed.get("slice_changes"):
            slices = held["slices"][:pushed["slice_count"]]
            for s in pushed["slices"]:
                slices[s["index"]] = s
            held = {**pushed, "slices": slices}
        else:
            held = pushed
        done = [s for s in held["slices"] if s["status"] == "done"]
        assert held["progress"]["done"] == len(done)
        done_counts.append(len(done))
    assert done_counts == sorted(done_counts), "pushes arrive in the order things happened"
    assert len(set(done_counts)) >= 2 and done_counts[-1] == final["progress"]["total"], "the text grew, then ended"
    assert [(s["status"], s["text"]) for s in held["slices"]] == [(s["status"], s["text"]) for s in final["slices"]]


@pytest.fixture
def pair(tmp_path):
    """A server without straggler duplicates and two one-thread workers: who finishes what is up to the test."""
    config = write_config(tmp_path / "config.toml", scheduler={"straggler_factor": 1000.0})
    server = Server(tmp_path, config=config)
    workers = {name: Worker(server, name) for name in ("one", "two")}
    server.wait_workers(2)
    yield server, workers
    for w in workers.values():
        if w.alive():
            w.signal(signal.SIGCONT)
        w.stop()
    server.stop()


def wait_slice_leased(server: Server, job_id: str, index: int) -> str:
    def leased():
        s = server.job(job_id)["slices"][index]
        return s["worker"] if s["status"] == "leased" else None
    return wait_for(leased, 60, f"slice {index} to be handed out", interval=0.02)


def test_slices_come_back_in_order_when_workers_finish_out_of_order(pair, whole_file_text):
    """The worker holding slice 0 is paused (SIGSTOP) until the other has finished every later slice; the
    transcript still reads in recording order."""
    server, workers = pair
    job_id = server.submit(corpus_file(BUSH))
    slow = workers[wait_slice_leased(server, job_id, 0)]
    slow.signal(signal.SIGSTOP)
    try:
        def rest_done():
            slices = server.job(job_id)["slices"]
            return all(s["status"] == "done" for s in slices[1:]) and slices
        slices = wait_for(rest_done, 90, "the other worker to finish slices 1..n")
        assert slices[0]["status"] == "leased" and slices[0]["worker"] == slow.name
    finally:
        slow.signal(signal.SIGCONT)
    job = server.wait_job(job_id)
    assert job["slices"][0]["worker"] == slow.name
    assert all(s["worker"] != slow.name for s in job["slices"][1:])
    assert job["transcript"].startswith(job["slices"][0]["text"])
    assert job["transcript"] == " ".join(s["text"] for s in job["slices"])
    assert wer(whole_file_text(BUSH), job["transcript"]) < 8.0


def test_a_worker_killed_mid_slice_loses_nothing(pair, whole_file_text):
    """SIGKILL a worker while it holds a slice: the other worker finishes the job, every slice exactly once."""
    server, workers = pair
    job_id = server.submit(corpus_file(BUSH))
    victim = workers[wait_slice_leased(server, job_id, 1)]
    victim.kill()
    job = server.wait_job(job_id)
    assert job["status"] == "done"
    assert [s["status"] for s in job["slices"]] == ["done"] * len(job["slices"])
    assert job["slices"][1]["worker"] != victim.name and job["slices"][1]["attempts"] == 2
    assert job["transcript"] == " ".join(s["text"] for s in job["slices"])
    whole = whole_file_text(BUSH)
    assert wer(whole, job["transcript"]) < 8.0
    assert abs(len(job["transcript"].split()) - len(whole.split())) <= 0.05 * len(whole.split())  # none twice


def test_wrong_or_missing_token_is_refused(cluster):
    """A worker with a wrong token is refused and exits; one with none refuses to start; neither joins."""
    server, _ = cluster
    before = {w["name"] for w in server.workers()}
    wrong = Worker(server, "intruder", token="not-the-token")
    assert wrong.proc.wait(timeout=60) == 3
    assert "refused" in wrong.log()
    missing = Worker(server, "nobody", token=None)
    assert missing.proc.wait(timeout=60) == 2
    assert "no token" in missing.log()
    sio = socketio.Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(server.url, namespaces=["/worker"], auth={"token": TOKEN + "x", "name": "raw"},
                    transports=["websocket"], wait_timeout=5)
    assert {w["name"] for w in server.workers()} == before


def write_wav(path, samples, rate=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, np.int16).tobytes())
    return path


def test_bad_uploads_get_a_4xx_with_a_message_and_the_server_keeps_serving(cluster, tmp_path):
    """A text file, nothing in 'audio', no multipart, a cut-off file: each a 4xx JSON error; then a good upload
    still works."""
    server, _ = cluster
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 100)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(corpus_file("jfk_inaugural_excerpt.wav").read_bytes()[:20_000])
    responses = [
        server.upload(text),
        server.upload(corpus_file("jfk_inaugural_excerpt.wav"), field="file"),
        requests.post(f"{server.url}/api/jobs", data=b"RIFF....", timeout=10),
        server.upload(cut),
    ]
    expected = ["this is a text file", "field 'audio'", "multipart", "truncated"]
    for response, words in zip(responses, expected, strict=False):
        assert 400 <= response.status_code < 500
        assert words in response.json()["error"]
    job = server.wait_job(server.submit(corpus_file("jfk_inaugural_excerpt.wav")))
    assert wer(manifest()["jfk_inaugural_excerpt.wav"]["reference"], job["transcript"]) < 15


def test_no_speech_gives_an_empty_transcript_that_says_so(cluster, tmp_path):
    """A recording with sound but no speech (a steady hum) finishes at once with no text and the note 'no speech
    found'; one with nothing at all (digital near-silence) is refused with a sentence saying it is silent."""
    server, _ = cluster
    quiet = server.upload(write_wav(tmp_path / "quiet.wav", np.random.default_rng(0).normal(0, 2, 16000 * 20)))
    assert quiet.status_code == 400 and "the recording is silent" in quiet.json()["error"]
    t = np.arange(16000 * 20) / 16000
    path = write_wav(tmp_path / "hum.wav", 1000 * np.sin(2 * np.pi * 50 * t))
    response = server.upload(path)
    assert response.status_code == 202
    job = server.job(response.json()["id"])
    assert job["status"] == "done" and job["transcript"] == "" and job["note"] == "no speech found"
    assert server.get(f"/api/jobs/{job['id']}/transcript.txt").text.strip() == "no speech found"


def test_one_machine_works_out_of_the_box(tmp_path):
    """`python -m server` alone starts its own local worker and transcribes an upload."""
    server = Server(tmp_path, local_workers=1)
    try:
        workers = server.wait_workers(1)
        assert workers[0]["name"] == "local-1" and workers[0]["engine"] == "faster-whisper"
        job = server.wait_job(server.submit(corpus_file("jfk_inaugural_excerpt.wav")))
        assert wer(manifest()["jfk_inaugural_excerpt.wav"]["reference"], job["transcript"]) < 15
    finally:
        server.stop()
    assert "started local worker local-1" in server.log()


def test_client_script_runs_from_inside_its_folder_and_waits_for_the_server(tmp_path):
    """`python client.py` inside client/ works, and a worker started before its server keeps trying until the
    server is up."""
    port = free_port()
    probe = type("S", (), {"url": f"http://127.0.0.1:{port}", "log_path": tmp_path / "server.log"})
    worker = Worker(probe, "early", cwd=ROOT / "client", entry=["client.py"])
    try:
        wait_for(lambda: "retrying" in worker.log(), 60, "the worker to report the server unreachable")
        server = Server(tmp_path, port=port)
        try:
            assert server.wait_workers(1, timeout=90)[0]["name"] == "early"
            job = server.wait_job(server.submit(corpus_file("jfk_inaugural_excerpt.wav")))
            assert job["slices"][0]["worker"] == "early"
            assert job["transcript"]
        finally:
            server.stop()
    finally:
        worker.stop()


def test_transcript_downloads(cluster):
    """.txt, .srt, .vtt and .json downloads of a finished job agree with the job's text."""
    server, _ = cluster
    job = server.wait_job(server.submit(corpus_file("ls_dev-clean_2412-153948-0000.wav")))
    txt = server.get(f"/api/jobs/{job['id']}/transcript.txt")
    assert txt.ok and " ".join(txt.text.split()) == job["transcript"]  # the same words, in paragraphs
    srt = server.get(f"/api/jobs/{job['id']}/transcript.srt").text
    assert srt.startswith("1\n00:00:0") and "-->" in srt
    assert server.get(f"/api/jobs/{job['id']}/transcript.vtt").text.startswith("WEBVTT")
    data = server.get(f"/api/jobs/{job['id']}/transcript.json").json()
    assert {s["slice"] for s in data["segments"]} == {s["index"] for s in job["slices"]}
    assert [s["worker"] for s in data["slices"]] == [s["worker"] for s in job["slices"]]
    assert server.get(f"/api/jobs/{job['id']}/transcript.doc").status_code == 404
    assert any(j["id"] == job["id"] for j in server.get("/api/jobs").json()["jobs"])


def test_a_default_worker_does_not_load_torch(cluster):
    """A worker on the default engine runs without torch (it would add ~2 GB to every worker machine)."""
    _, workers = cluster
    for worker in workers:
        with open(f"/proc/{worker.pid}/maps") as maps:
            mapped = maps.read()
        assert "ctranslate2" in mapped  # the engine is loaded...
        assert "libtorch" not in mapped and "/torch/" not in mapped  # ...and torch is not


@pytest.mark.parametrize("mode", ["eventlet", "threading"])
def test_the_core_loop_runs_under_each_async_mode(tmp_path, whole_file_text, mode):
    """`[server] async_mode` is the one setting that picks the server's concurrency (eventlet, the default, or
    threading, without eventlet at all): under each, the server says so at start and is served by that mode's
    HTTP server (Werkzeug's names itself in `Server`; eventlet's sends none), and an upload is cut, scattered to a
    real worker and joined with the whole file's accuracy; a watching page gets the pushes; the server stops
    cleanly (exit 0). Under threading, eventlet is never loaded into the server's process."""
    config = write_config(tmp_path / "config.toml", server={"async_mode": mode})
    server = Server(tmp_path, config=config)
    worker = Worker(server, "threaded" if mode == "threading" else "green")
    page = socketio.Client()
    pushes: list[dict] = []
    try:
        assert f"(async mode {mode};" in server.log()
        assert server.get("/api/workers").headers.get("Server", "").startswith("Werkzeug/") == (mode == "threading")
        server.wait_workers(1)
        page.on("job", pushes.append)
        page.connect(server.url, transports=["websocket"], wait_timeout=10)
        job_id = server.submit(corpus_file(BUSH))
        page.call("watch", {"job": job_id}, timeout=10)
        job = server.wait_job(job_id)
        assert job["status"] == "done" and len(job["slices"]) >= 2
        assert {s["worker"] for s in job["slices"]} == {worker.name}
        reference = manifest()[BUSH]["reference"]
        assert wer(reference, job["transcript"]) <= wer(reference, whole_file_text(BUSH)) + 2.0
        wait_for(lambda: any(p["status"] == "done" for p in pushes), 10, "the page to be told the job is done")
        with open(f"/proc/{server.pid}/maps") as maps:  # eventlet runs on greenlet, a C extension
            assert ("greenlet" in maps.read()) == (mode == "eventlet"), "eventlet loaded exactly in its own mode"
    finally:
        if page.connected:
            page.disconnect()
        worker.stop()
        assert server.stop() == 0
