"""Tentative text: what a live recording's open part probably says, before a pause closes it into a slice.

Pure: no sockets, no files, the time passed in. ``live_captions.py`` is the adapter that reads the audio, sends
requests to workers and tells the pages.

The *open part* of a live recording is the audio after its last closed slice (``LiveSplitter.open_frame``).
About once a second (``every_s``), while there is speech in it that no answer covers yet, one worker with a free
slot decodes the open part from its start to the newest audio, and its text is shown as the recording's
``partial``, lighter than the final text, until a slice closes over it and the slice's own decode replaces it.
The rules, one :class:`Tentative` per recording:

* **Lowest priority.** A request goes only to a worker with a free slot that no queued slice could use
  (:func:`pick_worker`, called after the queue was served, so a closed slice always takes a free slot first);
  with none, there is no request and nothing waits. The worker decodes slices before tentative work, and keeps
  only the newest request of a recording: an older one not yet started is dropped, overtaken. Requests are
  spaced so that tentative decodes take at most ``max_busy_share`` of the time (on a slow or busy machine a
  decode takes longer than a second, and a slice arriving meanwhile would wait for it).
* **Only what changed.** No request while no new speech has arrived since the last answered one (the text
  would not change). Words on which two decodes in a row agree are *stable*: the next request carries them as a
  prefix the decoder is forced to start with, so it searches only the words after them and they never change on
  the page. The encoder sees at most one 30 s window however long the open part grows, so a request's cost
  stays bounded.
* **Never stale.** An answer is shown only if its request started where the open part still starts (no slice
  closed since) and it covers more audio than the answer shown; a request unanswered for ``answer_timeout_s``
  is forgotten. When a slice closes, or the recording ends, the tentative text goes, and the requests still out
  are returned so the adapter can call them back.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .audio import TARGET_RATE
from .scheduler import Requirement, Scheduler


@dataclass(frozen=True)
class TentativeOptions:
    """The ``[tentative]`` section: tentative text for the open part of live recordings."""

    #: A recording's open part is decoded at most this often; 0 turns tentative text off.
    every_s: float = 1.0
    #: No request until the open part holds this much audio (a shorter one is too little for Whisper).
    min_audio_s: float = 0.5
    #: A request unanswered this long is forgotten (its worker died or dropped it); another may go.
    answer_timeout_s: float = 5.0
    #: Tentative decodes take at most this share of a worker's time: on a machine so busy that one takes
    #: longer than ``every_s * max_busy_share``, requests are spaced further apart (a slice that arrives during
    #: one waits for it, and its text is what matters).
    max_busy_share: float = 0.5

    def __post_init__(self) -> None:
        if self.every_s < 0 or self.min_audio_s < 0 or self.answer_timeout_s <= 0:
            raise ValueError("every_s and min_audio_s must be 0 or more, answer_timeout_s positive")
        if not 0 < self.max_busy_share <= 1:
            raise ValueError("max_busy_share must be more than 0 and at most 1")


class Request(NamedTuple):
    """Decode the recording's samples ``[start, end)`` (16 kHz), forced to begin with ``prefix``."""

    id: str
    start: int
    end: int
    prefix: str


class Partial(NamedTuple):
    """Tentative text of the recording from ``start`` to ``end`` (seconds of the recording)."""

    start: float
    end: float
    text: str

    def view(self) -> dict[str, float | str]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "text": self.text}


class _Out(NamedTuple):
    request: Request
    worker_id: str
    sent_at: float
    speech_end: int  # the speech the request covers, in samples
    open_start: int  # where the open part started when it was sent


_WORD = re.compile(r"[^\w']+")


def _same_word(a: str, b: str) -> bool:
    """Words agree when they differ only in case and punctuation ("girl." and "girl,")."""
    return _WORD.sub("", a.lower()) == _WORD.sub("", b.lower()) != ""


def stable_words(before: list[str], now: list[str]) -> list[str]:
    """The words two decodes in a row agree on, from the start, as the newer one has them; never the last word
    of either (it may be a word still being spoken, cut off)."""
    limit = min(len(before), len(now)) - 1
    n = 0
    while n < limit and _same_word(before[n], now[n]):
        n += 1
    return now[:n]


def speech_end(levels_db: np.ndarray, open_frame: int, threshold_db: float, frame_len: int) -> int | None:
    """The sample where the last speech in the open part ends (frames at or above the threshold), or None when
    the open part holds none."""
    loud = np.flatnonzero(levels_db[open_frame:] >= threshold_db)
    return None if len(loud) == 0 else (open_frame + int(loud[-1]) + 1) * frame_len


