"""Where a job's time goes, as the server sees it, for the job view's ``stats`` (and the bench).

The server's own work on a job is decoding and splitting the upload (measured when the job is created),
handing slices out (reading the audio, building the WAV, sending it) and taking results in (mapping times
back, storing, pushing the transcript to pages). For each slice the round trip from hand-out to result is
split into the worker's own time (``elapsed``, as it reports it) and the rest: transfer, queues and
serialisation. Kept in memory while the job runs; :meth:`JobTiming.stats` is written into the job's stats when
it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class JobTiming:
    """Accumulated seconds for one job (all fields are sums over its slices)."""

    #: Server time spent handing slices out.
    dispatch_s: float = 0.0
    #: Server time spent taking results in.
    merge_s: float = 0.0
    #: Worker time, each batch counted once (a slice decoded with others is charged its share of the batch).
    transcribe_s: float = 0.0
    #: Round trip minus the worker's time for the slice: transfer, queues, (de)serialisation.
    transfer_s: float = 0.0
    #: Hand-out time (monotonic clock) of each lease still out, by lease id.
    sent_at: dict[str, float] = field(default_factory=dict)

    def sent(self, lease_id: str, now: float, spent_s: float) -> None:
        """A slice went out at ``now``; handing it out took the server ``spent_s``."""
        self.sent_at[lease_id] = now
        self.dispatch_s += spent_s

    def answered(self, lease_id: str, now: float, elapsed_s: float, batch: int) -> None:
        """A result for ``lease_id`` arrived at ``now``; the worker took ``elapsed_s`` for a batch of
        ``batch`` slices."""
        sent = self.sent_at.pop(lease_id, None)
        elapsed_s = max(0.0, elapsed_s)
        self.transcribe_s += elapsed_s / max(1, batch)
        if sent is not None:
            self.transfer_s += max(0.0, now - sent - elapsed_s)

    def stats(self) -> dict[str, float]:
        return {"dispatch_s": round(self.dispatch_s, 4), "merge_s": round(self.merge_s, 4),
                "transcribe_s": round(self.transcribe_s, 4), "transfer_s": round(self.transfer_s, 4)}
