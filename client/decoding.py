"""Decoding what the server sends a worker: its slices, and requests for tentative text of live recordings.

Slices wait in a local queue; a decoding thread takes the next one, with the slices right behind it up to a
batch, transcribes them and answers each. An engine that decodes several slices in one call (a
``BatchEngine``) gets one such thread and batches of up to ``slots``; any other engine gets a thread per slot
and batches of one. A slice that fails is reported alone. Tentative requests (``tentative.py``) are decoded in
the same threads, but only when no slice is waiting. The answers go back over the connection the work came on
(a ``Link``: ``connection.Worker``).
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
import wave
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .engines.base import SAMPLE_RATE, BatchEngine, Engine, Segment
from .tentative import TentativeBox, TentativeWork

if TYPE_CHECKING:
    from .diarize import VoiceEmbedder

log = logging.getLogger("scatterscribe.worker")

#: How long a batching worker waits for more slices after the first arrives (they come back to back).
GATHER_S = 0.05
#: Put in the work queue when a tentative request arrives: the thread that takes it decodes one, if no slice
#: waits (slices are in the same queue, so they are always taken first).
WAKE = object()


def decode_wav(data: bytes) -> np.ndarray:
    """A slice as sent by the server (mono 16-bit WAV at ``SAMPLE_RATE``) → float32 samples."""
    with wave.open(io.BytesIO(data)) as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, SAMPLE_RATE):
            raise ValueError(f"slice audio is not {SAMPLE_RATE / 1000:g} kHz mono 16-bit")
        frames = w.readframes(w.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0


def segment_payload(seg: Segment) -> dict[str, Any]:
    """A segment as the ``result`` payload carries it (the Words contract): times in seconds of the slice
    audio, its words (empty for engines without word times) and its average log probability (or None)."""
    return {"start": round(seg.start, 3), "end": round(seg.end, 3), "text": seg.text,
            "words": [{"start": round(w.start, 3), "end": round(w.end, 3), "word": w.word,
                       "probability": w.probability} for w in seg.words],
            "avg_logprob": seg.avg_logprob}


@dataclass
class Work:
    lease: str
    job: str
    index: int
    audio: bytes
    generation: int  # connection it arrived on; work from an older connection is void
    span: tuple[float, float] | None = None  # where the slice's own audio lies in ``audio`` (guard bands around)

    def ident(self) -> dict[str, Any]:
        """The fields that name this slice in every answer about it."""
        return {"lease": self.lease, "job": self.job, "index": self.index}


class Cancelled(Exception):
    """A slice decoded alone was called back, or its connection lost, before its engine was done with it."""


def _which(batch: list[Work]) -> str:
    """A batch as its log lines name it: the slice itself when it is alone."""
    if len(batch) == 1:
        return f"slice {batch[0].job}/{batch[0].index}"
    return f"batch of {len(batch)} slice(s)"


def _delivery(answer: dict[str, Any] | None) -> str:
    """What became of a result, for its log line: nothing when the server took it."""
    if answer is None:
        return " (not delivered: the connection it came on is gone)"
    return "" if answer.get("ok") else f" (server: {answer.get('error')})"


class Link(Protocol):
    """What a decoder needs of the connection its work came on."""

    def void(self, generation: int, key: str) -> bool:
        """Whether work that came on connection ``generation`` under ``key`` (a slice's lease, a tentative
        request's id) is void: that connection is gone, or the server called the work back."""
        ...

    def send(self, event: str, data: dict[str, Any], work: Work) -> dict[str, Any] | None:
        """An answer about ``work``; the server's reply, or None when it did not go (void, connection failed)."""
        ...

    def send_tentative(self, data: dict[str, Any]) -> bool:
        """Tentative text; whether it went."""
        ...


class Decoder:
    """The threads that decode a worker's slices and tentative requests, and answer them over ``link``; they
    end when ``stopped`` is set."""

    def __init__(self, engine: Engine, slots: int, link: Link, stopped: threading.Event,
                 diarizer: VoiceEmbedder | None = None):
        self.engine = engine
        self.link = link
        self.stopped = stopped
        self.diarizer = diarizer
        # A batch engine gets every slice waiting in one call; any other engine is fed batches of one, a slot
        # each (its ``transcribe`` yields segment by segment, so a slice called back stops early).
        self.batch_engine = engine if isinstance(engine, BatchEngine) else None
        self.batch_size = slots if self.batch_engine is not None else 1
        self.threads = 1 if self.batch_engine is not None else slots
        self.work: queue.Queue[Work | object] = queue.Queue()  # slices, and WAKE for tentative requests
        self.tentative = TentativeBox()

    def start(self) -> None:
        for n in range(self.threads):
            threading.Thread(target=self.loop, name=f"decode-{n + 1}", daemon=True).start()

    def put(self, work: Work) -> None:
        self.work.put(work)

    def ask_tentative(self, work: TentativeWork) -> None:
        """A request for tentative text; it replaces this recording's older one if that has not started."""
        replaced = self.tentative.put(work)
        if replaced is not None:
            log.debug("tentative %s: dropped, overtaken by a newer request", replaced.job)
        self.work.put(WAKE)

    def loop(self) -> None:
        """Decode the slices that come, a batch at a time; a tentative request gets a turn when none waits."""
        while not self.stopped.is_set():
            try:
                first = self.work.get(timeout=0.5)
            except queue.Empty:
                continue
            if first is WAKE:
                self._tentative_turn()
                continue
            batch, woken = self._gather(first)
            try:
                self._decode(batch)
            except Exception:  # noqa: BLE001 - one bad batch never ends the worker
                log.exception("%s: unexpected failure", _which(batch))
            if woken:  # a tentative request came meanwhile: its turn comes after the slices now waiting
                self.work.put(WAKE)

    def _gather(self, first: Work) -> tuple[list[Work], bool]:
        """``first`` and the slices right behind it, up to a batch; and whether a tentative request's WAKE was
        taken out of the queue meanwhile (the caller puts it back)."""
        batch, woken = [first], False
        # The server sends a worker's slices back to back: a moment's wait gathers those still in flight.
        deadline = time.monotonic() + GATHER_S
        while len(batch) < self.batch_size:
            try:
                item = self.work.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is WAKE:
                woken = True
            else:
                batch.append(item)
        return batch, woken

    def _slices_waiting(self) -> bool:
        with self.work.mutex:
            return any(isinstance(item, Work) for item in self.work.queue)

    def _tentative_turn(self) -> None:
        """Decode the tentative request that has waited longest, unless a slice is waiting: then it waits
        behind the slices (and may be overtaken by a newer request meanwhile)."""
        if self._slices_waiting():
            self.work.put(WAKE)
            return
        work = self.tentative.take()
        if work is None or self.link.void(work.generation, work.id):
            return
        try:
            t0 = time.perf_counter()
            # A slice that arrives meanwhile goes first: the decode is abandoned half-way (the engine's steps
            # cannot be interrupted, so a slice may still wait for one of them).
            text = self.engine.transcribe_tentative(
                decode_wav(work.audio), work.prefix,
                lambda: self._slices_waiting() or self.link.void(work.generation, work.id))
            elapsed = time.perf_counter() - t0
        except Exception:  # noqa: BLE001 - tentative text is optional; the server asks again
            log.exception("tentative %s: decode failed", work.job)
            return
        if text is None:
            log.debug("tentative %s: abandoned after %.2f s: a slice came", work.job, elapsed)
            return
        sent = not self.link.void(work.generation, work.id) and self.link.send_tentative(
            {"id": work.id, "job": work.job, "text": text, "elapsed": round(elapsed, 3)})
        # Debug only: about one a second per live recording.
        log.debug("tentative %s: %.1f s of audio in %.2f s%s", work.job, len(work.audio) / (2 * SAMPLE_RATE),
                  elapsed, "" if sent else " (not delivered)")

    def _decode(self, batch: list[Work]) -> None:
        """Decode the live slices of ``batch`` together and answer each; a slice that cannot be read, or that
        the engine could not decode, is reported alone and the rest go on."""
        live, samples, spans = [], [], []
        for work in batch:
            if self._void(work):
                continue
            try:
                samples.append(decode_wav(work.audio))
                spans.append(work.span)
                live.append(work)
            except Exception as exc:  # noqa: BLE001 - report it; the server gives the slice to someone else
                log.error("slice %s/%d: unreadable audio: %s", work.job, work.index, exc)
                self._report_error(work, exc)
        if not live:
            return
        t0 = time.perf_counter()
        try:
            results = self._transcribe(live, samples, spans)
        except Cancelled:
            log.info("%s: cancelled", _which(live))
            return
        except Exception as exc:  # noqa: BLE001 - report it; the server gives the slices to someone else
            log.exception("%s: transcription failed", _which(live))
            for work in live:
                self._report_error(work, exc)
            return
        elapsed = time.perf_counter() - t0
        seconds = sum(len(x) for x in samples) / SAMPLE_RATE
        # One line per slice; a batch's slices share its time, so the speed is the batch's.
        together = f"batch of {len(live)}, {seconds:.1f} s of audio, " if len(live) > 1 else ""
        for work, audio, segments in zip(live, samples, results, strict=True):
            if isinstance(segments, Exception):  # this slice alone failed; its batch-mates are answered
                log.error("slice %s/%d: transcription failed: %s", work.job, work.index, segments)
                self._report_error(work, segments)
                continue
            answer = self._answer(work, [segment_payload(seg) for seg in segments], elapsed, len(live),
                                  audio)
            log.info("slice %s/%d: %.1f s of audio in %.2f s (%s%.1fx real time)%s", work.job, work.index,
                     len(audio) / SAMPLE_RATE, elapsed, together, seconds / max(elapsed, 1e-9),
                     _delivery(answer))

    def _transcribe(self, live: list[Work], samples: list[np.ndarray], spans: list[tuple[float, float] | None]
                    ) -> list[list[Segment] | Exception]:
        """Each slice's segments, or the exception that slice alone failed with; raises ``Cancelled`` when a
        lone slice was called back (or its connection lost) while being decoded."""
        if self.batch_engine is not None:
            return self.batch_engine.transcribe_batch(samples, spans)
        (work,), segments = live, []  # a plain engine's batch is one slice, decoded segment by segment
        for seg in self.engine.transcribe(samples[0]):
            if self._void(work):
                raise Cancelled
            segments.append(seg)
        return [segments]

    def _answer(self, work: Work, segments: list[dict[str, Any]], elapsed: float, batch: int,
                audio: np.ndarray) -> dict[str, Any] | None:
        """Send a slice's text (and, with ``--diarize``, the voices of its speech); ``elapsed`` is the wall time
        its transcription took (its whole batch's, when it was decoded in a batch of ``batch`` slices)."""
        text = " ".join(s["text"].strip() for s in segments if s["text"].strip())
        payload = {**work.ident(), "text": text, "segments": segments, "elapsed": elapsed, "batch": batch,
                   "engine": self.engine.name, "model": self.engine.model}
        if self.diarizer is not None and not self._void(work):
            payload.update(self._voices(work, audio, segments))
        return self.link.send("result", payload, work)

    def _voices(self, work: Work, audio: np.ndarray, segments: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``voices`` of a slice and the seconds they took; a failure is reported in ``voice_error`` and
        never costs the slice its text."""
        t0 = time.perf_counter()
        try:
            voices = self.diarizer.voices(audio, segments)
        except Exception as exc:  # noqa: BLE001 - the text still goes; the server says why labels are missing
            log.exception("slice %s/%d: voices failed", work.job, work.index)
            return {"voice_error": f"{type(exc).__name__}: {exc}"[:300]}
        return {"voices": voices, "voice_model": self.diarizer.name, "voice_s": time.perf_counter() - t0}

    def _report_error(self, work: Work, exc: Exception) -> None:
        self.link.send("slice_error", {**work.ident(), "error": f"{type(exc).__name__}: {exc}"}, work)

    def _void(self, work: Work) -> bool:
        return self.link.void(work.generation, work.lease)
