"""Socket.IO handlers: thin adapters that check their input and call the coordinator.

Two namespaces: ``/worker`` for workers (token required) and ``/`` for pages (access token if configured).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from flask import request
from flask_socketio import ConnectionRefusedError, Namespace, join_room, leave_room

from . import payloads, strict_json
from .api import display_name
from .coordinator import Coordinator
from .limits import TokenGate, Verdict
from .live_captions import LiveCaptions
from .live_jobs import LiveJobs
from .payloads import PayloadError

#: What a worker with a wrong or missing token is told; the worker program exits on it (code 3).
WRONG_WORKER_TOKEN = "wrong or missing worker token"


class _OnePayload(Namespace):
    """Every handler here takes one payload, and a sender may put none or several in an event: the handler
    is called with the first, or with nothing (its default), never with an argument count it cannot take."""

    def trigger_event(self, event: str, *args: Any) -> Any:
        if event not in ("connect", "disconnect"):
            args = args[:2]  # the sender's sid and its first payload, if any
        return super().trigger_event(event, *args)

    def on_unreadable(self, reason: Any = None) -> dict[str, Any]:
        """What a packet whose JSON could not be read became (``strict_json.SocketIOJSON``): its sender's
        acknowledgement says why, and nothing else happens."""
        error = strict_json.UNREADABLE.get(reason, "the message could not be read") if isinstance(reason, str) \
            else "the message could not be read"
        return {"ok": False, "error": error}


class WorkerNamespace(_OnePayload):
    """Events sent by workers."""

    def __init__(self, coordinator: Coordinator, token: str, gate: TokenGate, heartbeat_s: float,
                 captions: LiveCaptions):
        super().__init__("/worker")
        self.coordinator = coordinator
        self.token = token
        self.gate = gate
        self.heartbeat_s = heartbeat_s
        self.captions = captions

    def on_connect(self, auth: dict[str, Any] | None = None) -> None:
        """Sent by a worker when it connects: proves the shared token and announces itself."""
        auth = auth if isinstance(auth, dict) else {}
        verdict = self.gate.check(auth.get("token"), self.token, request.remote_addr or "?", time.monotonic())
        if verdict.status:
            raise ConnectionRefusedError(verdict.message)
        try:
            info = payloads.worker_info(auth)
        except PayloadError as exc:
            raise ConnectionRefusedError(str(exc)) from None
        self.coordinator.worker_connected(request.sid, info)
        # Work goes out once the connection is acknowledged, not from inside the handshake.
        self.socketio.start_background_task(self._dispatch_soon, request.sid)

    def _dispatch_soon(self, sid: str) -> None:
        self.socketio.sleep(0.05)
        if self.coordinator.stopped:
            return
        self.emit("welcome", {"heartbeat_s": self.heartbeat_s}, room=sid)
        self.coordinator.replan_unservable()  # a job waiting for shorter slices than it has gets them now
        self.coordinator.dispatch()

    def on_disconnect(self, reason: Any = None) -> None:
        """Sent when a worker's connection ends, however it ends: its slices go back to the queue."""
        self.coordinator.worker_disconnected(request.sid)

    def on_heartbeat(self, data: Any = None) -> dict[str, bool]:
        """Sent by workers every ``heartbeat_s`` while connected."""
        return {"ok": self.coordinator.heartbeat(request.sid)}

    def on_hand_back(self, data: Any = None) -> dict[str, Any]:
        """``{leases}``: sent by a worker that is stopping (Ctrl-C, SIGTERM) with the slices it holds; they go
        back to the queue at once and the worker gets no more."""
        try:
            leases = payloads.hand_back(data)
        except PayloadError as exc:
            return {"ok": False, "error": f"malformed hand-back: {exc}"}
        return {"ok": True, "handed_back": self.coordinator.worker_leaving(request.sid, leases)}

    def on_result(self, data: Any = None) -> dict[str, Any]:
        """Sent by a worker with the text of a slice it holds. A result for a slice it holds that cannot be
        used (a number out of range, text over the limit) counts as an error for that slice, so the slice goes
        to another worker at once instead of waiting for its lease to run out."""
        try:
            ref = payloads.slice_ref(data)
        except PayloadError as exc:
            return {"ok": False, "error": f"malformed result: {exc}"}
        try:
            result = payloads.result(data, ref, self.coordinator.settings.server.max_text_chars)
        except PayloadError as exc:
            return self.coordinator.error(request.sid, payloads.SliceFailure(ref, f"unusable result: {exc}"))
        return self.coordinator.result(request.sid, result)

    def on_slice_error(self, data: Any = None) -> dict[str, Any]:
        """Sent by a worker that could not transcribe a slice it holds."""
        try:
            ref = payloads.slice_ref(data)
        except PayloadError as exc:
            return {"ok": False, "error": f"malformed error report: {exc}"}
        return self.coordinator.error(request.sid, payloads.slice_failure(data, ref))

    def on_tentative_text(self, data: Any = None) -> None:
        """Sent by a worker with the tentative text of a live recording's open part it was asked for
        (``{id, job, text}``); a malformed one is dropped (tentative text is optional: the next one comes)."""
        try:
            answer = payloads.tentative_text(data, self.coordinator.settings.server.max_text_chars)
        except PayloadError:
            return
        self.captions.answered(request.sid, answer)


