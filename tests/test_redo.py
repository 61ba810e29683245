"""Transcribe again (server/redo.py) with real processes: a server, a faster-whisper worker and two sleep-engine
workers (the sleep engine hears no words; its "text" says how much audio it was given, so who did a slice shows
in its text), a real corpus recording, and the page in Debian's Chromium for calling a waiting redo off.

The rules on their own (refusals, corrections kept until the new text, a failed new try) are in
tests/test_corrections.py; the page's "Transcribe again…" dialog in tests/test_job_page.py."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import sync_playwright

from tests.support import Server, Worker, corpus_file, launch_chromium, manifest, wait_for, wer

RECORDING = "jfk_inaugural_excerpt.wav"  # 11 s: one slice
SLOW = "20"  # the slow sleep worker's seconds per audio second: a slice it takes stays out for minutes


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A server, a faster-whisper worker "fw", a quick sleep worker "zz" and a slow one "slow", and RECORDING
    transcribed by faster-whisper (the job asks for it, so the sleep workers take none of its slices)."""
    tmp = tmp_path_factory.mktemp("redo")
    server = Server(tmp)
    workers = [Worker(server, "fw"), Worker(server, "zz", "--engine", "sleep", "--model", "0.05"),
               Worker(server, "slow", "--engine", "sleep", "--model", SLOW)]
    try:
        server.wait_workers(3, timeout=120)
        job = server.submit(corpus_file(RECORDING), engine="faster-whisper")
        view = server.wait_job(job)
        assert view["status"] == "done" and {s["worker"] for s in view["slices"]} == {"fw"}
        yield server, job
    finally:
        for worker in workers:
            worker.stop()
        server.stop()


def redo(server: Server, job: str, index: int = 0, **body) -> requests.Response:
    return requests.post(f"{server.url}/api/jobs/{job}/slices/{index}/redo", json=body, timeout=30)


def slice_done_by(server: Server, job: str, engine: str, model: str = "") -> dict:
    """Slice 0 once it is done again by ``engine``."""
    return wait_for(lambda: (s := server.job(job)["slices"][0])["status"] == "done" and s["engine"] == engine
                    and (not model or s["model"] == model) and s, 120, f"slice 0 done again by {engine}")


def test_a_redo_naming_an_engine_is_taken_only_by_a_worker_that_runs_it(site):
    """Two engines connected: a redo naming the sleep engine is done by the sleep worker, one naming
    faster-whisper by the faster-whisper worker, each time while the other kind of worker was free; until the
    new text comes the old one stays in the .txt."""
    server, job = site
    words = server.get(f"/api/jobs/{job}/transcript.txt").text
    assert wer(manifest()[RECORDING]["reference"], words) < 30

    assert redo(server, job, engine="sleep", model="0.05").status_code == 202
    assert server.get(f"/api/jobs/{job}/transcript.txt").text == words, "the old text stays until the new comes"
    s = slice_done_by(server, job, "sleep")
    assert s["worker"] == "zz" and re.fullmatch(r"\[\d+\.\d\d s\]", s["text"]), s
    assert s["asked_engine"] == "sleep" and server.job(job)["status"] == "done"

    assert redo(server, job, engine="faster-whisper").status_code == 202
    s = slice_done_by(server, job, "faster-whisper")
    assert s["worker"] == "fw" and s["asked_engine"] == "faster-whisper"
    assert wer(manifest()[RECORDING]["reference"], server.get(f"/api/jobs/{job}/transcript.txt").text) < 30


def test_a_redo_no_connected_worker_runs_is_refused_and_the_job_stays_done(site):
    """An engine no connected worker runs: 409 with a sentence naming it and the connected workers' engines;
    the job stays done, its text whole, and a later redo is accepted."""
    server, job = site
    words = server.get(f"/api/jobs/{job}/transcript.txt").text
    refused = redo(server, job, engine="nonexist", replace_corrections=True)
    error = refused.json()["error"]
    assert refused.status_code == 409 and "nonexist" in error and "faster-whisper tiny.en" in error, error
    view = server.job(job)
    assert view["status"] == "done" and [s["status"] for s in view["slices"]] == ["done"]
    assert server.get(f"/api/jobs/{job}/transcript.txt").text == words


def test_a_waiting_redo_is_called_off_from_the_page(site):
    """A redo out on a slow worker shows "Stop transcribing again" on the page; pressing it puts the slice back
    as it was (its text in the transcript, the job done) and the button goes."""
    server, job = site
    words = server.get(f"/api/jobs/{job}/transcript.txt").text
    assert redo(server, job, engine="sleep", model=SLOW).status_code == 202
    wait_for(lambda: server.job(job)["slices"][0]["worker"] == "slow", 30, "the slow worker to take the slice")
    assert server.get(f"/api/jobs/{job}/transcript.txt").text == words, "the old text stays while it is out"
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/?job={job}")
            page.wait_for_selector("#connection[data-state='connected']", timeout=15_000)
            page.click(".slice-details summary")
            page.get_by_role("button", name="Stop transcribing again (slice 1)").click()
            page.wait_for_function("document.getElementById('job-status').textContent === 'Done'", timeout=15_000)
            page.wait_for_selector("[data-cancel-redo]", state="detached", timeout=10_000)
            assert " ".join(words.split()) in " ".join(page.text_content("#transcript-body").split())
        finally:
            browser.close()
    view = server.job(job)
    assert view["status"] == "done" and view["slices"][0]["status"] == "done"
    assert view["slices"][0]["redo_of"] == "" and server.get(f"/api/jobs/{job}/transcript.txt").text == words
