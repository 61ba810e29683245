"""The worker's side of the conversation with the server.

The server sends a slice whenever this worker has a free slot (it announced ``slots`` when connecting), so
there is no polling. Slices wait in a local queue; a decoding thread takes the next one, with the slices
right behind it up to a batch, transcribes them and answers each with ``call('result')``. An engine that
decodes several slices in one call (a ``BatchEngine``) gets one such thread and batches of up to ``slots``;
any other engine gets a thread per slot and batches of one. A slice that fails is reported alone. A
heartbeat thread keeps the leases alive. When the connection drops, slices still held are void (the server has
already queued them again); python-socketio reconnects with backoff.

A worker whose engine can (``transcribe_tentative``) also decodes tentative text of live recordings when the
server asks (``tentative``), in the same threads but only when no slice is waiting: see ``tentative.py``.
"""

from __future__ import annotations

import io
import logging
import queue
import ssl
import threading
import time
import wave
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import socketio

from . import tls
from .engines.base import SAMPLE_RATE, BatchEngine, Engine, Segment
from .tentative import TentativeBox, TentativeWork

if TYPE_CHECKING:
    from .diarize import VoiceEmbedder

log = logging.getLogger("scatterscribe.worker")

NAMESPACE = "/worker"
#: How long a batching worker waits for more slices after the first arrives (they come back to back).
GATHER_S = 0.05
#: Put in the work queue when a tentative request arrives: the thread that takes it decodes one, if no slice
#: waits (slices are in the same queue, so they are always taken first).
WAKE = object()


class TokenRefused(RuntimeError):
    """The server refused this worker's token; retrying cannot help."""


