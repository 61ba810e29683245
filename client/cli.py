"""Command line of the worker. Settings: defaults ← ``[worker]`` of config.toml ← environment ← flags."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from .engines import ENGINES, create_engine

TOKEN_ENV = "SCATTERSCRIBE_TOKEN"

#: ``[worker]`` settings and their defaults; every flag below is one of these.
DEFAULTS: dict[str, Any] = {
    "server": "",  # empty: the server announced on the LAN (DNS-SD)
    "token": "",
    "ca": "",  # a CA (or the server's own certificate) to trust for an https server
    "fingerprint": "",  # or: trust exactly the certificate with this SHA-256 fingerprint
    "name": "",
    "engine": "faster-whisper",
    "model": "",
    "device": "cpu",
    "compute_type": "int8",
    "threads": 2,
    "slots": 0,  # 0: one per thread
    "beam_size": 5,
    "max_slice_s": 0.0,  # 0: the engine's own limit
    "diarize": False,  # send speaker voices with each result (needs requirements-diarize.txt)
    "log_level": "info",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m client", description="Scatterscribe worker")
    p.add_argument("--config", type=Path, help="settings file; its [worker] section is read")
    p.add_argument("--server", help="server URL, e.g. https://192.168.1.10:5000 (default: the one server "
                                    "announced on the LAN, found by DNS-SD)")
    p.add_argument("--token", help=f"shared worker token (better: the {TOKEN_ENV} environment variable)")
    p.add_argument("--ca", help="https: trust this CA file, e.g. a copy of a self-signed server's "
                                "<data_dir>/tls/cert.pem (default: the system's CAs)")
    p.add_argument("--fingerprint", help="https: trust exactly the certificate with this SHA-256 fingerprint "
                                         "(python -m server --self-signed prints it)")
    p.add_argument("--name", help="name shown on the page (default: host name and process id)")
    p.add_argument("--engine", choices=list(ENGINES), help="speech engine (default faster-whisper)")
    p.add_argument("--model", help="faster-whisper: model name or CTranslate2 folder (default: bundled "
                                   "tiny.en); whisper: model name or checkpoint file (default tiny.en); "
                                   "sphinx: en-US; google: language tag (default en-US)")
    p.add_argument("--device", help="cpu or cuda (faster-whisper, whisper)")
    p.add_argument("--compute-type", help="faster-whisper compute type (default int8)")
    p.add_argument("--threads", type=int, help="CPU threads for the engine (faster-whisper, whisper)")
    p.add_argument("--slots", type=int, help="slices this worker holds, and decodes together, at once "
                                             "(default: one per thread)")
    p.add_argument("--beam-size", type=int, help="beam size for Whisper decoding (faster-whisper, whisper)")
    p.add_argument("--max-slice-s", type=float, help="longest slice to accept (default: the engine's limit)")
    p.add_argument("--diarize", action="store_const", const=True,
                   help="also send the voices of each slice's speech, so the server can label speakers "
                        "(needs: pip install -r requirements-diarize.txt)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    return p


def settings_from(args: argparse.Namespace, environ: dict[str, str]) -> dict[str, Any]:
    settings = dict(DEFAULTS)
    config = args.config
    if config is None:
        default = Path(__file__).resolve().parent.parent / "config.toml"
        config = default if default.exists() else None
    if config is not None:
        with open(config, "rb") as f:
            section = tomllib.load(f).get("worker", {})
        unknown = set(section) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"[worker] has unknown settings: {', '.join(sorted(unknown))}")
        settings.update(section)
    if environ.get(TOKEN_ENV):
        settings["token"] = environ[TOKEN_ENV]
    for key in DEFAULTS:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    if not settings["name"]:
        settings["name"] = f"{socket.gethostname()}-{os.getpid()}"
    if not settings["slots"]:  # one slice per thread: a batch keeps every thread's decoder busy
        settings["slots"] = max(1, int(settings["threads"]))
    return settings


def main(argv: list[str] | None = None) -> int:
    """Run a worker; Ctrl-C or SIGTERM stops it with exit code 0 at any point (see ``_main``)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # like Ctrl-C until the worker is running
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 0


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        s = settings_from(args, dict(os.environ))
    except (ValueError, OSError) as exc:
        print(f"worker: bad settings: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=s["log_level"].upper(), format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    log = logging.getLogger("scatterscribe.worker")
    if not s["token"]:
        print(f"worker: no token: pass --token or set {TOKEN_ENV} (the server keeps it in <data_dir>/worker-token)",
              file=sys.stderr)
        return 2
    from . import tls
    from .connection import TokenRefused, Worker

    try:
        ssl_context = tls.context(s["ca"], s["fingerprint"])
    except (ValueError, OSError) as exc:  # a malformed fingerprint, an unreadable CA file
        print(f"worker: bad settings: {exc}", file=sys.stderr)
        return 2
    if not s["server"]:
        from . import discover

        try:
            s["server"] = discover.find_server()
        except discover.SeveralServers as exc:
            print(f"worker: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 0

    t0 = time.perf_counter()
    try:
        engine = create_engine(s["engine"], model=s["model"], device=s["device"], compute_type=s["compute_type"],
                               threads=s["threads"], beam_size=s["beam_size"], slots=s["slots"])
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"worker: cannot load the {s['engine']} engine: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # it logs every slice; we log our own line
    log.info("loaded %s %s in %.1f s", engine.name, engine.model, time.perf_counter() - t0)
    diarizer = None
    if s["diarize"]:
        t0 = time.perf_counter()
        try:
            from .diarize import VoiceEmbedder
            diarizer = VoiceEmbedder()
        except RuntimeError as exc:
            print(f"worker: cannot load the voice encoder: {exc}", file=sys.stderr)
            return 2
        log.info("loaded the %s voice encoder in %.1f s", diarizer.name, time.perf_counter() - t0)
    worker = Worker(s["server"], s["token"], engine, s["name"], slots=s["slots"],
                    max_slice_s=s["max_slice_s"] or None, diarizer=diarizer, ssl_context=ssl_context)
    # Ctrl-C and SIGTERM alike: hand back what this worker holds, disconnect, exit 0 (worker.stop).
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    try:
        worker.run()
    except TokenRefused as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 3
    except tls.CertificateRefused as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 4
    finally:
        worker.stop()
    # Stopped, with everything it held handed back. A slice still being decoded is void, but the engine's
    # threads would hold the exit until it is done (its thread pools are joined at exit): leave now.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
