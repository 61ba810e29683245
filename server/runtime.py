"""The async mode, in one place: eventlet (the default, as the user's card asks) or plain threads.

eventlet's upstream has stopped maintaining it, so nothing else in the server depends on it: this module patches
the standard library for it, says how to run blocking work, and builds the HTTP server (``serving.py`` for
eventlet; Werkzeug's threaded server otherwise). ``[server] async_mode`` (or ``--async-mode``) picks one.

What differs: under eventlet the server serves thousands of connections from one OS thread, with the connection
caps and deadlines of ``serving.py``; under threading each connection holds an OS thread and those caps do not
apply (Werkzeug's server has none), which suits a small deployment or a move to another server.
"""

from __future__ import annotations

import argparse
import logging
import ssl
import threading
import tomllib
import warnings
from pathlib import Path
from typing import Any, Callable

MODES = ("eventlet", "threading")
#: The settings file read when ``--config`` names none (``config.DEFAULT_CONFIG``, which imports too much).
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"

log = logging.getLogger("scatterscribe")


def prepare(mode: str) -> None:
    """Make the process ready for ``mode``; for eventlet, patch the standard library. Call it first thing,
    before anything opens a socket or starts a thread (``python -m server`` does)."""
    if mode not in MODES:
        raise ValueError(f"async_mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "eventlet":
        # eventlet warns that it is deprecated on import; the user's card asks for it, and it works well here.
        warnings.filterwarnings("ignore", message=r"(?s)\s*Eventlet is deprecated")
        import eventlet

        eventlet.monkey_patch()


class _Quiet(argparse.ArgumentParser):
    def error(self, message: str):  # the full parser (config.parse_args) says what is wrong, once
        raise ValueError(message)


def wanted_mode(argv: list[str] | None = None) -> str:
    """The async mode ``python -m server`` is asked for (``--async-mode``, else ``[server] async_mode`` in the
    ``--config`` file or config.toml, else eventlet), read with nothing but argparse and tomllib. The full
    settings (``config.parse_args``) import numpy and scipy, whose locks eventlet could not green if it patched
    after them ("1 RLock(s) were not greened" at every start): this is what lets :func:`prepare` run first.
    Anything it cannot read gives the default; the full parse then says what is wrong."""
    parser = _Quiet(add_help=False)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--async-mode")
    try:
        args, _ = parser.parse_known_args(argv)
        if args.async_mode:
            return args.async_mode
        path = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
        if path is None:
            return "eventlet"
        with open(path, "rb") as f:
            return str(tomllib.load(f).get("server", {}).get("async_mode", "eventlet"))
    except (ValueError, OSError, AttributeError):  # AttributeError: a [server] that is not a table
        return "eventlet"


def active_mode(wanted: str) -> str:
    """The mode the app runs in: eventlet only in a process that :func:`prepare` patched for it (an app built
    inside a test process, unpatched, runs threaded)."""
    if wanted != "eventlet":
        return wanted
    try:
        import eventlet.patcher
    except ImportError:
        return "threading"
    return "eventlet" if eventlet.patcher.is_monkey_patched("socket") else "threading"


def blocking_runner(mode: str) -> Callable[..., Any]:
    """How to run CPU or disk work without stalling the server: eventlet's thread pool, or a plain call (under
    threading every request already has its own thread)."""
    if mode == "eventlet":
        from eventlet import tpool

        return tpool.execute
    return lambda fn, *args: fn(*args)


def make_server(mode: str, app: Callable, settings: Any, ssl_context: ssl.SSLContext | None = None) -> Any:
    """The HTTP server for ``mode``, bound and ready: ``serve_forever()``, ``stop()`` (safe from a signal
    handler) and ``close_all()``."""
    if mode == "eventlet":
        from .serving import Serving

        return Serving(app, settings, ssl_context=ssl_context)
    return ThreadedServing(app, settings, ssl_context)


class ThreadedServing:
    """Werkzeug's threaded WSGI server (WebSockets through simple-websocket, as Flask-SocketIO's threading mode
    uses them)."""

    def __init__(self, app: Callable, settings: Any, ssl_context: ssl.SSLContext | None = None):
        from werkzeug.serving import make_server

        self.server = make_server(settings.host, settings.port, app, threaded=True, ssl_context=ssl_context)

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        # shutdown() waits for serve_forever to return, which runs in the thread a signal handler interrupts:
        # ask from another thread.
        threading.Thread(target=self.server.shutdown, name="shutdown", daemon=True).start()

    def close_all(self) -> None:
        self.server.server_close()