def decode_wav(data: bytes) -> np.ndarray:
    """A slice as sent by the server (mono 16-bit WAV at ``SAMPLE_RATE``) → float32 samples."""
    with wave.open(io.BytesIO(data)) as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, SAMPLE_RATE):
            raise ValueError(f"slice audio is not {SAMPLE_RATE / 1000:g} kHz mono 16-bit")
        frames = w.readframes(w.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0


def span_of(value: Any) -> tuple[float, float] | None:
    """The ``span`` of a slice message, ``[start, end]`` in seconds of its audio, or None when absent or odd."""
    try:
        start, end = (float(x) for x in value)
    except (TypeError, ValueError):
        return None
    return (start, end) if 0 <= start <= end < 1e6 else None


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


class Cancelled(Exception):
    pass


def _which(batch: list[Work]) -> str:
    """A batch as its log lines name it: the slice itself when it is alone."""
    if len(batch) == 1:
        return f"slice {batch[0].job}/{batch[0].index}"
    return f"batch of {len(batch)} slice(s)"


class Worker:
    def __init__(self, server: str, token: str, engine: Engine, name: str, slots: int = 1,
                 heartbeat_s: float = 5.0, max_slice_s: float | None = None,
                 diarizer: VoiceEmbedder | None = None, ssl_context: ssl.SSLContext | None = None):
        """``ssl_context``: how to trust an https server (:func:`tls.context`; default: the system's CAs)."""
        self.server = server
        self.ssl_context = ssl_context or tls.context()
        self.engine = engine
        self.diarizer = diarizer
        self.name = name
        self.slots = slots
        self.heartbeat_s = heartbeat_s
        self.auth = {"token": token, "name": name, "engine": engine.name, "model": engine.model, "slots": slots,
                     "max_slice_s": min(max_slice_s or engine.max_slice_s, engine.max_slice_s),
                     "diarize": diarizer is not None, "tentative": hasattr(engine, "transcribe_tentative"),
                     # It times each word: the server may send guard bands and keep the words of the slice.
                     "words": bool(getattr(engine, "word_times", False)),
                     # Slices it decodes truly at once: more slots than that are batched (faster per slice,
                     # not per job), so the server does not cut a recording finer for them.
                     "parallel": max(1, min(slots, int(getattr(engine, "parallel", slots))))}
        # A batch engine gets every slice waiting in one call; any other engine is fed batches of one, a slot
        # each (its ``transcribe`` yields segment by segment, so a slice called back stops early).
        self.batch_engine = engine if isinstance(engine, BatchEngine) else None
        self.batch_size = slots if self.batch_engine is not None else 1
        self.work: queue.Queue[Work | object] = queue.Queue()  # slices, and WAKE for tentative requests
        self.held: dict[str, Work] = {}  # lease → slice sent to this worker and not yet answered
        self.held_lock = threading.Lock()
        self.tentative = TentativeBox()
        self.cancelled: set[str] = set()
        self.generation = 0
        self.failure: Exception | None = None  # why connecting cannot succeed (TokenRefused, CertificateRefused)
        self.stopped = threading.Event()
        # python-socketio retries every connection, the first included (``connect(retry=True)``), without end,
        # after 1 s, then twice as long each time up to 30 s, each pause randomly up to 0.5 s longer or shorter.
        self.sio = socketio.Client(reconnection=True, reconnection_attempts=0, reconnection_delay=1,
                                   reconnection_delay_max=30, randomization_factor=0.5, handle_sigint=False,
                                   websocket_extra_options={"sslopt": {"context": self.ssl_context}})
        self.sio.on("connect", self._on_connect, namespace=NAMESPACE)
        self.sio.on("connect_error", self._on_connect_error, namespace=NAMESPACE)
        self.sio.on("disconnect", self._on_disconnect, namespace=NAMESPACE)
        self.sio.on("slice", self._on_slice, namespace=NAMESPACE)
        self.sio.on("cancel", self._on_cancel, namespace=NAMESPACE)
        self.sio.on("tentative", self._on_tentative, namespace=NAMESPACE)
        self.sio.on("welcome", self._on_welcome, namespace=NAMESPACE)

    # --- events from the server ------------------------------------------------------------------------------

    def _on_connect(self) -> None:
        log.info("connected to %s as %s (%s %s, %d slot(s))", self.server, self.name, self.engine.name,
                 self.engine.model, self.slots)

    def _on_connect_error(self, data: Any = None) -> None:
        """A connection attempt failed: python-socketio tries again, unless this finds that it cannot help."""
        if self.failure is not None or self.stopped.is_set():
            self._stop_retrying()  # again: its retries, as they begin, forget one asked for before
            return
        if isinstance(data, dict):  # the server refused this worker
            message = str(data.get("message"))
            # Only a wrong token is final; "too many failed attempts" (someone else at this address guessing)
            # passes.
            if message.startswith("wrong or missing worker token"):
                self._give_up(TokenRefused(f"the server refused this worker: {message}"))
            else:
                log.warning("%s refused this worker for now (%s)", self.server, message)
            return
        untrusted = tls.diagnose(self.server, self.ssl_context)
        if untrusted:
            self._give_up(tls.CertificateRefused(untrusted))
            return
        log.warning("cannot reach %s (%s); retrying", self.server, data)

    def _on_disconnect(self, reason: Any = None) -> None:
        with self.held_lock:
            self.generation += 1  # whatever we hold now belongs to a dead connection
            self.held.clear()
        if self.stopped.is_set():
            log.info("disconnected from the server")
            return
        log.warning("disconnected from the server (%s); reconnecting", reason or "connection lost")

    def _on_slice(self, data: dict[str, Any]) -> None:
        with self.held_lock:
            work = Work(str(data["lease"]), str(data["job"]), int(data["index"]), data["audio"], self.generation,
                        span_of(data.get("span")))
            self.held[work.lease] = work
        self.work.put(work)

    def _on_welcome(self, data: dict[str, Any]) -> None:
        """The server says how often it wants heartbeats (its lease timeout is built on that)."""
        try:
            self.heartbeat_s = min(60.0, max(0.2, float(data.get("heartbeat_s", self.heartbeat_s))))
        except (TypeError, ValueError):
            pass

    def _on_cancel(self, data: dict[str, Any]) -> None:
        lease = str(data.get("lease"))
        if self.tentative.cancel(lease):  # a tentative request not started yet
            return
        self.cancelled.add(lease)
        with self.held_lock:
            self.held.pop(lease, None)

    def _on_tentative(self, data: dict[str, Any]) -> None:
        """A request for tentative text; it replaces this recording's older one if that has not started."""
        work = TentativeWork(str(data["id"]), str(data["job"]), data["audio"], str(data.get("prefix") or ""),
                             self.generation)
        replaced = self.tentative.put(work)
        if replaced is not None:
            log.debug("tentative %s: dropped, overtaken by a newer request", replaced.job)
        self.work.put(WAKE)

    # --- running ---------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Connect and work until stopped; raises ``TokenRefused`` or ``tls.CertificateRefused`` when retrying
        cannot help."""
        for n in range(1 if self.batch_engine is not None else self.slots):
            threading.Thread(target=self._loop, name=f"decode-{n + 1}", daemon=True).start()
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()
        self._connect()
        while not self.stopped.wait(0.5):
            if self.failure is not None:  # found while python-socketio reconnected after a drop
                raise self.failure

    def _connect(self) -> None:
        """The first connection: python-socketio retries it while the server cannot be reached (a worker may
        start before its server), as it does a reconnection."""
        while not self.stopped.is_set():
            try:
                self.sio.connect(self.server, auth=self.auth, namespaces=[NAMESPACE], transports=["websocket"],
                                 wait_timeout=10, retry=True)
            except socketio.exceptions.ConnectionError as exc:
                if self.failure is not None:
                    raise self.failure from exc
                if self.stopped.is_set():
                    return
                # It reached the server, which refused this worker for now or did not finish the handshake in
                # time: python-socketio retries only a server it cannot reach, so this waits its longest pause.
                pause = self.sio.reconnection_delay_max
                log.warning("no connection to %s (%s); trying again in %.0f s", self.server, exc, pause)
                self.stopped.wait(pause)
            else:
                if self.stopped.is_set():  # stopped while connecting: stop() found nothing to disconnect
                    self.sio.disconnect()
                return

    def _give_up(self, failure: Exception) -> None:
        """Connecting cannot succeed: end python-socketio's retries; ``run`` raises ``failure``."""
        self.failure = failure
        self._stop_retrying()

    def _stop_retrying(self) -> None:
        """End python-socketio's retries of a connection. Its ``shutdown()`` ends a reconnection after a drop,
        but not the retries of ``connect(retry=True)``, which run in the caller's thread; this sets the event
        its own Ctrl-C handler sets for both (``socketio.base_client.signal_handler``), which this worker does
        not install (Ctrl-C stops it through ``stop``)."""
        abort = getattr(self.sio, "_reconnect_abort", None)
        if abort is not None:
            abort.set()

    def stop(self) -> None:
        """Stop working (Ctrl-C, SIGTERM): hand back the slices held, so the server queues them again at once
        without counting a try against them, and disconnect. Results still being computed are not sent."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        with self.held_lock:
            held = sorted(self.held)
            self.held.clear()
            self.generation += 1  # every slice in progress is void now
        if held and self.sio.connected:
            try:
                answer = self.sio.call("hand_back", {"leases": held}, namespace=NAMESPACE, timeout=3)
                log.info("stopping: handed back %d slice(s) (%s)", len(held),
                         "taken" if isinstance(answer, dict) and answer.get("ok") else f"server: {answer}")
            except socketio.exceptions.SocketIOError as exc:
                log.warning("stopping: could not hand back %d slice(s) (%s); the server takes them back when "
                            "the connection ends", len(held), exc)
        self._stop_retrying()
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - already gone
            pass

    def _heartbeat_loop(self) -> None:
        while not self.stopped.wait(self.heartbeat_s):
            if self.sio.connected:
                try:
                    self.sio.emit("heartbeat", {}, namespace=NAMESPACE)
                except socketio.exceptions.SocketIOError:
                    pass

    def _loop(self) -> None:
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
        if work is None or work.generation != self.generation:
            return
        try:
            t0 = time.perf_counter()
            # A slice that arrives meanwhile goes first: the decode is abandoned half-way (the engine's steps
            # cannot be interrupted, so a slice may still wait for one of them).
            text = self.engine.transcribe_tentative(decode_wav(work.audio), work.prefix,
                                                    lambda: self._slices_waiting() or work.id in self.cancelled)
            elapsed = time.perf_counter() - t0
        except Exception:  # noqa: BLE001 - tentative text is optional; the server asks again
            log.exception("tentative %s: decode failed", work.job)
            return
        if text is None:
            log.debug("tentative %s: abandoned after %.2f s: a slice came", work.job, elapsed)
            return
        sent = work.generation == self.generation and work.id not in self.cancelled and self.sio.connected
        if sent:
            try:
                self.sio.emit("tentative_text", {"id": work.id, "job": work.job, "text": text,
                                                 "elapsed": round(elapsed, 3)}, namespace=NAMESPACE)
            except socketio.exceptions.SocketIOError:
                sent = False
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
                     self._delivery(answer))

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

    @staticmethod
    def _ident(work: Work) -> dict[str, Any]:
        return {"lease": work.lease, "job": work.job, "index": work.index}

    def _answer(self, work: Work, segments: list[dict[str, Any]], elapsed: float, batch: int = 1,
                audio: np.ndarray | None = None) -> dict[str, Any] | None:
        """Send a slice's text (and, with ``--diarize``, the voices of its speech); ``elapsed`` is the wall time
        its transcription took (its whole batch's, when it was decoded in a batch of ``batch`` slices)."""
        text = " ".join(s["text"].strip() for s in segments if s["text"].strip())
        payload = {**self._ident(work), "text": text, "segments": segments, "elapsed": elapsed, "batch": batch,
                   "engine": self.engine.name, "model": self.engine.model}
        if self.diarizer is not None and audio is not None and not self._void(work):
            payload.update(self._voices(work, audio, segments))
        return self._send("result", payload, work)

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

    @staticmethod
    def _delivery(answer: dict[str, Any] | None) -> str:
        """What became of a result, for its log line: nothing when the server took it."""
        if answer is None:
            return " (not delivered: the connection it came on is gone)"
        return "" if answer.get("ok") else f" (server: {answer.get('error')})"

    def _report_error(self, work: Work, exc: Exception) -> None:
        self._send("slice_error", {**self._ident(work), "error": f"{type(exc).__name__}: {exc}"}, work)

    def _void(self, work: Work) -> bool:
        return work.generation != self.generation or work.lease in self.cancelled

    def _send(self, event: str, data: dict[str, Any], work: Work) -> dict[str, Any] | None:
        if self._void(work):
            return None
        try:
            return self.sio.call(event, data, namespace=NAMESPACE, timeout=30)
        except socketio.exceptions.SocketIOError as exc:
            log.warning("slice %s/%d: could not deliver the %s (%s)", work.job, work.index, event, exc)
            return None
        finally:
            with self.held_lock:
                if work.generation == self.generation:
                    self.held.pop(work.lease, None)
