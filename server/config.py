"""Settings: defaults here, overridden by ``config.toml``, then by environment variables, then by flags.

Each section of ``config.toml`` maps to one dataclass below; an unknown key or a value of the wrong type is an
error at start-up, not a silent default.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .guard import GuardOptions
from .live import LiveOptions
from .splitter import SplitOptions
from .tentative import TentativeOptions

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config.toml"
TOKEN_ENV = "SCATTERSCRIBE_TOKEN"
ACCESS_TOKEN_ENV = "SCATTERSCRIBE_ACCESS_TOKEN"


@dataclass
class ServerSettings:
    """The ``[server]`` section."""

    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 5000
    data_dir: str = "data"  # relative paths are taken from the repository root
    local_workers: int = 1  # workers this server starts itself (0: none)
    token: str = ""  # shared worker token; empty: generated once and kept in <data_dir>/worker-token
    access_token: str = ""  # if set, the page and the API ask for it (set it when serving a LAN)
    max_upload_mb: float = 512.0
    max_duration_min: float = 240.0
    min_free_disk_mb: float = 100.0  # uploads and live audio are refused (507) rather than fill the disk past this
    header_timeout_s: float = 10.0  # a request's line and headers must arrive within this (idle keep-alive too)
    socket_timeout_s: float = 60.0  # longest wait for any read or write on a connection (> Socket.IO's 30 s ping)
    min_upload_kb_s: float = 32.0  # after socket_timeout_s, a body slower than this on average gets 408
    max_connections: int = 4000  # connections at once; those still waiting for headers make room first
    max_connections_per_client: int = 256  # connections at once from one address (behind a proxy: raise it)
    max_message_mb: float = 16.0  # Socket.IO max_http_buffer_size: a 28 s WAV slice is ~0.9 MB
    max_text_chars: int = 20_000  # longest text a worker may return for one slice
    push_interval_s: float = 0.25  # pages get a job's view and the jobs and workers lists at most this often
    log_level: str = "info"
    async_mode: str = "eventlet"  # or "threading" (server/runtime.py says what differs)
    certfile: str = ""  # https: the certificate (chain) file; with keyfile
    keyfile: str = ""  # https: its private key
    self_signed: bool = False  # https with a certificate made for this machine in <data_dir>/tls/
    announce: bool = True  # a server on the network announces itself by DNS-SD, so workers need no --server

    def __post_init__(self) -> None:
        if self.async_mode not in ("eventlet", "threading"):
            raise ValueError(f"[server] async_mode must be eventlet or threading, not {self.async_mode!r}")


@dataclass
class SchedulerSettings:
    """The ``[scheduler]`` section."""

    heartbeat_s: float = 5.0  # how often workers say they are alive
    lease_timeout_s: float = 30.0  # a slice goes back to the queue after this long without a heartbeat
    slice_timeout_s: float = 600.0  # ... or after this long in all
    max_attempts: int = 3  # tries per slice before it is marked failed
    straggler_factor: float = 3.0  # duplicate a slice out this many times longer than its worker's speed predicts
    straggler_min_s: float = 10.0  # ... and never before this many seconds


@dataclass
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    splitter: SplitOptions = field(default_factory=SplitOptions)
    live: LiveOptions = field(default_factory=LiveOptions)
    guard: GuardOptions = field(default_factory=GuardOptions)
    tentative: TentativeOptions = field(default_factory=TentativeOptions)
    config_path: Path | None = None  # the file these came from (local workers read their [worker] section)

    @property
    def data_path(self) -> Path:
        path = Path(self.server.data_dir)
        return path if path.is_absolute() else ROOT / path


def _section(cls: type, values: dict[str, Any], name: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"[{name}] has unknown settings: {', '.join(sorted(unknown))}")
    defaults = cls()
    for key, value in values.items():
        expected = type(getattr(defaults, key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            values[key] = float(value)
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ValueError(f"[{name}] {key} should be {expected.__name__}, not {value!r}")
    return cls(**values)


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None,
                  environ: dict[str, str] | None = None) -> Settings:
    """Defaults ← config file (``path``, or ``config.toml`` if present) ← environment ← ``overrides``
    (``{"server.port": 5001}``, from flags)."""
    environ = os.environ if environ is None else environ
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    raw: dict[str, dict[str, Any]] = {}
    if path is not None:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    for key, value in (overrides or {}).items():
        section, name = key.split(".")
        if value is not None:
            raw.setdefault(section, {})[name] = value
    if environ.get(TOKEN_ENV) and "server.token" not in (overrides or {}):
        raw.setdefault("server", {})["token"] = environ[TOKEN_ENV]
    if environ.get(ACCESS_TOKEN_ENV):
        raw.setdefault("server", {})["access_token"] = environ[ACCESS_TOKEN_ENV]
    # [worker] belongs to the worker's own settings
    known = {"server", "scheduler", "splitter", "live", "guard", "tentative", "worker"}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown config sections: {', '.join(sorted(unknown))}")
    return Settings(
        server=_section(ServerSettings, dict(raw.get("server", {})), "server"),
        scheduler=_section(SchedulerSettings, dict(raw.get("scheduler", {})), "scheduler"),
        splitter=_section(SplitOptions, dict(raw.get("splitter", {})), "splitter"),
        live=_section(LiveOptions, dict(raw.get("live", {})), "live"),
        guard=_section(GuardOptions, dict(raw.get("guard", {})), "guard"),
        tentative=_section(TentativeOptions, dict(raw.get("tentative", {})), "tentative"),
        config_path=Path(path) if path else None,
    )


def parse_args(argv: list[str] | None = None) -> Settings:
    """``python -m server`` flags; each one is also a ``[server]`` setting in config.toml."""
    parser = argparse.ArgumentParser(prog="python -m server", description="Scatterscribe server")
    parser.add_argument("--config", type=Path, help="settings file (default: config.toml in the repository)")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 5000)")
    parser.add_argument("--data-dir", help="folder for the database and audio (default ./data)")
    parser.add_argument("--local-workers", type=int, help="workers to start on this machine (default 1; 0: none)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--async-mode", choices=["eventlet", "threading"],
                        help="eventlet (default) or threading (see server/runtime.py)")
    parser.add_argument("--certfile", help="serve https with this certificate (chain) file; with --keyfile")
    parser.add_argument("--keyfile", help="the certificate's private key file")
    parser.add_argument("--self-signed", action="store_true", default=None,
                        help="serve https with a certificate made for this machine (kept in <data_dir>/tls/); "
                             "prints its SHA-256 fingerprint")
    parser.add_argument("--no-announce", dest="announce", action="store_false", default=None,
                        help="do not announce this server on the LAN (DNS-SD): workers then need --server")
    args = parser.parse_args(argv)
    return load_settings(args.config, {
        "server.host": args.host, "server.port": args.port, "server.data_dir": args.data_dir,
        "server.local_workers": args.local_workers, "server.log_level": args.log_level,
        "server.async_mode": args.async_mode,
        "server.certfile": args.certfile, "server.keyfile": args.keyfile, "server.self_signed": args.self_signed,
        "server.announce": args.announce,
    })