class Tentative:
    """One live recording's tentative text: when to ask for it, which answer to show."""

    def __init__(self, opts: TentativeOptions, open_start: int = 0):
        self.opts = opts
        self.finished = False
        self._decode_s = 0.0  # how long the last answer's decode took on its worker
        self._reset(open_start)

    def _reset(self, open_start: int) -> None:
        self.open_start = open_start  # samples: where the open part starts
        self.partial: Partial | None = None
        self._out: dict[str, _Out] = {}  # requests sent and not answered
        self._asked_at = -np.inf  # when the last request went out
        self._covered_to = 0  # speech (samples) the shown answer covers
        self._shown_end = 0  # audio (samples) the shown answer covers
        self._words: list[str] = []  # the shown answer's words
        self._stable: list[str] = []

    def due(self, now: float, open_start: int, audio_end: int, speech_to: int | None,
            max_audio_s: float = 30.0) -> Request | None:
        """A request to send now, if one is due: the open part ``[open_start, audio_end)`` holds speech up to
        ``speech_to`` that neither the shown answer nor a request still out covers, and ``every_s`` has passed
        since the last one. At most ``max_audio_s`` (the worker's limit) of the newest audio is asked for; a
        request cut that way carries no prefix, as the stable words may lie before its start. The caller sends
        it and then calls :meth:`sent`; if nobody can take it, nothing is kept. When the open part has moved,
        the caller calls :meth:`moved` first."""
        if self.finished or not self.opts.every_s or open_start != self.open_start:
            return None
        self._forget_old(now)
        if speech_to is None or speech_to <= max(open_start, self._covered_to):
            return None
        if any(out.speech_end >= speech_to for out in self._out.values()):
            return None  # a request still out covers all the speech there is
        spacing = max(self.opts.every_s, self._decode_s / self.opts.max_busy_share)
        if now - self._asked_at < spacing or (audio_end - open_start) / TARGET_RATE < self.opts.min_audio_s:
            return None
        start = max(open_start, audio_end - int(max_audio_s * TARGET_RATE))
        prefix = " ".join(self._stable) if start == open_start else ""
        return Request(uuid.uuid4().hex, start, audio_end, prefix)

    def sent(self, request: Request, worker_id: str, now: float, speech_to: int) -> None:
        """``request`` went to ``worker_id`` at ``now``; it covers speech up to ``speech_to``."""
        self._out[request.id] = _Out(request, worker_id, now, speech_to, self.open_start)
        self._asked_at = now

    def holder(self) -> str | None:
        """The worker holding this recording's newest request still out: a new one sent there replaces it."""
        newest = max(self._out.values(), key=lambda out: out.sent_at, default=None)
        return newest.worker_id if newest else None

    def answered(self, worker_id: str, request_id: str, text: str, elapsed_s: float = 0.0) -> bool:
        """A worker's text for a request; True when the text shown changed (push it to the pages). An answer
        is not shown when the request is unknown or another worker's, a slice closed since it was sent, or a
        newer answer is shown; one with the text shown already only makes the partial cover more audio."""
        out = self._out.get(request_id)
        if out is None or out.worker_id != worker_id:
            return False
        del self._out[request_id]
        self._decode_s = elapsed_s
        request = out.request
        if self.finished or out.open_start != self.open_start or request.end <= self._shown_end:
            return False
        words = text.split()
        # Agreement needs two decodes from the same start; a request cut to the newest audio starts elsewhere.
        self._stable = stable_words(self._words, words) if request.start == self.open_start else []
        self._words = words
        self._shown_end, self._covered_to = request.end, out.speech_end
        before = self.partial.text if self.partial else ""
        rate = TARGET_RATE
        self.partial = Partial(request.start / rate, request.end / rate, " ".join(words)) if words else None
        return " ".join(words) != before

    def moved(self, open_start: int) -> list[tuple[str, str]]:
        """The open part now starts at ``open_start`` (a slice closed, or silence was dropped): the tentative
        text goes. Returns ``(worker_id, request_id)`` of the requests still out, to call back."""
        out = [(o.worker_id, o.request.id) for o in self._out.values()]
        self._reset(open_start)
        return out

    def finish(self) -> list[tuple[str, str]]:
        """The recording ended: no tentative text any more. Returns the requests still out, to call back."""
        out = self.moved(self.open_start)
        self.finished = True
        return out

    def _forget_old(self, now: float) -> None:
        for request_id, out in list(self._out.items()):
            if now - out.sent_at >= self.opts.answer_timeout_s:
                del self._out[request_id]


def pick_worker(scheduler: Scheduler, requirement: Requirement, now: float,
                prefer: str | None = None) -> str | None:
    """The worker to decode tentative text for a job, or None: one that announced it can, that the job's
    requirement accepts, responsive, with a free slot that no queued slice it may take is waiting for (the
    caller has just handed out the queue, so this only guards the order). ``prefer`` (the worker holding the
    recording's previous request) goes first, as the new request replaces the old one there; then idle workers
    (no slice held), fastest first."""
    candidates = []
    for worker_id, state in scheduler.workers.items():
        info = state.info
        if not info.tentative or state.free_slots <= 0 or not requirement.accepts(info.engine, info.model):
            continue
        if now - state.last_seen >= scheduler.lease_timeout_s:
            continue
        if any(scheduler.tasks[key].seconds <= info.max_slice_s + 1e-6 and
               scheduler.tasks[key].requirement.accepts(info.engine, info.model) for key in scheduler.queue):
            continue
        candidates.append((worker_id != prefer, len(state.leases) > 0, -(state.speed or 0.0), worker_id))
    return min(candidates)[-1] if candidates else None
