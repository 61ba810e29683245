"""The coordinator, in process (no sockets, a recording emit) and with real processes: waiting slices cut again
for workers with a shorter limit, the note on a job whose slices all come back empty, and how finely uploads
are cut for idle workers when several arrive together."""

from __future__ import annotations

import shutil
import sqlite3

import pytest
import requests

from server import payloads
from server.config import ServerSettings, Settings
from server.coordinator import Coordinator
from server.records import SliceRecord
from server.replan import queued_runs
from server.scheduler import Requirement, WorkerInfo
from server.store import Store
from tests.support import Server, Worker, corpus_file, wait_for

BUSH = "bush_radio_address_2008-11-01.wav"  # 127 s: five slices at the default 28 s
JFK = "jfk_inaugural_excerpt.wav"  # 11 s: one slice


def record(index: int, seconds: float, status: str = "queued") -> SliceRecord:
    return SliceRecord(index=index, start=index * 30.0, end=index * 30.0 + seconds,
                       pieces=[(index * 30.0, index * 30.0 + seconds)], status=status)


def test_runs_to_cut_again_are_consecutive_queued_slices_holding_one_too_long():
    slices = [record(0, 27, "done"), record(1, 27), record(2, 10), record(3, 20, "leased"), record(4, 10),
              record(5, 10), record(6, 27, "failed"), record(7, 26)]
    assert queued_runs(slices, 25.0) == [(1, 3), (7, 8)]  # 4..5 all fit; done/leased/failed never cut
    assert queued_runs(slices, 28.0) == []


class Recorder:
    """The coordinator's emit: keeps what it would send."""

    def __init__(self):
        self.sent: list[tuple[str, dict, str | None]] = []

    def __call__(self, event, data, *, to=None, namespace="/"):
        self.sent.append((event, data, to))

    def slices_for(self, worker_id: str) -> list[dict]:
        return [data for event, data, to in self.sent if event == "slice" and to == worker_id]


@pytest.fixture
def coordinator(tmp_path):
    settings = Settings(server=ServerSettings(data_dir=str(tmp_path / "data")))
    emit = Recorder()
    coord = Coordinator(settings, Store(tmp_path / "state.db"), emit)
    coord.emit_log = emit
    return coord


def submit(coord: Coordinator, name: str, requirement: Requirement = Requirement()) -> str:
    job_id, upload = coord.new_upload_path()
    shutil.copy(corpus_file(name), upload)
    return coord.create_job(job_id, upload, name, requirement).id


def result_for(sent: dict, text: str) -> payloads.Result:
    """A worker's answer to the slice ``sent``, parsed as the server's Socket.IO handler parses it."""
    data = {"lease": sent["lease"], "job": sent["job"], "index": sent["index"], "text": text}
    return payloads.result(data, payloads.slice_ref(data), 20_000)


def answer_all(coord: Coordinator, worker_id: str, text=lambda data: f"<{data['seconds']:.2f}>") -> None:
    """Answer every slice sent to ``worker_id`` (more come as slots free up) until none is left."""
    answered = {data["lease"] for data in coord.emit_log.slices_for(worker_id)
                if coord.scheduler.leases.get(data["lease"]) is None}  # answered or lost before
    while waiting := [d for d in coord.emit_log.slices_for(worker_id) if d["lease"] not in answered]:
        data = waiting[0]
        ack = coord.result(worker_id, result_for(data, text(data)))
        assert ack == {"ok": True}
        answered.add(data["lease"])


