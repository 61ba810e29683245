"""What the API and the pages are shown (server/views.py): pure functions of a stored job and the scheduler."""

from server import views
from server.records import JobRecord, SliceRecord
from server.scheduler import Scheduler, WorkerInfo

T0 = 1000.0


def job(engine: str = "") -> JobRecord:
    return JobRecord(id="j1", name="talk.wav", source="upload", created_at=T0, status="running", duration=60.0,
                     engine=engine, slices=[
                         SliceRecord(0, 0.0, 20.0, [(0.0, 20.0)], status="done", text=" Hello  there. "),
                         SliceRecord(1, 20.0, 40.0, [(20.0, 30.0), (32.0, 40.0)], status="leased"),
                         SliceRecord(2, 40.0, 60.0, [(40.0, 60.0)], status="failed", error="boom"),
                     ])


def test_a_job_shows_progress_text_in_order_and_its_slices():
    """Progress counts each status; the transcript is the done text plus a marker for the failed span; each
    slice keeps its times and pieces."""
    view = views.job_view(job(), Scheduler())
    assert view["progress"] == {"done": 1, "failed": 1, "total": 3}
    assert view["transcript"].startswith("Hello there. [") and "40" in view["transcript"]
    assert [s["index"] for s in view["slices"]] == [0, 1, 2]
    assert view["slices"][1]["pieces"] == [[20.0, 30.0], [32.0, 40.0]] and view["slices"][2]["error"] == "boom"


def test_a_job_waits_for_workers_only_while_none_connected_can_serve_it():
    """With no worker, or only workers of another engine, the open slice cannot be served; a matching worker
    ends the wait."""
    s = Scheduler()
    assert views.job_view(job("google"), s)["waiting_for_workers"] is True
    s.add_worker("fw", WorkerInfo("fw", engine="faster-whisper", model="tiny.en"), T0)
    assert views.job_view(job("google"), s)["waiting_for_workers"] is True
    assert views.job_view(job(), s)["waiting_for_workers"] is False
    s.add_worker("g", WorkerInfo("g", engine="google", model="en-US", max_slice_s=25), T0)
    assert views.job_view(job("google"), s)["waiting_for_workers"] is False


def test_eta_comes_from_the_measured_speed_of_the_workers_that_may_serve_the_job():
    """No open slice: 0; no measured speed yet: unknown; else open audio, plus other jobs' audio queued ahead,
    over the summed speed × slots of the workers whose engine the job accepts."""
    from server.scheduler import Requirement, SliceKey
    s = Scheduler()
    any_engine, sphinx_only = Requirement(), Requirement("sphinx")
    open_slices = [sl for sl in job().slices if sl.status == "leased"]  # 18 s of audio
    assert views.eta_s("j1", [], any_engine, s) == 0.0
    s.add_worker("w", WorkerInfo("w", slots=2), T0)
    assert views.eta_s("j1", open_slices, any_engine, s) is None
    s.workers["w"].audio_s, s.workers["w"].busy_s = 30.0, 10.0  # 3x real time, 2 slots: 6 audio s per s
    assert views.eta_s("j1", open_slices, any_engine, s) == 3.0
    s.add_worker("sx", WorkerInfo("sx", engine="sphinx"), T0)
    s.workers["sx"].audio_s, s.workers["sx"].busy_s = 10.0, 10.0  # 1 audio s per s
    assert views.eta_s("j1", open_slices, any_engine, s) == round(18 / 7, 1)
    assert views.eta_s("j1", open_slices, sphinx_only, s) == 18.0, "the faster-whisper worker cannot help"
    s.submit(SliceKey("earlier", 0), 12.0)  # another job's slice, queued before this job's
    assert views.eta_s("j1", open_slices, any_engine, s) == round(18 / 7, 1), "none of j1's slices waits"
    s.submit(SliceKey("j1", 1), 18.0)
    s.submit(SliceKey("later", 0), 50.0)
    assert views.eta_s("j1", open_slices, any_engine, s) == round((12 + 18) / 7, 1)


def test_workers_are_listed_by_name_with_load_and_speed():
    s = Scheduler()
    s.add_worker("b-id", WorkerInfo("beta", slots=2), T0)
    s.add_worker("a-id", WorkerInfo("alpha"), T0 + 5)
    s.workers["b-id"].audio_s, s.workers["b-id"].busy_s = 10.0, 4.0
    listed = views.workers_view(s, T0 + 10)
    assert [w["name"] for w in listed] == ["alpha", "beta"]
    assert listed[0]["connected_s"] == 5.0 and listed[0]["speed"] is None
    assert listed[1]["speed"] == 2.5 and listed[1]["slots"] == 2 and listed[1]["busy"] == 0
