"""What the pages are told, sent from one place: an operation marks what it changed, and the marks are sent once
when the outermost operation ends (as huey runs its signals at state changes, in one place).

So a code path cannot forget a push or send one twice, and a burst of results into one job builds and sends
its view once rather than once per result: a view sent less than ``interval_s`` after the last one of its kind
waits, and the newest state is sent when the interval is over (by a background task: ``spawn`` and ``sleep``).
A view that is costly to build (a job of thousands of slices) waits longer: at least ``COST_FACTOR`` times what
it took the last time, so pushing one view never takes more than a tenth of the server's time. Without ``spawn``
(the tests that drive the coordinator by hand) every mark is sent at the end of its operation.

A running job's push carries only the slices that changed since its last push (``"slice_changes": true``, with
``slice_count``): a page holds the others, from that push or from the whole view it was given when it began to
watch (after which the next push is whole: :meth:`Pushes.watched`), and a long job's every slice, with its
words, is megabytes sent to every watching page. A finished job is pushed whole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Protocol


class Emitter(Protocol):
    def __call__(self, event: str, data: Any, *, to: str | None = None, namespace: str = "/") -> None: ...


class Views(Protocol):
    """What a push sends: built when it is sent, so it is the newest state."""

    def job_view(self, job_id: str) -> dict[str, Any] | None: ...

    def jobs_view(self) -> list[dict[str, Any]]: ...

    def workers_view(self) -> list[dict[str, Any]]: ...


log = logging.getLogger("scatterscribe")

JOBS, WORKERS = "jobs", "workers"
COST_FACTOR = 10
#: Jobs whose last pushed slices are kept, to push only what changed; a job past this gets a full view.
KEPT_JOBS = 64


class Pushes:
    def __init__(self, emit: Emitter, views: Views, lock: threading.RLock, clock: Callable[[], float],
                 interval_s: float = 0.0, spawn: Callable[..., Any] | None = None,
                 sleep: Callable[[float], Any] | None = None):
        self.emit, self.views, self.lock, self.clock = emit, views, lock, clock
        self.interval_s = interval_s if spawn is not None and sleep is not None else 0.0
        self.spawn, self.sleep = spawn, sleep
        self._depth = 0
        self._marked: dict[str, None] = {}  # "jobs", "workers" or "job:<id>", in the order first marked
        self._sent_at: dict[str, float] = {}
        self._wait_s: dict[str, float] = {}  # the least time between two pushes of a view, from its cost
        self._timer = False  # a background task will send what waits
        self._slices_sent: OrderedDict[str, dict[int, dict[str, Any]]] = OrderedDict()  # job → its slices pushed

    # --- marking: under the lock, inside an operation ----------------------------------------------------------

    def job(self, job_id: str) -> None:
        self._marked[f"job:{job_id}"] = None

    def jobs(self) -> None:
        self._marked[JOBS] = None

    def workers(self) -> None:
        self._marked[WORKERS] = None

    def operation(self) -> _Operation:
        """``with pushes.operation():`` takes the lock; the marks are sent when the outermost one ends."""
        return _Operation(self)

    # --- sending -------------------------------------------------------------------------------------------

    def _flush(self) -> None:
        now = self.clock()
        later: list[float] = []  # seconds until each view that waits may go
        for what in list(self._marked):
            due = self._sent_at.get(what, -1e18) + self._wait_s.get(what, self.interval_s) - now
            if due > 0:
                later.append(due)
                continue
            del self._marked[what]
            self._sent_at[what] = now
            t0 = time.perf_counter()
            self._send(what)
            if self.interval_s:
                self._wait_s[what] = max(self.interval_s, COST_FACTOR * (time.perf_counter() - t0))
        if len(self._sent_at) > 4 * len(self._marked) + 1024:  # forget jobs long gone
            cutoff = now - max(self._wait_s.values(), default=self.interval_s)
            self._sent_at = {k: t for k, t in self._sent_at.items() if t >= cutoff or k in self._marked}
            self._wait_s = {k: w for k, w in self._wait_s.items() if k in self._sent_at}
        if later and not self._timer:
            self._timer = True
            self.spawn(self._send_later, min(later))

    def _send(self, what: str) -> None:
        if what == JOBS:
            self.emit("jobs", self.views.jobs_view(), namespace="/")
        elif what == WORKERS:
            self.emit("workers", self.views.workers_view(), namespace="/")
        else:
            job_id = what.removeprefix("job:")
            view = self.views.job_view(job_id)
            if view is None:
                self._slices_sent.pop(job_id, None)
                return
            before = self._slices_sent.pop(job_id, None)
            self.emit("job", _changes(view, before), to=what, namespace="/")
            # The base of the next push, once this one is out. A finished job keeps none (its slices rarely
            # change again; a correction then sends it whole): only running jobs' slices are held here.
            if view["status"] not in ("done", "failed"):
                self._slices_sent[job_id] = {s["index"]: s for s in view["slices"]}
                while len(self._slices_sent) > KEPT_JOBS:
                    self._slices_sent.popitem(last=False)

    def watched(self, job_id: str) -> None:
        """A page has just been given the job's whole view (``watch``): the next push is whole too, so a page
        that began to watch between two pushes never waits for a slice that changed and changed back. Under
        the lock, with the view built and the page in the job's room."""
        self._slices_sent.pop(job_id, None)

    def _send_later(self, delay_s: float) -> None:
        self.sleep(delay_s)
        with self.lock:  # an operation holds the lock: none is under way now
            self._timer = False
            try:
                self._flush()
            except Exception as exc:  # noqa: BLE001 - nobody waits on this task; the next change pushes again
                log.warning("a push to the pages failed: %s", exc)


class _Operation:
    def __init__(self, pushes: Pushes):
        self.pushes = pushes

    def __enter__(self) -> None:
        self.pushes.lock.acquire()
        self.pushes._depth += 1

    def __exit__(self, *exc: object) -> None:
        p = self.pushes
        try:
            p._depth -= 1
            if p._depth == 0:
                p._flush()
        finally:
            p.lock.release()


def _changes(view: dict[str, Any], before: dict[int, dict[str, Any]] | None) -> dict[str, Any]:
    """The job view with only the slices that changed since ``before`` (the whole view without one)."""
    if before is None:
        return view
    changed = [s for s in view["slices"] if before.get(s["index"]) != s]
    return {**view, "slices": changed, "slice_changes": True, "slice_count": len(view["slices"])}
