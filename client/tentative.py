"""Tentative work on a worker: requests to decode a live recording's open part (``server/tentative.py``).

They have the lowest priority. The worker keeps only the newest request of each recording (an older one not
yet started is dropped: it has been overtaken), and decodes one only when no slice is waiting for it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class TentativeWork:
    id: str
    job: str
    audio: bytes
    prefix: str  # the words already stable on the page: the decode starts with them
    generation: int  # connection it arrived on; work from an older connection is void


class TentativeBox:
    """The tentative requests waiting on this worker, the newest per recording. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, TentativeWork] = {}  # job → its newest request, oldest job first

    def put(self, work: TentativeWork) -> TentativeWork | None:
        """Keep ``work``; returns the request of the same recording it replaces (dropped, overtaken), if any."""
        with self._lock:
            replaced = self._waiting.pop(work.job, None)
            self._waiting[work.job] = work
            return replaced

    def take(self) -> TentativeWork | None:
        """The request that has waited longest, taken out; None when none waits."""
        with self._lock:
            if not self._waiting:
                return None
            job = next(iter(self._waiting))
            return self._waiting.pop(job)

    def cancel(self, request_id: str) -> bool:
        """Drop a request the server called back (a slice closed over its audio); False if it is not here."""
        with self._lock:
            for job, work in self._waiting.items():
                if work.id == request_id:
                    del self._waiting[job]
                    return True
            return False

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)
