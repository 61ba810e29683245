"""Limits that keep one client from taking the server from everyone else. Pure bookkeeping, time passed in: the
network adapters (``serving.py``, ``app.py``, ``events.py``) ask and act.

* :class:`ConnectionLimits`: connections per client address and in all. A connection still waiting for its
  request's headers (new, or idle between keep-alive requests) is a *straggler*: when a cap is reached, the
  oldest straggler (of that address, or of anyone for the total) makes room, so half-sent requests can never
  lock out a page or a worker; only when none is left is a new connection refused.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


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