class PageNamespace(_OnePayload):
    """Events sent by web pages."""

    def __init__(self, coordinator: Coordinator, access_check: Callable[[dict[str, Any]], Verdict],
                 live: LiveJobs):
        super().__init__("/")
        self.coordinator = coordinator
        self.access_check = access_check
        self.live = live

    def on_connect(self, auth: dict[str, Any] | None = None) -> None:
        """Sent by a page when it opens; refused without the access token when one is set."""
        verdict = self.access_check(auth if isinstance(auth, dict) else {})
        if verdict.status:
            raise ConnectionRefusedError(verdict.message)

    def on_watch(self, data: Any = None) -> dict[str, Any] | None:
        """Sent by a page that shows a job: it gets the job now and every change after (None: no such job)."""
        try:
            job_id = payloads.watched_job(data)
        except PayloadError:
            return None
        with self.coordinator.lock:  # no push goes between the view and the room, and the next one is whole
            view = self.coordinator.job_view(job_id)
            if view is not None:
                join_room(f"job:{job_id}")
                self.coordinator.pushes.watched(job_id)
        return view

    def on_unwatch(self, data: Any = None) -> None:
        """Sent by a page that stops showing a job."""
        try:
            leave_room(f"job:{payloads.watched_job(data)}")
        except PayloadError:
            pass

    # --- live recordings (see LiveJobs and README "Live mode") ---------------------------------------------

    def on_live_start(self, data: Any = None) -> dict[str, Any]:
        """``{name, sample_rate, engine?, model?}``: start a live recording → ``{job, key, ack}``; the page watches
        the job."""
        try:
            start = payloads.live_start(data)
        except PayloadError as exc:
            return {"error": str(exc)}
        answer = self.live.start(display_name(start.name), start.sample_rate, request.sid,
                                 request.remote_addr or "?", start.requirement)
        if "job" in answer:
            join_room(f"job:{answer['job']}")
        return answer

    def on_live_chunk(self, data: Any = None) -> dict[str, Any]:
        """``{job, key, seq, pcm}`` (16-bit little-endian mono PCM) → ``{ack}``: all chunks up to ``ack`` are
        stored."""
        try:
            ref = payloads.live_ref(data)
        except PayloadError as exc:
            return {"ack": -1, "error": f"malformed chunk: {exc}"}
        try:
            chunk = payloads.live_chunk(data)
        except PayloadError as exc:
            return self.live.refuse(ref, str(exc))
        return self.live.chunk(chunk)

    def on_live_stop(self, data: Any = None) -> dict[str, Any]:
        """``{job, key, last_seq}``: Stop was pressed after chunk ``last_seq`` → ``{ack, finished}``."""
        try:
            ref = payloads.live_ref(data)
        except PayloadError as exc:
            return {"ack": -1, "error": f"malformed stop: {exc}"}
        try:
            stop = payloads.live_stop(data)
        except PayloadError as exc:
            return self.live.refuse(ref, str(exc))
        return self.live.stop(stop)

    def on_live_resume(self, data: Any = None) -> dict[str, Any]:
        """``{job, key}`` after a reconnect → ``{ack}``: the page resends every chunk after ``ack``."""
        try:
            ref = payloads.live_ref(data)
        except PayloadError as exc:
            return {"ack": -1, "error": f"malformed resume: {exc}"}
        answer = self.live.resume(ref, request.sid, request.remote_addr or "?")
        if "error" not in answer:
            join_room(f"job:{ref.job}")
        return answer
