"""Speaker labels of the server's jobs: each slice's voices stored as its result arrives, the job's speakers
worked out again from all of them off the event loop, names kept. The rules are in ``speakers.py`` (voices)
and ``channels.py`` (stereo calls); this module holds the bookkeeping and the I/O.

While a job runs its labels are provisional: every result with voices (or without: a slice a worker without
``--diarize`` did) marks the job, and one background task per job clusters its voices again, at most once per
``relabel_every_s``, keeping each person's id (``speakers.stable_ids``). When the job is done the last
clustering is marked ``final``. A live recording is labelled the same way as its slices close.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import bodies, speakers, transcript
from .payloads import Result
from .records import VoiceRecord
from .store import STORE_ERRORS

if TYPE_CHECKING:
    from .coordinator import Coordinator

log = logging.getLogger("scatterscribe")


class Refused(ValueError):
    """A rename that cannot be made; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


RENAME_USAGE = 'send JSON {"name": "Alice"} (or {"name": null} to go back to "Speaker N")'


def parse_count(value: str | None) -> int | None:
    """The upload's optional ``speakers`` field: how many people speak (1–20), or None ('' or absent: the
    labels estimate it); ValueError with a sentence otherwise."""
    value = (value or "").strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= speakers.MAX_SPEAKERS:
        raise ValueError(f"speakers must be a whole number from 1 to {speakers.MAX_SPEAKERS} (how many people "
                         "speak), or left out to let the server estimate it")
    return int(value)


def parse_rename(body: bytes | None) -> str | None:
    """A rename's body → the new name (cleaned: ``speakers.check_name``), or None to drop the name;
    :class:`Refused` (400) with a sentence otherwise."""
    data = bodies.json_object(body, RENAME_USAGE)
    if set(data) != {"name"}:
        raise Refused(400, f"the body must hold 'name' and nothing else: {RENAME_USAGE}")
    if data["name"] is None:
        return None
    try:
        return speakers.check_name(data["name"])
    except ValueError as exc:
        raise Refused(400, str(exc)) from None


@dataclass(frozen=True)
class LabelSettings:
    """How often a running job's speakers are worked out again."""

    relabel_every_s: float = 1.0
    label: speakers.LabelOptions = speakers.LabelOptions()


def voice_record(pieces: list[tuple[float, float]], result: Result) -> VoiceRecord:
    """A result's voices as stored: times moved from the slice's audio to the recording (through the slice's
    pieces, as its words are), vectors as float32 bytes."""
    start = pieces[0][0] if pieces else 0.0
    if result.voices is None:
        return VoiceRecord(start, "", result.voice_error, [], b"", 0, 0.0)
    spans = [(round(transcript.to_original_time(a, pieces), 3), round(transcript.to_original_time(b, pieces), 3))
             for a, b, _ in result.voices]
    kept = [k for k, (a, b) in enumerate(spans) if b > a]  # a voice past the slice's end maps to nothing
    vectors = np.array([result.voices[k][2] for k in kept], dtype=np.float32).reshape(len(kept), -1)
    return VoiceRecord(start, result.voice_model or "unknown", result.voice_error, [spans[k] for k in kept],
                       vectors.tobytes(), vectors.shape[1] if kept else 0, round(result.voice_s, 4))


def gathered(rows: list[VoiceRecord]) -> tuple[list[tuple[float, float]], np.ndarray, dict[str, Any]]:
    """The voices of a job's slices ready to cluster (those of the model and length most of them have: a job
    done by workers with different encoders clusters the larger part), and what the rows say about coverage."""
    voiced = [r for r in rows if r.model]
    kinds: dict[tuple[str, int], int] = {}
    for r in voiced:
        if r.dim:
            kinds[(r.model, r.dim)] = kinds.get((r.model, r.dim), 0) + len(r.spans)
    coverage = {"voiced": len(voiced), "unvoiced": len(rows) - len(voiced),
                "errors": sorted({r.error for r in rows if r.error})[:3],
                "worker_s": round(sum(r.worker_s for r in rows), 3)}
    if not kinds:
        return [], np.zeros((0, 1), dtype=np.float32), coverage
    model, dim = max(kinds, key=kinds.get)
    spans, blocks = [], []
    for r in voiced:
        if (r.model, r.dim) == (model, dim):
            spans += r.spans
            blocks.append(np.frombuffer(r.vectors, dtype=np.float32).reshape(len(r.spans), dim))
    return spans, np.vstack(blocks).astype(np.float64), coverage


