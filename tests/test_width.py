"""More workers must never mean worse text: the same long recordings through one slot, sixteen slots on one
worker, and four one-thread workers (the server cuts finer for them, and sends guard bands), with real worker
processes and the real model."""

from __future__ import annotations

import pytest

from tests.support import Server, Worker, corpus_file, manifest, wait_for, wer

#: Long tier A-/B recordings that lost most when cut finer before guard bands (issue 13).
FILES = ["librivox_shakespeare_sonnet_003.wav", "mfa_cold_corpus_spontaneous.wav"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every file through each layout of workers (threads, slots, how many), one layout at a time on one
    server: the jobs as the API shows them, by layout."""
    server = Server(tmp_path_factory.mktemp("width"))
    layouts = {"one slot": (2, 1, 1), "16 slots": (2, 16, 1), "4 workers": (1, 1, 4)}
    jobs = {}
    try:
        for layout, (threads, slots, count) in layouts.items():
            workers = [Worker(server, f"{layout.replace(' ', '-')}-{n}", "--slots", str(slots), threads=threads)
                       for n in range(count)]
            try:
                server.wait_workers(count, timeout=120)
                # One after the other, as a user with a few long files: each finds every worker idle.
                jobs[layout] = {name: server.wait_job(server.submit(corpus_file(name)), timeout=400)
                                for name in FILES}
            finally:
                for w in workers:
                    w.stop()
            wait_for(lambda: not server.workers(), 30, "the layout's workers to leave")
        yield jobs
    finally:
        server.stop()


def pooled(jobs: dict) -> float:
    return wer([manifest()[name]["reference"] for name in FILES], [jobs[name]["transcript"] for name in FILES])


def test_sixteen_slots_on_one_worker_do_every_slice_as_well_as_one(runs):
    """A worker with --slots 16: every slice of every job done (none failed for its batch-mates), pooled WER
    within 1 point of the same worker with --slots 1."""
    for job in runs["16 slots"].values():
        assert job["status"] == "done" and all(s["status"] == "done" for s in job["slices"])
    assert pooled(runs["16 slots"]) <= pooled(runs["one slot"]) + 1.0


def test_four_workers_cut_finer_and_lose_no_words(runs):
    """Four one-thread workers: the server cuts each recording into more slices than for one slot (every one
    heard with guard bands of its neighbours' speech), and the pooled WER stays within 1 point of one slot."""
    for name in FILES:
        assert len(runs["4 workers"][name]["slices"]) > len(runs["one slot"][name]["slices"]), name
    for job in runs["4 workers"].values():
        assert job["status"] == "done" and all(s["status"] == "done" for s in job["slices"])
    assert pooled(runs["4 workers"]) <= pooled(runs["one slot"]) + 1.0
