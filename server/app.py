"""The application factory: settings in, a wired Flask app and its Socket.IO server out."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
from typing import Any

from flask import Flask, request
from flask_socketio import SocketIO

from . import api, runtime, strict_json
from .config import ROOT, Settings
from .coordinator import Coordinator
from .events import WRONG_WORKER_TOKEN, PageNamespace, WorkerNamespace
from .ids import JobIdConverter
from .limits import FailureThrottle, RefusalLog, TokenGate, Verdict
from .live_captions import LiveCaptions
from .live_jobs import LiveJobs
from .store import Store

log = logging.getLogger("scatterscribe")

ACCESS_COOKIE = "scatterscribe_access"


def worker_token(settings: Settings) -> str:
    """The shared worker token: from the settings, else generated once and kept (mode 600) in the data folder."""
    if settings.server.token:
        return settings.server.token
    path = settings.data_path / "worker-token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def _presented_access_token(auth: dict[str, Any] | None = None) -> str | None:
    header = request.headers.get("Authorization", "")
    return ((auth or {}).get("access_token") or (header[7:] if header.startswith("Bearer ") else None)
            or request.args.get("access_token") or request.cookies.get(ACCESS_COOKIE))


def create_app(settings: Settings) -> tuple[Flask, SocketIO]:
    settings.data_path.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, static_folder=str(ROOT / "web"), static_url_path="/static")
    app.request_class = api.UploadRequest
    app.url_map.converters["job"] = JobIdConverter  # every route's job id is checked here, before any handler
    app.config["MAX_CONTENT_LENGTH"] = int(settings.server.max_upload_mb * 2**20)
    app.json = strict_json.FlaskJSON(app)
    # A 28 s slice is ~0.9 MB of WAV; the default 1 MB limit would drop anything longer, so set it on purpose.
    mode = runtime.active_mode(settings.server.async_mode)
    socketio = SocketIO(app, async_mode=mode,
                        max_http_buffer_size=int(settings.server.max_message_mb * 2**20),
                        ping_interval=10, ping_timeout=20, cors_allowed_origins=[], json=strict_json.SocketIOJSON)

    run_blocking = runtime.blocking_runner(mode)

    def emit(event: str, data: Any, *, to: str | None = None, namespace: str = "/") -> None:
        socketio.emit(event, data, to=to, namespace=namespace)

    store = Store(settings.data_path / "scatterscribe.db")
    coordinator = Coordinator(settings, store, emit, run_blocking, spawn=socketio.start_background_task,
                              sleep=socketio.sleep)
    app.extensions["scatterscribe"] = coordinator
    app.register_blueprint(api.bp)

    access_token = settings.server.access_token
    # One throttle for both tokens: an address guessing either waits the same (limits.TokenGate).
    throttle = FailureThrottle()
    how = "open the page as /?access_token=TOKEN or send 'Authorization: Bearer TOKEN'"
    access_gate = TokenGate(throttle, RefusalLog(log, "a request with a wrong or missing access token"),
                            missing=f"this server needs its access token: {how}",
                            wrong=f"wrong access token: {how}")
    worker_gate = TokenGate(throttle, RefusalLog(log, "a worker"), missing=WRONG_WORKER_TOKEN,
                            wrong=WRONG_WORKER_TOKEN)

    def access_check(auth: dict[str, Any] | None = None) -> Verdict:
        if not access_token:
            return Verdict()
        return access_gate.check(_presented_access_token(auth), access_token, request.remote_addr or "?",
                                 time.monotonic())

    @app.before_request
    def check_access():
        if request.endpoint == "static":
            return None
        verdict = access_check()
        if not verdict.status:
            return None
        response, status = api.error(verdict.status, verdict.message)
        if status == 429:
            response.headers["Retry-After"] = verdict.message.rsplit(" ", 2)[-2]
        return response, status

    @app.after_request
    def remember_access(response):
        given = request.args.get("access_token")
        if access_token and given and hmac.compare_digest(given.encode(), access_token.encode()):
            response.set_cookie(ACCESS_COOKIE, given, httponly=True, samesite="Strict")
        return response

    captions = LiveCaptions(coordinator, settings.tentative)
    socketio.on_namespace(WorkerNamespace(coordinator, worker_token(settings), worker_gate,
                                          settings.scheduler.heartbeat_s, captions))
    live = LiveJobs(coordinator, settings.live, sleep=socketio.sleep, captions=captions)
    socketio.on_namespace(PageNamespace(coordinator, access_check, live))
    coordinator.resume()
    live.recover()

    def reaper() -> None:
        """Every second: take back expired leases, hand out work, close abandoned live recordings. One bad tick
        never ends the loop."""
        while True:
            socketio.sleep(1.0)
            if coordinator.stopped:
                return
            for refusals in (access_gate.refusals, worker_gate.refusals):
                refusals.flush(time.monotonic())
            for tick in (coordinator.tick, live.tick):  # leases, then live recordings gone quiet
                try:
                    tick()
                except Exception:  # noqa: BLE001 - keep serving; the traceback goes to the log
                    log.exception("%s failed", tick.__qualname__)

    socketio.start_background_task(reaper)
    return app, socketio

