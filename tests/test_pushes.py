"""Pushes to pages come from one place: what an operation marks is sent once when the outermost operation ends,
and a view sent again within ``interval_s`` waits for a background task that sends its newest state once."""

import threading

from server.pushes import Pushes


class Views:
    def __init__(self):
        self.version = 0

    def job_view(self, job_id):
        return {"id": job_id, "version": self.version}

    def jobs_view(self):
        return [self.version]

    def workers_view(self):
        return [self.version]


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
    assert sent == [("job", "job:a", {"id": "a", "version": 0}), ("workers", None, [0]), ("jobs", None, [0])]


def test_a_view_is_built_when_it_is_sent_so_it_is_the_newest():
    pushes, sent, views, _ = make()
    with pushes.operation():
        pushes.job("a")
        views.version = 3
    assert sent == [("job", "job:a", {"id": "a", "version": 3})]


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
    assert sent == [("job", "job:a", {"id": "a", "version": 0})]
    assert len(tasks) == 1  # one task waits, however many marks came
    fn, args = tasks.pop()
    fn(*args)
    assert sent[1:] == [("job", "job:a", {"id": "a", "version": 4})]
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
