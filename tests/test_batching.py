"""A worker with several slots decodes the slices it holds together (real processes, the real model)."""

from tests.support import Server, Worker, corpus_file, wer

BUSH = "bush_radio_address_2008-11-01.wav"


def test_a_worker_with_three_slots_decodes_its_slices_in_batches(tmp_path, whole_file_text):
    """One worker with --slots 3 takes a 127 s recording: slices decoded in one batch report the same time,
    the job's accounting charges each batch once, and the text is as good as the whole file's."""
    server = Server(tmp_path)
    worker = Worker(server, "batcher", "--slots", "3", threads=2)
    try:
        server.wait_workers(1)
        job = server.wait_job(server.submit(corpus_file(BUSH)))
    finally:
        worker.stop()
        server.stop()
    assert job["status"] == "done" and len(job["slices"]) >= 3
    elapsed = [s["elapsed"] for s in job["slices"]]
    assert len(set(elapsed)) < len(elapsed), "no two slices shared a batch"
    assert job["stats"]["transcribe_s"] < sum(elapsed)
    assert wer(whole_file_text(BUSH), job["transcript"]) < 8.0
