"""The worker's side of the conversation with the server.

The server sends a slice whenever this worker has a free slot (it announced ``slots`` when connecting), so
there is no polling: slices, and requests for tentative text of live recordings, go to the decoder
(``decoding.py``), whose answers go back on the connection the work came on (``call('result')``). A heartbeat
thread keeps the leases alive. When the connection drops, slices still held are void (the server has already
queued them again); python-socketio reconnects with backoff, and retries the first connection the same way
while the server cannot be reached.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import TYPE_CHECKING, Any

import socketio

from . import tls
from .decoding import Decoder, Work
from .engines.base import Engine
from .tentative import TentativeWork

if TYPE_CHECKING:
    from .diarize import VoiceEmbedder

log = logging.getLogger("scatterscribe.worker")

NAMESPACE = "/worker"


class TokenRefused(RuntimeError):
    """The server refused this worker's token; retrying cannot help."""


def span_of(value: Any) -> tuple[float, float] | None:
    """The ``span`` of a slice message, ``[start, end]`` in seconds of its audio, or None when absent or odd."""
    try:
        start, end = (float(x) for x in value)
    except (TypeError, ValueError):
        return None
    return (start, end) if 0 <= start <= end < 1e6 else None


class _Client(socketio.Client):
    """python-socketio's client, but a message it cannot decode is dropped with a line in the log instead of a
    traceback in its thread. It happens when the connection closes while a slice's audio is on its way: the
    client forgets the packet the audio belonged to at the disconnect, then reads the audio (b'RIFF...') as a
    packet of its own. Nothing is lost: the server gives the lease back when the connection drops and sends the
    slice again."""

    def _handle_eio_message(self, data):  # python-socketio's own hook for every Engine.IO message
        try:
            super()._handle_eio_message(data)
        except ValueError as exc:
            log.warning("dropped a message cut short by the connection closing (%s)", exc)


class Worker:
    """One worker's connection to the server: it announces the worker, takes the work sent, keeps the leases
    alive and carries the decoder's answers back."""

    def __init__(self, server: str, token: str, engine: Engine, name: str, slots: int = 1,
                 heartbeat_s: float = 5.0, max_slice_s: float | None = None,
                 diarizer: VoiceEmbedder | None = None, ssl_context: ssl.SSLContext | None = None):
        """``ssl_context``: how to trust an https server (:func:`tls.context`; default: the system's CAs)."""
        self.server = server
        self.ssl_context = ssl_context or tls.context()
        self.engine = engine
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
        self.held: dict[str, Work] = {}  # lease → slice sent to this worker and not yet answered
        self.held_lock = threading.Lock()
        self.cancelled: set[str] = set()
        self.generation = 0
        self.failure: Exception | None = None  # why connecting cannot succeed (TokenRefused, CertificateRefused)
        self.stopped = threading.Event()
        # python-socketio retries every connection, the first included (``connect(retry=True)``), without end,
        # after 1 s, then twice as long each time up to 30 s, each pause randomly up to 0.5 s longer or shorter.
        self.sio = _Client(reconnection=True, reconnection_attempts=0, reconnection_delay=1,
                           reconnection_delay_max=30, randomization_factor=0.5, handle_sigint=False,
                           websocket_extra_options={"sslopt": {"context": self.ssl_context}})
        self.sio.on("connect", self._on_connect, namespace=NAMESPACE)
        self.sio.on("connect_error", self._on_connect_error, namespace=NAMESPACE)
        self.sio.on("disconnect", self._on_disconnect, namespace=NAMESPACE)
        self.sio.on("slice", self._on_slice, namespace=NAMESPACE)
        self.sio.on("cancel", self._on_cancel, namespace=NAMESPACE)
        self.sio.on("tentative", self._on_tentative, namespace=NAMESPACE)
        self.sio.on("welcome", self._on_welcome, namespace=NAMESPACE)
        self.decoder = Decoder(engine, slots, self, self.stopped, diarizer)

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
        self.decoder.put(work)

    def _on_welcome(self, data: dict[str, Any]) -> None:
        """The server says how often it wants heartbeats (its lease timeout is built on that)."""
        try:
            self.heartbeat_s = min(60.0, max(0.2, float(data.get("heartbeat_s", self.heartbeat_s))))
        except (TypeError, ValueError):
            pass

    def _on_cancel(self, data: dict[str, Any]) -> None:
        lease = str(data.get("lease"))
        if self.decoder.tentative.cancel(lease):  # a tentative request not started yet
            return
        self.cancelled.add(lease)
        with self.held_lock:
            self.held.pop(lease, None)

    def _on_tentative(self, data: dict[str, Any]) -> None:
        """A request for tentative text; it replaces this recording's older one if that has not started."""
        work = TentativeWork(str(data["id"]), str(data["job"]), data["audio"], str(data.get("prefix") or ""),
                             self.generation)
        self.decoder.ask_tentative(work)

    # --- running ---------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Connect and work until stopped; raises ``TokenRefused`` or ``tls.CertificateRefused`` when retrying
        cannot help."""
        self.decoder.start()
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

    # --- answers from the decoder (decoding.Link) ------------------------------------------------------------

    def void(self, generation: int, key: str) -> bool:
        return generation != self.generation or key in self.cancelled

    def send(self, event: str, data: dict[str, Any], work: Work) -> dict[str, Any] | None:
        if self.void(work.generation, work.lease):
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

    def send_tentative(self, data: dict[str, Any]) -> bool:
        if not self.sio.connected:
            return False
        try:
            self.sio.emit("tentative_text", data, namespace=NAMESPACE)
        except socketio.exceptions.SocketIOError:
            return False
        return True
