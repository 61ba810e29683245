"""Limits that keep one client from taking the server from everyone else. Pure bookkeeping, time passed in: the
network adapters (``serving.py``, ``app.py``, ``events.py``) ask and act.

* :class:`ConnectionLimits`: connections per client address and in all. A connection still waiting for its
  request's headers (new, or idle between keep-alive requests) is a *straggler*: when a cap is reached, the
  oldest straggler (of that address, or of anyone for the total) makes room, so half-sent requests can never
  lock out a page or a worker; only when none is left is a new connection refused.
* :class:`TokenGate` (with :class:`FailureThrottle` and :class:`RefusalLog`): the access and worker tokens,
  compared in constant time, repeated wrong guesses from one address slowed down, refusals logged once per
  interval with a count.
* :class:`AudioPace`: live audio at most a few times real time per recording.
"""

from __future__ import annotations

import hmac
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Admission:
    """What to do with a new connection: accept it or not, and which connections to close first."""

    accepted: bool
    evict: tuple[int, ...] = ()
    reason: str = ""  # why it was refused, for the client


class ConnectionLimits:
    """Open connections by id, their client addresses, and which of them are stragglers (oldest first)."""

    def __init__(self, max_total: int, max_per_client: int):
        if max_total < 1 or max_per_client < 1:
            raise ValueError("max_connections and max_connections_per_client must be at least 1")
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.addr: dict[int, str] = {}  # connection id → client address
        self.per_client: dict[str, int] = {}
        self.waiting: OrderedDict[int, None] = OrderedDict()  # stragglers, oldest first
        self.waiting_by_client: dict[str, OrderedDict[int, None]] = {}

    def __len__(self) -> int:
        return len(self.addr)

    def admit(self, conn: int, addr: str) -> Admission:
        """A connection from ``addr`` was accepted by the socket: may it stay, and whom must it displace?"""
        victims: list[int] = []
        if self.per_client.get(addr, 0) >= self.max_per_client:
            mine = self.waiting_by_client.get(addr)
            if not mine:
                return Admission(False, reason=f"this server takes at most {self.max_per_client} connections "
                                               "from one address at once")
            victims.append(next(iter(mine)))
        if len(self.addr) - len(victims) >= self.max_total:
            other = next((c for c in self.waiting if c not in victims), None)
            if other is None:
                return Admission(False, reason="this server has as many connections as it takes; try again soon")
            victims.append(other)
        for victim in victims:
            self.closed(victim)
        self.addr[conn] = addr
        self.per_client[addr] = self.per_client.get(addr, 0) + 1
        self.idle(conn)
        return Admission(True, tuple(victims))

    def idle(self, conn: int) -> None:
        """``conn`` waits for a request's headers (it is new, or finished a request and is kept alive)."""
        if conn not in self.addr:
            return
        self.busy(conn)
        self.waiting[conn] = None
        self.waiting_by_client.setdefault(self.addr[conn], OrderedDict())[conn] = None

    def busy(self, conn: int) -> None:
        """``conn`` sent its request's headers: it is being served (or is a WebSocket) and is never displaced."""
        self.waiting.pop(conn, None)
        addr = self.addr.get(conn)
        mine = self.waiting_by_client.get(addr) if addr is not None else None
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self.waiting_by_client[addr]

    def closed(self, conn: int) -> None:
        if conn not in self.addr:
            return
        self.busy(conn)
        addr = self.addr.pop(conn)
        self.per_client[addr] -= 1
        if not self.per_client[addr]:
            del self.per_client[addr]


class FailureThrottle:
    """Wrong tokens from one address. The first ``free_failures`` cost nothing (a person mistyping); after
    that each further attempt from the address is refused unchecked until a wait has passed, twice as long after
    each failure, from ``first_wait_s`` up to ``max_wait_s``. A success, or ``forget_after_s`` without a failure,
    clears the address. At most ``max_addresses`` are remembered (least recently seen forgotten first), so a
    flood of addresses costs bounded memory."""

    def __init__(self, free_failures: int = 10, first_wait_s: float = 1.0, max_wait_s: float = 60.0,
                 forget_after_s: float = 600.0, max_addresses: int = 4096):
        self.free_failures = free_failures
        self.first_wait_s = first_wait_s
        self.max_wait_s = max_wait_s
        self.forget_after_s = forget_after_s
        self.max_addresses = max_addresses
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()  # address → (failures, last failure)

    def wait_s(self, addr: str, now: float) -> float:
        """How long ``addr`` must wait before its next attempt is checked (0: it may try now)."""
        failures, last = self._seen.get(addr, (0, 0.0))
        if failures <= self.free_failures or now - last >= self.forget_after_s:
            return 0.0
        wait = min(self.max_wait_s, self.first_wait_s * 2 ** (failures - self.free_failures - 1))
        return max(0.0, last + wait - now)

    def failed(self, addr: str, now: float) -> None:
        failures, last = self._seen.pop(addr, (0, now))
        if now - last >= self.forget_after_s:
            failures = 0
        self._seen[addr] = (failures + 1, now)
        while len(self._seen) > self.max_addresses:
            self._seen.popitem(last=False)

    def succeeded(self, addr: str) -> None:
        self._seen.pop(addr, None)