def cluster_voices(spans: list[tuple[float, float]], vectors: np.ndarray, requested: int | None,
                   opts: speakers.LabelOptions) -> np.ndarray:
    """CPU work (the caller runs it off the event loop)."""
    seconds = np.array([e - s for s, e in spans], dtype=np.float64)
    return speakers.cluster(vectors, seconds, requested, opts)


class SpeakerLabels:
    """The speaker labels of a coordinator's jobs. ``spawn(fn, *args)`` starts a background task and ``sleep(s)``
    waits in one (Socket.IO's, under eventlet); without them a relabel runs at once, in the caller."""

    def __init__(self, coordinator: Coordinator, spawn: Callable[..., Any] | None = None,
                 sleep: Callable[[float], Any] | None = None, settings: LabelSettings = LabelSettings()):
        self.coordinator = coordinator
        self.spawn = spawn or (lambda fn, *args: fn(*args))
        self.sleep = sleep or (lambda _s: None)
        self.settings = settings
        self._dirty: set[str] = set()
        self._running: set[str] = set()

    def slice_done(self, job_id: str, pieces: list[tuple[float, float]], result: Result) -> None:
        """A slice's result arrived (its text is stored): keep its voices and label the job again. Under the
        coordinator's lock; a voice row that cannot be stored costs only labels."""

        try:
            self.coordinator.store.put_voices(job_id, voice_record(pieces, result))
        except STORE_ERRORS as exc:
            log.error("job %s: the voices of a slice could not be stored: %s", job_id, exc)
        self.changed(job_id)

    def changed(self, job_id: str) -> None:
        """The job's voices or status changed: work its speakers out again soon. Under the coordinator's lock."""
        self._dirty.add(job_id)
        if job_id not in self._running:
            self._running.add(job_id)
            self.spawn(self._loop, job_id)

    def _loop(self, job_id: str) -> None:
        try:
            while True:
                with self.coordinator.lock:
                    if job_id not in self._dirty:
                        self._running.discard(job_id)
                        return
                    self._dirty.discard(job_id)
                self.relabel(job_id)
                self.sleep(self.settings.relabel_every_s)
        except Exception:  # noqa: BLE001 - labels are never worth a server; the next change tries again
            log.exception("job %s: speaker labels failed", job_id)
            with self.coordinator.lock:
                self._running.discard(job_id)

    def relabel(self, job_id: str) -> None:
        """Cluster a job's voices again (off the event loop), store its turns, push it to its pages."""
        coord = self.coordinator
        t0 = time.perf_counter()
        with coord.lock:
            job = coord.store.get_job(job_id)
            if job is None:
                return
            rows = coord.store.voices(job_id)
        spans, vectors, coverage = gathered(rows)
        by_voice = job.speakers.get("method") == "voice"  # a call labelled by channel needs no clustering
        requested = job.speakers.get("requested")
        labels = coord.run_blocking(cluster_voices, spans, vectors, requested, self.settings.label) \
            if spans and by_voice else np.zeros(0, dtype=int)
        with coord.lock:
            job = coord.store.get_job(job_id)
            if job is None:
                return
            final = job.status.finished and not job.recording and job_id not in self._dirty
            state = speakers.relabelled({**job.speakers, **coverage}, spans, list(labels), final) if by_voice \
                else {**job.speakers, **coverage}
            # Where the time goes (the bench reads it): the server's labelling, and the workers' voices.
            spent = round(float(job.stats.get("speakers_s", 0.0)) + time.perf_counter() - t0, 4)
            stats = {**job.stats, "speakers_s": spent, "voices_worker_s": coverage["worker_s"]}
            coord.store.update_job(job_id, speakers=state, stats=stats)
            coord.job_changed(job_id, jobs_list=False)

    def rename(self, job_id: str, speaker: int, name: str | None) -> dict[str, Any]:
        """Give speaker ``speaker`` of a job a name (None: back to "Speaker N"), store it, tell the pages."""
        coord = self.coordinator
        with coord.lock:
            job = coord.store.get_job(job_id)
            if job is None:
                raise Refused(404, f"no job {job_id!r}")
            state = dict(job.speakers)
            known = sorted({int(t[2]) for t in state.get("turns") or []})
            if speaker not in known:
                has = f"its speakers are {', '.join(map(str, known))}" if known else \
                    speakers.view(state)["note"] or "it has no speaker labels yet"
                raise Refused(404, f"job {job_id} has no speaker {speaker}: {has}")
            names = {k: v for k, v in (state.get("names") or {}).items() if k != str(speaker)}
            if name is not None:
                names[str(speaker)] = name
            state["names"] = names
            coord.store.update_job(job_id, speakers=state)
            coord.job_changed(job_id, jobs_list=False)
            return {"id": speaker, "name": speakers.name_of(speaker, names)}