def test_waiting_slices_are_cut_again_for_short_workers_and_finished_ones_kept(coordinator):
    """A job cut at 28 s with no worker connected; a 30 s worker finishes slice 0 and leaves holding slice 1
    (it goes back to the queue); a worker taking at most 12 s connects: the waiting slices are cut again to
    <= 12 s inside the same stretch of the recording, slice 0 keeps its text and place, indices stay in
    recording order, and the short worker finishes the job."""
    coord = coordinator
    job_id = submit(coord, BUSH)
    before = coord.store.get_job(job_id)
    assert max(s.seconds for s in before.slices) > 20
    coord.worker_connected("w-long", WorkerInfo("long", max_slice_s=30.0))
    coord.dispatch()
    first = coord.emit_log.slices_for("w-long")[0]
    coord.result("w-long", result_for(first, "slice zero"))
    assert coord.store.get_job(job_id).slices[1].status == "leased"
    coord.worker_disconnected("w-long")  # slice 1 back to the queue

    coord.worker_connected("w-short", WorkerInfo("short", max_slice_s=12.0, slots=2))
    assert coord.replan_unservable() == 1
    assert coord.replan_unservable() == 0  # nothing left to cut
    after = coord.store.get_job(job_id)
    assert [s.index for s in after.slices] == list(range(len(after.slices)))
    assert after.slices[0].text == "slice zero" and after.slices[0].pieces == before.slices[0].pieces
    assert all(s.seconds <= 12.0 + 1e-6 for s in after.slices[1:])
    assert len(after.slices) > len(before.slices)
    starts = [p[0] for s in after.slices for p in s.pieces]
    ends = [p[1] for s in after.slices for p in s.pieces]
    assert all(a < b for a, b in zip(starts, ends, strict=True))
    assert all(e <= s for e, s in zip(ends, starts[1:], strict=False)), "pieces overlap or go backwards"
    assert after.slices[1].start >= before.slices[1].start and after.slices[-1].end <= before.slices[-1].end
    # the speech sent is nearly the same audio (only silence trimmed at new cuts is left out)
    assert sum(s.seconds for s in after.slices[1:]) == pytest.approx(sum(s.seconds for s in before.slices[1:]),
                                                                     rel=0.1)
    coord.dispatch()
    answer_all(coord, "w-short")
    done = coord.store.get_job(job_id)
    assert done.status == "done" and all(s.status == "done" for s in done.slices)
    assert all(float(data["seconds"]) <= 12.0 + 1e-6 for data in coord.emit_log.slices_for("w-short"))
    assert coord.job_view(job_id)["transcript"].startswith("slice zero <")


def test_a_job_with_a_slice_out_is_not_renumbered_until_it_comes_back(coordinator):
    """A 12 s worker takes the only slice that fits it (the last, 11 s) before anything is cut again: while it
    holds it, the job's other slices are left as they are (renumbering would move the held slice's index);
    once it is answered they are cut to fit, and the answered slice stays last with its text."""
    coord = coordinator
    job_id = submit(coord, BUSH)
    before = coord.store.get_job(job_id)
    coord.worker_connected("w-tiny", WorkerInfo("tiny", max_slice_s=12.0))
    coord.dispatch()
    held = coord.emit_log.slices_for("w-tiny")[0]
    assert held["index"] == len(before.slices) - 1 and held["seconds"] <= 12.0
    assert coord.replan_unservable() == 0
    assert [s.pieces for s in coord.store.get_job(job_id).slices] == [s.pieces for s in before.slices]
    coord.result("w-tiny", result_for(held, "the end"))
    assert coord.replan_unservable() == 1
    after = coord.store.get_job(job_id)
    assert all(s.seconds <= 12.0 + 1e-6 for s in after.slices)
    assert after.slices[-1].text == "the end" and after.slices[-1].pieces == before.slices[-1].pieces
    assert [s.status for s in after.slices] == ["queued"] * (len(after.slices) - 1) + ["done"]
    coord.dispatch()
    answer_all(coord, "w-tiny")
    assert coord.store.get_job(job_id).status == "done"
    assert coord.job_view(job_id)["transcript"].endswith("> the end")


def test_a_job_whose_slices_all_come_back_empty_says_no_speech_found(coordinator):
    """Every slice answered with no words: the job is done with an empty transcript and the note 'no speech
    found', as a silent upload is; a job with words gets no such note."""
    coord = coordinator
    coord.worker_connected("w", WorkerInfo("w", slots=2))
    quiet = submit(coord, BUSH)
    coord.dispatch()
    answer_all(coord, "w", text=lambda data: "  ")
    view = coord.job_view(quiet)
    assert (view["status"], view["transcript"], view["note"]) == ("done", "", "no speech found")
    assert coord.store.get_job(quiet).note == "no speech found"
    spoken = submit(coord, "jfk_inaugural_excerpt.wav")
    coord.dispatch()
    answer_all(coord, "w", text=lambda data: "ask not")
    view = coord.job_view(spoken)
    assert view["status"] == "done" and view["transcript"].startswith("ask not") and view["note"] == ""


SONNET = "librivox_shakespeare_sonnet_001.wav"  # 53 s: two slices normally, four for four idle slots


