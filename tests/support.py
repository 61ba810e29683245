"""Helpers for tests that run the real thing: server and worker processes on 127.0.0.1, the real model, the
corpus of real recordings. Every wait is bounded."""

from __future__ import annotations

import csv
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import requests
import socketio

ROOT = Path(__file__).resolve().parent.parent


def _find_corpus() -> Path:
    """The corpus of real recordings: $SCATTERSCRIBE_CORPUS, else ../shared/corpus beside the checkout, else the
    workplace's shared folder."""
    if os.environ.get("SCATTERSCRIBE_CORPUS"):
        return Path(os.environ["SCATTERSCRIBE_CORPUS"])
    candidates = [ROOT.parent / "shared" / "corpus", Path("/work/shared/corpus")]
    return next((c for c in candidates if (c / "manifest.tsv").exists()), candidates[0])


CORPUS = _find_corpus()
TOKEN = "test-token-0123456789"
PYTHON = sys.executable


def corpus_file(name: str) -> Path:
    path = CORPUS / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the tests need the corpus of real recordings "
                                f"(../shared/corpus, or set SCATTERSCRIBE_CORPUS)")
    return path


@functools.lru_cache(maxsize=1)
def manifest() -> dict[str, dict[str, str]]:
    with open(corpus_file("manifest.tsv"), newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


@functools.lru_cache(maxsize=1)
def _normalizer():
    from whisper.normalizers import EnglishTextNormalizer  # the corpus README's normaliser
    return EnglishTextNormalizer()


def normalise(text: str) -> str:
    return _normalizer()(text)


def wer(reference: str | list[str], hypothesis: str | list[str]) -> float:
    """Word error rate in percent, both sides normalised as the corpus README says."""
    import jiwer
    refs = [reference] if isinstance(reference, str) else reference
    hyps = [hypothesis] if isinstance(hypothesis, str) else hypothesis
    return 100.0 * jiwer.wer([normalise(r) for r in refs], [normalise(h) for h in hyps])


#: Debian's Chromium (Playwright's own browser download cannot run offline) and the flags that keep it quiet and
#: offline; the page tests, the live bench and the README screenshot all start it through :func:`launch_chromium`.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def launch_chromium(playwright: Any, *extra: str) -> Any:
    """A headless Debian Chromium under Playwright, with ``extra`` flags."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + list(extra))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def write_config(path: Path, **sections: dict[str, Any]) -> Path:
    """A config.toml with the given sections, e.g. ``scheduler={"lease_timeout_s": 3.0}``."""
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {value!r}".replace("'", '"') if isinstance(value, str)
                         else f"{key} = {str(value).lower() if isinstance(value, bool) else value}")
    path.write_text("\n".join(lines) + "\n")
    return path


class Process:
    """A child process whose output goes to a log file the test can read."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path = ROOT):
        self.args, self.log_path = args, log
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, cwd=self.cwd, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no goodbye, no cleanup, like a machine losing power."""
        if self.alive():
            self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


class Server(Process):
    """``python -m server`` on a free port with its own data folder. ``flags``: more of its command line; with
    ``--self-signed`` it serves https and the test's requests trust its certificate. ``host``: the address it
    binds, and is reached at unless ``reach`` names another. ``wrap``: a command the server runs under (e.g.
    ``ip netns exec NAME``)."""

    def __init__(self, tmp: Path, local_workers: int = 0, config: Path | None = None, port: int | None = None,
                 env: dict[str, str] | None = None, name: str = "server", cwd: Path = ROOT, python: str = PYTHON,
                 flags: tuple[str, ...] = (), host: str = "127.0.0.1", reach: str | None = None,
                 wrap: tuple[str, ...] = ()):
        self.port = port or free_port()
        https = "--self-signed" in flags
        self.url = f"{'https' if https else 'http'}://{reach or host}:{self.port}"
        self.data_dir = tmp / "data"
        self.verify: str | bool = str(self.data_dir / "tls" / "cert.pem") if https else True
        args = [*wrap, python, "-m", "server", "--port", str(self.port), "--data-dir", str(self.data_dir),
                "--local-workers", str(local_workers), "--host", host, *flags]
        if config is not None:
            args += ["--config", str(config)]
        access = (env or {}).get("SCATTERSCRIBE_ACCESS_TOKEN")
        self.headers = {"Authorization": f"Bearer {access}"} if access else {}
        super().__init__(args, tmp / f"{name}.log", env={"SCATTERSCRIBE_TOKEN": TOKEN, **(env or {})}, cwd=cwd)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise

    def wait_ready(self, timeout: float = 60) -> None:
        def up():
            if not self.alive():
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                return requests.get(f"{self.url}/api/workers", timeout=2, verify=self.verify).status_code < 500
            except OSError:  # not listening yet (an https server: its certificate may not be written yet either)
                return False
        wait_for(up, timeout, "the server to answer")

    # --- API ---

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, timeout=30, headers=self.headers, verify=self.verify, **kw)

    def upload(self, path: Path, field: str = "audio", **form: str) -> requests.Response:
        with open(path, "rb") as f:
            return requests.post(f"{self.url}/api/jobs", files={field: (path.name, f, "audio/wav")}, data=form,
                                 headers=self.headers, timeout=120, verify=self.verify)

    def submit(self, path: Path, **form: str) -> str:
        response = self.upload(path, **form)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.get(f"/api/jobs/{job_id}")
        assert response.ok, response.text
        return response.json()

    def wait_job(self, job_id: str, timeout: float = 180) -> dict[str, Any]:
        return wait_for(lambda: (j := self.job(job_id))["status"] in ("done", "failed") and j, timeout,
                        f"job {job_id} to finish", interval=0.25)

    def workers(self) -> list[dict[str, Any]]:
        return self.get("/api/workers").json()["workers"]

    def wait_workers(self, n: int, timeout: float = 60) -> list[dict[str, Any]]:
        return wait_for(lambda: len(w := self.workers()) >= n and w, timeout, f"{n} worker(s) to connect")


class Worker(Process):
    """``python -m client`` connected to a test server."""

    def __init__(self, server: Server, name: str, *extra: str, token: str | None = TOKEN, threads: int = 1,
                 cwd: Path = ROOT, entry: list[str] | None = None):
        self.name = name
        args = [PYTHON] + (entry or ["-m", "client"]) + ["--server", server.url, "--name", name,
                                                         "--threads", str(threads), *extra]
        env = {"SCATTERSCRIBE_TOKEN": token} if token is not None else {"SCATTERSCRIBE_TOKEN": ""}
        super().__init__(args, server.log_path.parent / f"worker-{name}.log", env=env, cwd=cwd)


class RawWorker:
    """A hand-driven worker connection with the valid token: records the slices it is sent, answers nothing
    unless the test makes it."""

    def __init__(self, server: Server, name: str, max_slice_s: float = 30.0):
        self.slices: list[dict] = []
        self.sio = socketio.Client()
        self.sio.on("slice", lambda data: self.slices.append(data), namespace="/worker")
        self.sio.connect(server.url, namespaces=["/worker"], transports=["websocket"], wait_timeout=10,
                         auth={"token": TOKEN, "name": name, "engine": "faster-whisper", "model": "tiny.en",
                               "slots": 1, "max_slice_s": max_slice_s})

    def wait_slice(self) -> dict:
        data = wait_for(lambda: self.slices and self.slices[-1], 30, "a slice for the raw worker")
        return {"lease": data["lease"], "job": data["job"], "index": data["index"]}

    def result(self, held: dict, text: str, **changes) -> dict:
        """Send a result for the slice ``held`` describes, with some of its fields changed. It is encoded with
        Python's plain ``json``, which writes an infinity as the token ``Infinity`` as a hostile worker may: an app
        created in this test process (tests/test_corrections.py) sets python-socketio's process-wide packet
        encoder to the server's strict one, which would refuse to send it."""
        from socketio import packet

        strict, packet.Packet.json = packet.Packet.json, json
        try:
            return self.sio.call("result", {**held, **changes, "text": text}, namespace="/worker", timeout=10)
        finally:
            packet.Packet.json = strict
