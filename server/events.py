"""Socket.IO handlers: thin adapters that check their input and call the coordinator.

Two namespaces: ``/worker`` for workers (token required) and ``/`` for pages (access token if configured).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import request
from flask_socketio import ConnectionRefusedError, Namespace, join_room, leave_room

from .api import display_name
from .coordinator import Coordinator
from .ids import is_job_id
from .live_captions import LiveCaptions
from .live_jobs import LiveJobs
from .scheduler import WorkerInfo

log = logging.getLogger("scatterscribe")


def token_matches(given: Any, expected: str) -> bool:
    """Constant-time comparison, so the time taken says nothing about how much of a guess was right."""
    if not expected or not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _text(value: Any, limit: int, default: str = "") -> str:
    text = "".join(ch for ch in str(value if value is not None else default) if ch.isprintable())
    return text[:limit] or default


def worker_info(auth: dict[str, Any]) -> WorkerInfo:
    """What a connecting worker says about itself, bounded and cleaned."""
    try:
        slots = min(64, max(1, int(auth.get("slots", 1))))
        max_slice_s = min(3600.0, max(1.0, float(auth.get("max_slice_s", 30.0))))
    except (TypeError, ValueError):
        raise ConnectionRefusedError("slots and max_slice_s must be numbers") from None
    return WorkerInfo(name=_text(auth.get("name"), 64, "worker"), engine=_text(auth.get("engine"), 32, "unknown"),
                      model=_text(auth.get("model"), 128), slots=slots, max_slice_s=max_slice_s,
                      tentative=auth.get("tentative") is True)


class WorkerNamespace(Namespace):
    """Events sent by workers."""

    def __init__(self, coordinator: Coordinator, token: str, heartbeat_s: float, captions: LiveCaptions):
        super().__init__("/worker")
        self.coordinator = coordinator
        self.token = token
        self.heartbeat_s = heartbeat_s
        self.captions = captions

    def on_connect(self, auth: dict[str, Any] | None = None) -> None:
        """Sent by a worker when it connects: proves the shared token and announces itself."""
        auth = auth if isinstance(auth, dict) else {}
        if not token_matches(auth.get("token"), self.token):
            log.warning("refused a worker from %s: wrong or missing token", request.remote_addr)
            raise ConnectionRefusedError("wrong or missing worker token")
        self.coordinator.worker_connected(request.sid, worker_info(auth))
        # Work goes out once the connection is acknowledged, not from inside the handshake.
        self.socketio.start_background_task(self._dispatch_soon, request.sid)

    def _dispatch_soon(self, sid: str) -> None:
        self.socketio.sleep(0.05)
        self.emit("welcome", {"heartbeat_s": self.heartbeat_s}, room=sid)
        self.coordinator.replan_unservable()  # a job waiting for shorter slices than it has gets them now
        self.coordinator.dispatch()

    def on_disconnect(self, reason: Any = None) -> None:
        """Sent when a worker's connection ends, however it ends: its slices go back to the queue."""
        self.coordinator.worker_disconnected(request.sid)

    def on_heartbeat(self, data: Any = None) -> dict[str, bool]:
        """Sent by workers every ``heartbeat_s`` while connected."""
        return {"ok": self.coordinator.heartbeat(request.sid)}

    def on_result(self, data: Any) -> dict[str, Any]:
        """Sent by a worker with the text of a slice it holds."""
        if not isinstance(data, dict):
            return {"ok": False, "error": "malformed result"}
        return self.coordinator.result(request.sid, data)

    def on_slice_error(self, data: Any) -> dict[str, Any]:
        """Sent by a worker that could not transcribe a slice it holds."""
        if not isinstance(data, dict):
            return {"ok": False, "error": "malformed error report"}
        return self.coordinator.error(request.sid, data)

    def on_tentative_text(self, data: Any) -> None:
        """Sent by a worker with the tentative text of a live recording's open part it was asked for
        (``{id, job, text}``); anything else is ignored (tentative text is optional)."""
        if isinstance(data, dict):
            self.captions.answered(request.sid, data)


class PageNamespace(Namespace):
    """Events sent by web pages."""

    def __init__(self, coordinator: Coordinator, access_allowed, live: LiveJobs):
        super().__init__("/")
        self.coordinator = coordinator
        self.access_allowed = access_allowed
        self.live = live

    def on_connect(self, auth: dict[str, Any] | None = None) -> None:
        """Sent by a page when it opens; refused without the access token when one is set."""
        if not self.access_allowed(auth if isinstance(auth, dict) else {}):
            raise ConnectionRefusedError("access token required")

    def on_watch(self, data: Any) -> dict[str, Any] | None:
        """Sent by a page that shows a job: it gets the job now and every change after."""
        job_id = str((data or {}).get("job", "")) if isinstance(data, dict) else ""
        view = self.coordinator.job_view(job_id) if is_job_id(job_id) else None
        if view is not None:
            join_room(f"job:{job_id}")
        return view

    def on_unwatch(self, data: Any) -> None:
        """Sent by a page that stops showing a job."""
        job_id = str((data or {}).get("job", "")) if isinstance(data, dict) else ""
        leave_room(f"job:{job_id}")

    # --- live recordings (see LiveJobs and README "Live mode") ---------------------------------------------

    def on_live_start(self, data: Any) -> dict[str, Any]:
        """``{name, sample_rate}``: start a live recording → ``{job, key, ack}``; the page watches the job."""
        if not isinstance(data, dict):
            return {"error": "send {name, sample_rate}"}
        answer = self.live.start(display_name(str(data.get("name") or "")), data.get("sample_rate"))
        if "job" in answer:
            join_room(f"job:{answer['job']}")
        return answer

    def on_live_chunk(self, data: Any) -> dict[str, Any]:
        """``{job, key, seq, pcm}`` (16-bit little-endian mono PCM) → ``{ack}``: all chunks up to ``ack`` are
        stored."""
        return self.live.chunk(data) if isinstance(data, dict) else {"ack": -1, "error": "malformed chunk"}

    def on_live_stop(self, data: Any) -> dict[str, Any]:
        """``{job, key, last_seq}``: Stop was pressed after chunk ``last_seq`` → ``{ack, finished}``."""
        return self.live.stop(data) if isinstance(data, dict) else {"ack": -1, "error": "malformed stop"}

    def on_live_resume(self, data: Any) -> dict[str, Any]:
        """``{job, key}`` after a reconnect → ``{ack}``: the page resends every chunk after ``ack``."""
        if not isinstance(data, dict):
            return {"ack": -1, "error": "malformed resume"}
        answer = self.live.resume(data)
        if "error" not in answer:
            join_room(f"job:{data['job']}")
        return answer