def test_uploads_arriving_together_do_not_each_cut_for_the_same_idle_slots(tmp_path):
    """One worker with 4 idle slots and four 53 s uploads that arrive while the earlier ones are still being
    decoded and split: the first is cut for the 4 idle slots, the others, finding them counted on, get the
    normal plan (before: each saw 4 idle slots and was cut into 4). One upload alone is still cut for them."""
    settings = Settings(server=ServerSettings(data_dir=str(tmp_path / "data")))
    pending: list[str] = []  # uploads that arrive while the current one is being prepared
    coord = None

    def run_blocking(fn, *args):
        if pending:  # the next upload arrives now, before this one's slices are planned
            submit(coord, pending.pop(0))
        return fn(*args)

    coord = Coordinator(settings, Store(tmp_path / "state.db"), Recorder(), run_blocking)
    coord.worker_connected("w", WorkerInfo("w", slots=4))
    pending += [SONNET] * 3
    first = submit(coord, SONNET)
    others = [job.id for job, _ in coord.store.list_jobs() if job.id != first]
    assert len(others) == 3
    assert len(coord.store.get_job(first).slices) == 4
    assert [len(coord.store.get_job(job_id).slices) for job_id in others] == [2, 2, 2]
    assert coord._preparing == {}  # every reservation was given back

    alone = Coordinator(Settings(server=ServerSettings(data_dir=str(tmp_path / "data2"))),
                        Store(tmp_path / "state2.db"), Recorder())
    alone.worker_connected("w", WorkerInfo("w", slots=4))
    assert len(alone.store.get_job(submit(alone, SONNET)).slices) == 4


def seconds(s: dict) -> float:
    return sum(b - a for a, b in s["pieces"])


def test_a_job_submitted_before_any_worker_is_finished_by_a_worker_with_a_short_limit(tmp_path):
    """Real server and worker: a job uploaded while no worker is connected is cut at the default 28 s; a worker
    that announces --max-slice-s 12 (the sleep engine: no model to load) connects later and finishes it, every
    slice it was sent at most 12 s, the slices in recording order and not overlapping."""
    server = Server(tmp_path)
    worker = None
    try:
        job_id = server.submit(corpus_file(BUSH))
        queued = server.job(job_id)
        assert queued["waiting_for_workers"] and max(seconds(s) for s in queued["slices"]) > 20
        worker = Worker(server, "short", "--engine", "sleep", "--model", "0.01", "--max-slice-s", "12")
        assert server.wait_workers(1)[0]["max_slice_s"] == 12
        job = server.wait_job(job_id, timeout=90)
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
    assert job["status"] == "done" and not job["waiting_for_workers"]
    assert len(job["slices"]) > len(queued["slices"])
    assert [s["index"] for s in job["slices"]] == list(range(len(job["slices"])))
    for s in job["slices"]:
        assert s["status"] == "done" and s["worker"] == "short" and seconds(s) <= 12.0 + 1e-3
        assert abs(float(s["text"].strip("[] s")) - seconds(s)) < 0.05  # the audio the worker heard
    pieces = [p for s in job["slices"] for p in s["pieces"]]
    assert all(a < b <= c for (a, b), (c, _) in zip(pieces, pieces[1:], strict=False))
    assert "cut again" in server.log()


class FailingStore(Store):
    """A real store whose next ``fail`` writes of the named kind raise what SQLite raises on a full disk. The
    real full disk (a tmpfs) is in tests/test_disk_full.py; a failure at this exact point cannot be timed
    there."""

    def __init__(self, path, method: str):
        super().__init__(path)
        self.method, self.fail = method, 0

    def _maybe_fail(self, method: str) -> None:
        if method == self.method and self.fail > 0:
            self.fail -= 1
            raise sqlite3.OperationalError("database or disk is full")

    def update_slice(self, *args, **values):
        self._maybe_fail("update_slice")
        return super().update_slice(*args, **values)

    def finish_slice(self, *args, **values):
        self._maybe_fail("finish_slice")
        return super().finish_slice(*args, **values)


