"""Who transcribes which slice: the queue, the leases and the workers. Pure: no sockets, no clock, no storage.

Every method that depends on time takes ``now`` (seconds, any monotonic origin), so tests step time instead of
sleeping. The life of a slice is a small state machine (``states.SLICE_MOVES``) with one door (:meth:`Task.move`).

* A worker announces how many slices it can hold at once (``slots``); :meth:`Scheduler.assign` hands queued
  slices to free slots, fastest worker first, one slice per worker per round, so a fast worker takes more.
* Each hand-out is a :class:`Lease` with its own id. Only the worker holding a lease may answer for it; a late
  answer from a lease that was taken back is refused.
* A lease expires unless its worker heartbeats; a worker that disconnects loses all its leases at once.
  A lost lease or a reported error puts the slice back in the queue until it has had ``max_attempts`` tries;
  then it fails, with the reason kept.
* Stragglers: when no queued slice could use a free slot (slices no connected worker takes do not count) and
  a slice has been out much longer than its worker's measured speed predicts, an idle worker gets a duplicate
  lease; the first result wins and the other lease is cancelled.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

from .states import SLICE_MOVES, IllegalTransition, SliceStatus


def hand_out_order(seconds: list[float], last_round: int) -> list[int]:
    """The order a new job's slices are queued in: recording order, except that the last round (the last
    ``last_round`` slices, one per idle slot) goes out longest first. A worker that picks up the final long
    slice just as the others run out of work is what makes a job wait on one worker; longest-first on the tail
    removes most of that (the busiest worker's share of the work comes closer to the average) while the text
    still arrives in order until then."""
    order = list(range(len(seconds)))
    if last_round <= 1:
        return order
    head, tail = order[:-last_round], order[-last_round:]
    return head + sorted(tail, key=lambda i: -seconds[i])


class SliceKey(NamedTuple):
    job_id: str
    index: int


@dataclass(frozen=True)
class Requirement:
    """What a job asks of the workers that may serve it; empty fields match anything. ``engine`` is an engine
    name or a family name from :data:`FAMILIES`."""

    engine: str = ""
    model: str = ""

    def accepts(self, engine: str, model: str) -> bool:
        return (not self.engine or self.engine in (engine, FAMILIES.get(engine))) and \
            (not self.model or model == self.model)


#: Engines that run the same models: "whisper-family" asks for either Whisper implementation.
FAMILIES = {"faster-whisper": "whisper-family", "whisper": "whisper-family"}


@dataclass
class Task:
    """One slice as the scheduler sees it."""

    key: SliceKey
    seconds: float  # audio the worker receives
    requirement: Requirement = Requirement()
    status: SliceStatus = SliceStatus.QUEUED
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    failed_on: set[str] = field(default_factory=set)  # workers that reported an error for it

    def move(self, to: SliceStatus) -> None:
        if to not in SLICE_MOVES[self.status]:
            raise IllegalTransition(f"slice {self.key} cannot go from {self.status.value} to {to.value}")
        self.status = to


@dataclass
class Lease:
    """A slice lent to one worker until ``expires_at`` (extended by heartbeats)."""

    id: str
    key: SliceKey
    worker_id: str
    started_at: float
    expires_at: float
    duplicate: bool = False


@dataclass
class WorkerInfo:
    """What a worker says about itself when it connects."""

    name: str
    engine: str = "faster-whisper"
    model: str = ""
    slots: int = 1
    max_slice_s: float = 30.0
    words: bool = False  # its engine times each word: it may be sent guard bands (server/guard.py)
    tentative: bool = False  # it decodes tentative text of live recordings in a free slot (``tentative.py``)
    diarize: bool = False  # it sends speaker voices with its results (``speaker_jobs.py``)
    #: Slices it decodes truly at the same time (a CPU worker's side-by-side decoders); 0: as many as its
    #: slots. More slots than that are batched, which is cheaper per slice but not faster per job.
    parallel: int = 0


@dataclass
class WorkerState:
    info: WorkerInfo
    connected_at: float
    last_seen: float  # last heartbeat, result or error
    leases: set[str] = field(default_factory=set)
    slices_done: int = 0
    audio_s: float = 0.0  # audio transcribed, for the measured speed
    busy_s: float = 0.0  # wall time those slices took

    @property
    def free_slots(self) -> int:
        return self.info.slots - len(self.leases)

    @property
    def idle_decoders(self) -> int:
        """Slices it could start decoding right now at no cost to the others it holds."""
        decoders = min(self.info.parallel or self.info.slots, self.info.slots)
        return max(0, min(self.free_slots, decoders - len(self.leases)))

    @property
    def speed(self) -> float | None:
        """Audio seconds transcribed per wall second, measured; None until a slice is done."""
        return self.audio_s / self.busy_s if self.busy_s > 0 else None


class Outcome(NamedTuple):
    """What became of a slice after a result, an error or a lost lease."""

    key: SliceKey | None  # None: the message was refused (unknown lease or not this worker's)
    status: SliceStatus | None = None
    cancelled: tuple[Lease, ...] = ()  # other leases of the same slice that the server should call back
    reason: str = ""


REFUSED = Outcome(None)


class Scheduler:
    """The queue, the leases and the workers. Not thread-safe: the caller holds one lock around it."""

    def __init__(self, lease_timeout_s: float = 30.0, max_attempts: int = 3, straggler_factor: float = 3.0,
                 straggler_min_s: float = 10.0, slice_timeout_s: float = 600.0):
        self.lease_timeout_s = lease_timeout_s
        self.max_attempts = max_attempts
        self.straggler_factor = straggler_factor
        self.straggler_min_s = straggler_min_s
        self.slice_timeout_s = slice_timeout_s
        self.tasks: dict[SliceKey, Task] = {}
        self.queue: OrderedDict[SliceKey, None] = OrderedDict()  # queued slices, oldest first
        self.leases: dict[str, Lease] = {}
        self.workers: dict[str, WorkerState] = {}

    # --- workers ---------------------------------------------------------------------------------------------

    def add_worker(self, worker_id: str, info: WorkerInfo, now: float) -> None:
        if worker_id in self.workers:
            raise ValueError(f"worker {worker_id} is already connected")
        self.workers[worker_id] = WorkerState(info, connected_at=now, last_seen=now)

    def remove_worker(self, worker_id: str, now: float) -> list[Outcome]:
        """A worker left: every lease it held is taken back at once."""
        state = self.workers.pop(worker_id, None)
        if state is None:
            return []
        return [self._lose(self.leases[lid], "worker disconnected") for lid in sorted(state.leases)]

    def heartbeat(self, worker_id: str, now: float) -> bool:
        """The worker is alive: its leases run for another ``lease_timeout_s``. False if it is unknown."""
        state = self.workers.get(worker_id)
        if state is None:
            return False
        state.last_seen = now
        for lid in state.leases:
            lease = self.leases[lid]
            lease.expires_at = min(now + self.lease_timeout_s, lease.started_at + self.slice_timeout_s)
        return True

    # --- slices ----------------------------------------------------------------------------------------------

    def submit(self, key: SliceKey, seconds: float, requirement: Requirement = Requirement(),
               attempts: int = 0) -> None:
        """Queue a slice (``attempts`` carries tries already spent, e.g. before a server restart)."""
        if key in self.tasks:
            raise ValueError(f"slice {key} is already known")
        self.tasks[key] = Task(key, seconds, requirement, attempts=attempts)
        self.queue[key] = None

    def forget_job(self, job_id: str, index: int | None = None) -> list[Lease]:
        """Drop every slice of a job (it was cancelled), or only slice ``index``; returns the leases the server
        should call back."""
        def ours(key: SliceKey) -> bool:
            return key.job_id == job_id and index in (None, key.index)
        called_back = [lease for lease in self.leases.values() if ours(lease.key)]
        for lease in called_back:
            self._drop_lease(lease)
        for key in [k for k in self.tasks if ours(k)]:
            del self.tasks[key]
            self.queue.pop(key, None)
        return called_back

    def assign(self, now: float) -> list[Lease]:
        """Fill free slots: queued slices first, oldest first; then duplicates of stragglers."""
        given: list[Lease] = []
        while True:
            progress = False
            for worker_id, state in self._workers_by_speed():
                if state.free_slots <= 0 or not self._responsive(state, now):
                    continue
                key = next((k for k in self.queue if self._may_take(self.tasks[k], worker_id, state)), None)
                if key is None:
                    continue
                del self.queue[key]
                given.append(self._lease(key, worker_id, now, duplicate=False))
                progress = True
            if not progress:
                break
        # Stragglers get duplicates only when no queued slice could use a free slot; a slice nobody connected
        # takes (an engine no worker runs) does not count, or it would stop duplicates server-wide.
        free = [(wid, state) for wid, state in self.workers.items()
                if state.free_slots > 0 and self._responsive(state, now)]
        if free and not any(self._may_take(self.tasks[key], wid, state) for key in self.queue for wid, state in free):
            given.extend(self._duplicate_stragglers(now))
        return given

    def complete(self, worker_id: str, lease_id: str, key: SliceKey, now: float) -> Outcome:
        """A worker sent text for a slice. Accepted only from the lease's own worker, for that lease's slice,
        while the slice is not done yet; the slice's other leases are returned for cancelling."""
        lease = self.leases.get(lease_id)
        if lease is None or lease.worker_id != worker_id or lease.key != key:
            return REFUSED
        task = self.tasks[key]
        state = self.workers[worker_id]
        state.last_seen = now
        state.slices_done += 1
        state.audio_s += task.seconds
        state.busy_s += max(now - lease.started_at, 1e-6)
        self._drop_lease(lease)
        task.move(SliceStatus.DONE)
        others = tuple(other for other in list(self.leases.values()) if other.key == key)
        for other in others:
            self._drop_lease(other)
        del self.tasks[key]  # done slices live in the store, not here
        return Outcome(key, SliceStatus.DONE, others)

    def fail(self, worker_id: str, lease_id: str, key: SliceKey, reason: str, now: float) -> Outcome:
        """A worker could not transcribe a slice: another worker tries, up to ``max_attempts`` in all."""
        lease = self.leases.get(lease_id)
        if lease is None or lease.worker_id != worker_id or lease.key != key:
            return REFUSED
        self.tasks[key].failed_on.add(worker_id)
        self.workers[worker_id].last_seen = now
        return self._lose(lease, reason)

    def holds(self, worker_id: str, lease_id: str, key: SliceKey) -> bool:
        """Whether ``worker_id`` holds lease ``lease_id``, for slice ``key``: what a result or error must prove."""
        lease = self.leases.get(lease_id)
        return lease is not None and lease.worker_id == worker_id and lease.key == key

    def release(self, lease_id: str, reason: str) -> Outcome:
        """A lease given back with no verdict on its slice: the server could not store its result or send it,
        or its worker is stopping. The slice goes back to the head of the queue and the try is not counted."""
        lease = self.leases.get(lease_id)
        if lease is None:
            return REFUSED
        task = self.tasks[lease.key]
        if not lease.duplicate:
            task.attempts = max(0, task.attempts - 1)
        return self._lose(lease, reason)

    def reap(self, now: float) -> list[Outcome]:
        """Take back every lease whose worker stopped heartbeating (or that ran past ``slice_timeout_s``)."""
        expired = [lease for lease in self.leases.values() if lease.expires_at <= now]
        return [self._lose(lease, "worker stopped answering (lease expired)") for lease in expired]

    # --- views -----------------------------------------------------------------------------------------------

    def can_serve(self, requirement: Requirement, seconds: float) -> bool:
        """Is there a connected worker that may take such a slice?"""
        return any(requirement.accepts(s.info.engine, s.info.model) and seconds <= s.info.max_slice_s + 1e-6
                   for s in self.workers.values())

    def free_slots(self, requirement: Requirement = Requirement()) -> int:
        """Idle slots among the connected workers that ``requirement`` accepts."""
        return sum(max(0, s.free_slots) for s in self.workers.values()
                   if requirement.accepts(s.info.engine, s.info.model))

    def idle_decoders_for_new_job(self, requirement: Requirement = Requirement()) -> int:
        """Idle decoders a new job may count on (what the splitter cuts finer for): the slices the workers
        ``requirement`` accepts could start decoding at once, each at most as many as it decodes truly at the
        same time (``WorkerInfo.parallel``: a slot beyond that would only join a batch, and a slice cut finer
        for it costs another window and gains nothing), less the queued slices one of those workers may take
        (they are ahead of the new job's in the queue)."""
        idle = [s for s in self.workers.values()
                if s.idle_decoders > 0 and requirement.accepts(s.info.engine, s.info.model)]
        waiting = sum(1 for key in self.queue if any(self._fits(self.tasks[key], s) for s in idle))
        return max(0, sum(s.idle_decoders for s in idle) - waiting)

    def longest_slice_s(self, requirement: Requirement = Requirement()) -> float | None:
        """The longest slice any connected worker that ``requirement`` accepts will take; None if none is
        connected."""
        return max((s.info.max_slice_s for s in self.workers.values()
                    if requirement.accepts(s.info.engine, s.info.model)), default=None)

    # --- inside ----------------------------------------------------------------------------------------------

    def _workers_by_speed(self) -> list[tuple[str, WorkerState]]:
        return sorted(self.workers.items(), key=lambda kv: (-(kv[1].speed or 0.0), -kv[1].free_slots, kv[0]))

    def _responsive(self, state: WorkerState, now: float) -> bool:
        """A worker silent for a whole lease timeout gets no new work until it speaks again."""
        return now - state.last_seen < self.lease_timeout_s

    @staticmethod
    def _fits(task: Task, state: WorkerState) -> bool:
        return task.seconds <= state.info.max_slice_s + 1e-6 and \
            task.requirement.accepts(state.info.engine, state.info.model)

    def _may_take(self, task: Task, worker_id: str, state: WorkerState) -> bool:
        """A worker that reported an error for a slice gets it again only if no other connected worker could
        take it (so one broken worker cannot use up a slice's attempts while a good one is there)."""
        if not self._fits(task, state):
            return False
        if worker_id not in task.failed_on:
            return True
        return not any(self._fits(task, other) for wid, other in self.workers.items() if wid not in task.failed_on)

    def _lease(self, key: SliceKey, worker_id: str, now: float, duplicate: bool) -> Lease:
        task = self.tasks[key]
        if not duplicate:
            task.move(SliceStatus.LEASED)
            task.attempts += 1
        lease = Lease(uuid.uuid4().hex, key, worker_id, now, now + self.lease_timeout_s, duplicate)
        self.leases[lease.id] = lease
        self.workers[worker_id].leases.add(lease.id)
        return lease

    def _drop_lease(self, lease: Lease) -> None:
        del self.leases[lease.id]
        state = self.workers.get(lease.worker_id)
        if state is not None:
            state.leases.discard(lease.id)

    def _lose(self, lease: Lease, reason: str) -> Outcome:
        """A lease ends without a result; the slice goes back to the queue unless another lease still runs on
        it or it has used all its attempts."""
        self._drop_lease(lease)
        task = self.tasks[lease.key]
        task.errors.append(reason)
        if any(other.key == lease.key for other in self.leases.values()):
            return Outcome(lease.key, SliceStatus.LEASED, reason=reason)
        if task.attempts >= self.max_attempts:
            task.move(SliceStatus.FAILED)
            del self.tasks[lease.key]
            return Outcome(lease.key, SliceStatus.FAILED, reason=f"{reason} ({task.attempts} attempts)")
        task.move(SliceStatus.QUEUED)
        self._requeue_in_order(lease.key)
        return Outcome(lease.key, SliceStatus.QUEUED, reason=reason)

    def _requeue_in_order(self, key: SliceKey) -> None:
        """Put a slice back at the head of the queue: it is older than anything still waiting."""
        self.queue[key] = None
        self.queue.move_to_end(key, last=False)

    def _duplicate_stragglers(self, now: float) -> list[Lease]:
        given = []
        known = [s.speed for s in self.workers.values() if s.speed]
        for lease in sorted(self.leases.values(), key=lambda lease: lease.started_at):
            if lease.duplicate or sum(1 for o in self.leases.values() if o.key == lease.key) > 1:
                continue
            holder = self.workers.get(lease.worker_id)
            # A worker that never finished a slice is judged by the slowest speed measured on the others.
            speed = (holder.speed if holder else None) or (min(known) if known else None)
            task = self.tasks[lease.key]
            if speed is None:
                continue
            expected = task.seconds / speed
            if now - lease.started_at < max(self.straggler_min_s, self.straggler_factor * expected):
                continue
            helper = next((wid for wid, s in self._workers_by_speed() if wid != lease.worker_id and
                           s.free_slots > 0 and self._responsive(s, now) and self._fits(task, s)), None)
            if helper is not None:
                given.append(self._lease(lease.key, helper, now, duplicate=True))
        return given