class RefusalLog:
    """Refusals written to the log once per ``interval_s`` with a count: the first at once, the rest summed up
    when the interval is over (:meth:`flush`, called every second), so a flood of refusals is a line a minute."""

    def __init__(self, log: Any, what: str, interval_s: float = 60.0):
        self.log, self.what, self.interval_s = log, what, interval_s
        self.last_line = -math.inf
        self.count = 0
        self.addresses: set[str] = set()

    def refused(self, addr: str, why: str, now: float) -> None:
        if now - self.last_line >= self.interval_s and not self.count:
            self.log.warning("refused %s from %s: %s", self.what, addr, why)
            self.last_line = now
            return
        self.count += 1
        if len(self.addresses) < 8:
            self.addresses.add(addr)
        self.flush(now)

    def flush(self, now: float) -> None:
        if self.count and now - self.last_line >= self.interval_s:
            self.log.warning("refused %d more: %s, in the last %.0f s (from %s)", self.count, self.what,
                             now - self.last_line, ", ".join(sorted(self.addresses)))
            self.last_line, self.count = now, 0
            self.addresses.clear()


@dataclass(frozen=True)
class Verdict:
    """What a token check decided: let in (``status`` 0), or refuse with an HTTP status and a sentence."""

    status: int = 0
    message: str = ""


class TokenGate:
    """One secret checked for every caller: constant time, wrong guesses throttled per address, refusals logged
    once per interval. A missing token is refused but not counted (a browser that has not been given it yet);
    a wrong one is."""

    def __init__(self, throttle: FailureThrottle, refusals: RefusalLog, missing: str, wrong: str):
        self.throttle, self.refusals = throttle, refusals
        self.missing, self.wrong = missing, wrong

    def check(self, presented: Any, expected: str, addr: str, now: float) -> Verdict:
        wait = self.throttle.wait_s(addr, now)
        if wait > 0:
            self.refusals.refused(addr, "too many wrong tokens", now)
            return Verdict(429, f"too many failed attempts from your address: try again in {math.ceil(wait)} s")
        if not isinstance(presented, str) or not presented:
            self.refusals.refused(addr, "no token", now)
            return Verdict(401, self.missing)
        if not hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8")):
            self.throttle.failed(addr, now)
            self.refusals.refused(addr, "wrong token", now)
            return Verdict(401, self.wrong)
        self.throttle.succeeded(addr)
        return Verdict()


class AudioPace:
    """Live audio taken at most ``speed`` times real time, after an allowance of ``burst_s`` seconds of audio
    (a page resending what a dropped connection held). A chunk that comes sooner waits (:meth:`delay` says how
    long) instead of being refused, so a page that keeps a few chunks in flight, as web/live.js does, is
    slowed, never failed; the caller refuses a sender that has too many chunks waiting."""

    def __init__(self, speed: float, burst_s: float, now: float):
        if speed <= 0 or burst_s < 0:
            raise ValueError("max_speed must be positive and burst_s not negative")
        self.speed, self.tolerance_s = speed, burst_s / speed
        self.busy_until = now  # when the audio taken so far has been paid for, in wall time

    def delay(self, now: float) -> float:
        """How long a chunk arriving now must wait before it is taken."""
        return max(0.0, self.busy_until - now - self.tolerance_s)

    def take(self, audio_s: float, now: float) -> float:
        """Account for ``audio_s`` of audio arriving now; returns how long it must wait."""
        wait = self.delay(now)
        self.busy_until = max(self.busy_until, now) + audio_s / self.speed
        return wait
