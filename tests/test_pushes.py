"""Pushes to pages come from one place: what an operation marks is sent once when the outermost operation ends,
and a view sent again within ``interval_s`` waits for a background task that sends its newest state once."""

import threading

from server.pushes import Pushes


class Views:
    def __init__(self):
        self.version = 0

    def job_view(self, job_id):
        return view(job_id, self.version)

    def jobs_view(self):
        return [self.version]

    def workers_view(self):
        return [self.version]


def view(job_id, version):
    return {"id": job_id, "status": "running", "version": version, "slices": [{"index": 0, "version": version}]}


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make(interval_s=0.0, spawn=None, sleep=None):
    sent, views, clock = [], Views(), Clock()

    def emit(event, data, *, to=None, namespace="/"):
        sent.append((event, to, data))

    return Pushes(emit, views, threading.RLock(), clock, interval_s, spawn, sleep), sent, views, clock


def test_marks_are_sent_once_when_the_outermost_operation_ends():
    pushes, sent, _, _ = make()
    with pushes.operation():
        pushes.job("a")
        with pushes.operation():
            pushes.job("a")
            pushes.workers()
        assert sent == []  # the inner operation ended: nothing yet
        pushes.jobs()
        pushes.job("a")
    assert sent == [("job", "job:a", view("a", 0)), ("workers", None, [0]), ("jobs", None, [0])]


def test_a_view_is_built_when_it_is_sent_so_it_is_the_newest():
    pushes, sent, views, _ = make()
    with pushes.operation():
        pushes.job("a")
        views.version = 3
    assert sent == [("job", "job:a", view("a", 3))]


def test_without_a_background_task_every_operation_sends_its_marks():
    pushes, sent, _, _ = make(interval_s=10.0)  # no spawn: no throttling
    for _ in range(3):
        with pushes.operation():
            pushes.workers()
    assert [e for e, _, _ in sent] == ["workers"] * 3


def test_a_burst_is_sent_at_once_then_its_newest_state_once_after_the_interval():
    tasks = []
    pushes, sent, views, clock = make(interval_s=0.25, spawn=lambda fn, *a: tasks.append((fn, a)),
                                      sleep=lambda s: setattr(clock, "now", clock.now + s))
    for version in range(5):  # five results into one job within the interval
        views.version = version
        with pushes.operation():
            pushes.job("a")
        clock.now += 0.01
    assert sent == [("job", "job:a", view("a", 0))]
    assert len(tasks) == 1  # one task waits, however many marks came
    fn, args = tasks.pop()
    fn(*args)
    assert [data["version"] for _, _, data in sent] == [0, 4]
    with pushes.operation():  # nothing marked: nothing sent, no task
        pass
    assert len(sent) == 2 and tasks == []


def test_a_failed_delayed_push_is_logged_and_later_pushes_still_go(caplog):
    tasks = []
    pushes, sent, views, clock = make(interval_s=0.25, spawn=lambda fn, *a: tasks.append((fn, a)),
                                      sleep=lambda s: setattr(clock, "now", clock.now + s))
    with pushes.operation():
        pushes.jobs()
    with pushes.operation():
        pushes.jobs()

    def broken():
        raise OSError("the store is closed")

    views.jobs_view = broken
    fn, args = tasks.pop()
    fn(*args)
    assert "a push to the pages failed: the store is closed" in caplog.text
    del views.jobs_view
    clock.now += 1
    with pushes.operation():
        pushes.jobs()
    assert [e for e, _, _ in sent] == ["jobs", "jobs"]


def test_a_view_that_is_costly_to_build_waits_ten_times_its_cost():
    """A job of thousands of slices takes long to build: its next push waits at least ten times that, so its
    pushes never take more than a tenth of the server's time."""
    import time

    tasks = []
    pushes, sent, views, clock = make(interval_s=0.25, spawn=lambda fn, *a: tasks.append((fn, a)),
                                      sleep=lambda s: setattr(clock, "now", clock.now + s))
    build = views.job_view
    views.job_view = lambda job_id: (time.sleep(0.05), build(job_id))[1]  # 50 ms to build
    with pushes.operation():
        pushes.job("big")
    clock.now += 0.3  # past interval_s, but not past 10 × 50 ms
    with pushes.operation():
        pushes.job("big")
    assert len(sent) == 1 and len(tasks) == 1
    fn, (delay_s,) = tasks.pop()
    assert 0.15 <= delay_s <= 0.5  # what is left of at least 0.5 s after the first push
    fn(delay_s)
    assert len(sent) == 2


def test_a_job_is_pushed_whole_once_then_only_the_slices_that_changed():
    pushes, sent, views, _ = make()
    slices = [{"index": i, "status": "queued", "text": ""} for i in range(3)]
    views.job_view = lambda job_id: {"id": job_id, "status": "running", "transcript": "…",
                                     "slices": [dict(s) for s in slices]}
    with pushes.operation():
        pushes.job("a")
    slices[1] = {"index": 1, "status": "done", "text": "words"}
    slices.append({"index": 3, "status": "queued", "text": ""})  # a live recording closed a slice
    with pushes.operation():
        pushes.job("a")
    first, second = (data for _, _, data in sent)
    assert len(first["slices"]) == 3 and "slice_changes" not in first
    assert second["slice_changes"] and second["slice_count"] == 4 and second["transcript"] == "…"
    assert second["slices"] == [slices[1], slices[3]]


def test_after_a_page_is_given_the_whole_job_the_next_push_is_whole():
    """A page that began to watch between two pushes holds a newer view than the last push: a slice that
    changed and changed back before the next push would never reach it, so that push is whole."""
    pushes, sent, views, _ = make()
    slices = [{"index": 0, "status": "queued", "error": "its worker stopped"}]
    views.job_view = lambda job_id: {"id": job_id, "status": "running", "slices": [dict(s) for s in slices]}
    with pushes.operation():
        pushes.job("a")
    with pushes.operation():  # the page's watch: it is given the job as it is now
        pushes.watched("a")
    with pushes.operation():  # the slice went out and came back as it was: nothing differs from the last push
        pushes.job("a")
    assert "slice_changes" not in sent[-1][2] and sent[-1][2]["slices"] == slices


def test_a_finished_job_keeps_no_slices_here_and_is_pushed_whole():
    pushes, sent, views, _ = make()
    status = {"now": "running"}
    views.job_view = lambda job_id: {"id": job_id, "status": status["now"], "slices": [{"index": 0}]}
    with pushes.operation():
        pushes.job("a")
    status["now"] = "done"
    with pushes.operation():
        pushes.job("a")
    assert sent[-1][2]["slice_changes"] and pushes._slices_sent == {}
    with pushes.operation():  # a correction after it finished
        pushes.job("a")
    assert "slice_changes" not in sent[-1][2]