@pytest.mark.parametrize("method", ["update_slice", "finish_slice"])
def test_a_write_that_fails_gives_the_lease_back_at_once(tmp_path, method):
    """The slice cannot be marked sent (update_slice) or its result cannot be stored (finish_slice): either way
    the lease is given back at once, the worker's slot is free, the try is not counted, nothing goes out for a
    moment, and then the job goes on and finishes."""
    settings = Settings(server=ServerSettings(data_dir=str(tmp_path / "data")))
    emit, clock = Recorder(), {"now": 0.0}
    store = FailingStore(tmp_path / "state.db", method)
    coord = Coordinator(settings, store, emit, clock=lambda: clock["now"])
    coord.emit_log = emit
    job_id = submit(coord, JFK)
    coord.worker_connected("w", WorkerInfo("w"))
    store.fail = 1
    coord.dispatch()
    if method == "finish_slice":
        sent = emit.slices_for("w")[0]
        assert coord.result("w", result_for(sent, "ask not"))["error"].startswith("the server's disk is full")
    assert coord.scheduler.workers["w"].free_slots == 1 and not coord.scheduler.leases
    assert list(coord.scheduler.queue) == [(job_id, 0)] and coord.scheduler.tasks[(job_id, 0)].attempts == 0
    sent_before = len(emit.slices_for("w"))
    coord.dispatch()
    assert len(emit.slices_for("w")) == sent_before, "nothing goes out while the store just failed"
    clock["now"] = 3.0
    coord.tick()
    answer_all(coord, "w", text=lambda data: "ask not")
    assert coord.store.get_job(job_id).status == "done"


def test_deleting_a_job_removes_its_audio_and_calls_back_its_slices(tmp_path):
    """DELETE /api/jobs/<id> while a real worker holds one of its slices (the sleep engine, 0.3 s per audio
    second): 200; the job's folder and every file named for it under the data folder are gone; it is 404 and
    no longer in GET /api/jobs; the lease is gone at once (the worker's slot is free on the server); the worker
    is sent `cancel`, drops the slice without sending a result, and is never sent another slice of that job;
    it then takes and finishes the next job's slice."""
    server = Server(tmp_path)
    worker = Worker(server, "slow", "--engine", "sleep", "--model", "0.3")
    try:
        server.wait_workers(1)
        job_id = server.submit(corpus_file("librivox_shakespeare_sonnet_001.wav"))  # 53 s: several slices
        (held,) = wait_for(lambda: [s["index"] for s in server.job(job_id)["slices"] if s["status"] == "leased"],
                           30, "the worker to hold a slice")
        slices = len(server.job(job_id)["slices"])
        assert slices >= 2 and server.workers()[0]["busy"] == 1
        folder = server.data_dir / "jobs" / job_id
        assert (folder / "audio.wav").exists()

        response = requests.delete(f"{server.url}/api/jobs/{job_id}", timeout=30)
        assert response.status_code == 200 and response.json() == {"deleted": job_id}
        assert not folder.exists()
        assert [p for p in server.data_dir.rglob("*") if job_id in p.name] == []
        assert server.get(f"/api/jobs/{job_id}").status_code == 404
        assert job_id not in {j["id"] for j in server.get("/api/jobs").json()["jobs"]}
        assert server.workers()[0]["busy"] == 0

        next_id = server.submit(corpus_file("ljspeech_LJ001-0002.wav"))
        done = server.wait_job(next_id, timeout=90)
        assert done["status"] == "done" and {s["worker"] for s in done["slices"]} == {"slow"}
        log = worker.log()
        assert f"slice {job_id}/{held}: cancelled" in log
        assert f"slice {job_id}/" not in log.replace(f"slice {job_id}/{held}: cancelled", ""), \
            "the worker sent a result for the deleted job, or was given more of it"
        assert job_id not in {j["id"] for j in server.get("/api/jobs").json()["jobs"]}
        assert not folder.exists()
    finally:
        worker.stop()
        server.stop()


def test_a_job_is_cut_finer_only_as_far_as_its_workers_keep_the_text(tmp_path):
    """16 idle one-slot workers and the 127 s radio address: workers that time words hear each slice with
    guard bands, so the slices may go down to 8 s (2 x min_slice_s); one worker among them without word times
    would hear slices alone, so they stop at 14 s (2 x min_slice_alone_s): fewer, longer slices."""
    counts = {}
    for words in (True, False):
        coord = Coordinator(Settings(server=ServerSettings(data_dir=str(tmp_path / f"d{words}"))),
                            Store(tmp_path / f"s{words}.db"), Recorder())
        for n in range(16):
            coord.worker_connected(f"w{n}", WorkerInfo(f"w{n}", slots=1, words=words or n > 0))
        job = coord.store.get_job(submit(coord, "bush_radio_address_2008-11-01.wav"))
        counts[words] = len(job.slices)
    assert counts[True] > counts[False] >= 5
