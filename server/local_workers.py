"""Workers this server starts on its own machine, so one machine works out of the box.

Each is an ordinary ``python -m client`` process, given the token through its environment (never on the
command line, where ``ps`` would show it). One that exits is started again after a growing pause; one that
had run for a while before it exited starts the pause afresh.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .config import ROOT, TOKEN_ENV

log = logging.getLogger("scatterscribe")

PR_SET_PDEATHSIG = 1
HEALTHY_RUN_S = 120.0  # a worker that ran this long before it exited was not crash-looping


def restart_delay_s(quick_exits: int) -> float:
    """The pause before starting a worker again after its ``quick_exits``-th exit in a row (1, 2, ...): doubling
    from 2 s, at most 60 s, so a worker that cannot start does not spin the machine."""
    return min(60.0, 2.0 ** min(quick_exits, 6))


def quick_exits_after(quick_exits: int, ran_s: float) -> int:
    """How many exits in a row count towards the pause once a worker that ran ``ran_s`` seconds exits: a run of
    ``HEALTHY_RUN_S`` or more ends the streak, so a worker that dies once in a long while is back in 2 s."""
    return 1 if ran_s >= HEALTHY_RUN_S else quick_exits + 1


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the server dies, even by SIGKILL, so a
    restarted server does not find the old local workers still running beside the new ones."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the workers outlive a killed server and reconnect to the next
        pass


class LocalWorkers:
    def __init__(self, count: int, server_url: str, token: str, config_path: Path | None,
                 extra_args: list[str] | None = None):
        """``extra_args``: flags every worker gets (``--fingerprint`` of an https server's certificate)."""
        self.count = count
        self.server_url = server_url
        self.extra_args = list(extra_args or [])
        self.token = token
        self.config_path = config_path
        self.processes: list[subprocess.Popen | None] = [None] * count
        self.quick_exits = [0] * count
        self.started_at = [0.0] * count
        self.next_start = [0.0] * count
        self.stopping = False

    def command(self, n: int) -> list[str]:
        cmd = [sys.executable, "-m", "client", "--server", self.server_url, "--name", f"local-{n + 1}"]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return cmd + self.extra_args

    def _start(self, n: int) -> None:
        env = {**os.environ, TOKEN_ENV: self.token, "PYTHONUNBUFFERED": "1"}
        self.processes[n] = subprocess.Popen(self.command(n), cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                             preexec_fn=_die_with_parent)
        self.started_at[n] = time.monotonic()
        log.info("started local worker local-%d (pid %d)", n + 1, self.processes[n].pid)

    def supervise(self, sleep) -> None:
        """Start the workers and keep them running until :meth:`stop`; ``sleep`` is the event loop's sleep."""
        for n in range(self.count):
            self._start(n)
        while not self.stopping:
            sleep(1.0)
            for n, proc in enumerate(self.processes):
                if self.stopping or proc is None or proc.poll() is None:
                    continue
                now = time.monotonic()
                if self.next_start[n] == 0.0:
                    self.quick_exits[n] = quick_exits_after(self.quick_exits[n], now - self.started_at[n])
                    delay = restart_delay_s(self.quick_exits[n])
                    self.next_start[n] = now + delay
                    log.warning("local worker local-%d exited with code %s; restarting in %.0f s", n + 1,
                                proc.returncode, delay)
                elif now >= self.next_start[n]:
                    self.next_start[n] = 0.0
                    self._start(n)

    def stop(self, sleep=time.sleep, grace_s: float = 5.0) -> None:
        """Ask every worker to stop (SIGTERM: it hands back what it holds), wait up to ``grace_s`` for them with
        ``sleep`` (the event loop's, never a blocking wait), then kill those still running."""
        self.stopping = True
        running = [(n, proc) for n, proc in enumerate(self.processes) if proc is not None and proc.poll() is None]
        for _, proc in running:
            proc.terminate()
        deadline = time.monotonic() + grace_s
        while any(proc.poll() is None for _, proc in running) and time.monotonic() < deadline:
            sleep(0.05)
        for n, proc in running:
            if proc.poll() is None:
                log.warning("local worker local-%d did not stop within %.0f s of SIGTERM: killed", n + 1, grace_s)
                proc.kill()
                while proc.poll() is None:
                    sleep(0.05)
            else:
                log.info("local worker local-%d stopped (exit code %d)", n + 1, proc.returncode)
