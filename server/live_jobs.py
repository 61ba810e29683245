"""Live jobs on this server: each page's :class:`live.LiveSession`, the job's growing audio file, and the
coordinator calls that scatter a slice as soon as it closes. The rules are in ``live.py``; this module holds
the bookkeeping and the I/O, and stays cheap per chunk (``bench/live.py`` measures it: ``bench/results/live.md``).
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable

from . import audio, disk
from .coordinator import Coordinator
from .ids import new_job_id
from .limits import AudioPace
from .live import ChunkError, LiveOptions, LiveSession, LiveSplitter, Update
from .live_captions import LiveCaptions
from .payloads import LiveChunk, LiveRef, LiveStop
from .planning import fit_to_workers
from .records import JobRecord
from .scheduler import Requirement
from .store import STORE_ERRORS

log = logging.getLogger("scatterscribe")

#: How often a recording's growing length is stored and pushed to the pages between slices: the job card
#: and the past-jobs list follow the page's own timer without a database write and a push per 250 ms chunk.
DURATION_EVERY_S = 1.0
#: Longest a chunk waits for its turn under ``max_speed``; one that would wait longer is refused. A page with
#: 8 s of audio in flight (web/live.js) waits 2 s at most at 4x; the cap bounds what a flood can queue up.
MAX_WAIT_S = 5.0
#: What the page recording a job hears when the job is deleted meanwhile.
DELETED = "this job was deleted while it was being recorded"


@dataclass
class _Live:
    session: LiveSession
    key: str
    file: audio.PcmWriter
    pace: AudioPace  # at most max_speed times real time
    page: str = ""  # the page connection recording it (the latest, after a resume)
    client: str = ""  # that page's address
    waiting: int = 0  # chunks waiting for their turn under the pace
    told_at: float = -math.inf  # when the job's stored duration last caught up with the audio


class LiveJobs:
    """The live recordings in progress, by job id. Every method runs under the coordinator's lock."""

    def __init__(self, coordinator: Coordinator, opts: LiveOptions,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Any] = time.sleep,
                 captions: LiveCaptions | None = None):
        self.coordinator = coordinator
        self.opts = opts
        self.clock = clock
        self.sleep = sleep  # the event loop's: a chunk waiting for its turn lets everything else run
        self.sessions: dict[str, _Live] = {}
        self._unclosed: set[str] = set()  # recordings stopped by a full disk whose job could not be closed yet
        self.captions = captions  # tentative text of the open parts; None: none
        coordinator.on_delete.append(self.deleted)

    # --- the page's requests (answers are the Socket.IO acknowledgements) ----------------------------------

    def start(self, name: str, sample_rate: Any, page: str = "", client: str = "",
              requirement: Requirement = Requirement()) -> dict[str, Any]:
        """A page (connection ``page``, from address ``client``) starts recording: a new job with an empty audio
        file, watched from the first chunk, whose slices and tentative text go only to workers ``requirement``
        accepts (as an upload's ``engine`` and ``model`` fields ask)."""
        coord = self.coordinator
        settings = coord.settings
        with coord.lock:
            if self.opts.max_sessions == 0:  # [live] max_sessions = 0: the page sends the whole file at Stop
                return {"error": "live mode is off on this server"}
            if len(self.sessions) >= self.opts.max_sessions:
                return {"error": f"this server already takes {self.opts.max_sessions} live recordings at "
                                 "once; try again in a moment, or record and upload a file"}
            if sum(live.page == page for live in self.sessions.values()) >= self.opts.max_sessions_per_page:
                return {"error": f"this page is already recording live (at most {self.opts.max_sessions_per_page} "
                                 "at once from one page): stop that recording first"}
            if sum(live.client == client for live in self.sessions.values()) >= self.opts.max_sessions_per_client:
                return {"error": f"your address already records {self.opts.max_sessions_per_client} live "
                                 "recordings at once, the most this server takes from one address"}
            # Slices no longer than the connected workers take, as for an upload.
            opts = fit_to_workers(settings.splitter, coord.scheduler.longest_slice_s(requirement))
            try:
                session = LiveSession(sample_rate, opts, self.opts, settings.server.max_duration_min * 60,
                                      self.clock())
            except ChunkError as exc:
                return {"error": str(exc)}
            job_id = new_job_id()
            path = coord.audio_path(job_id)
            path.parent.mkdir()
            live = _Live(session, secrets.token_urlsafe(18), audio.PcmWriter(path, exclusive=True),
                         AudioPace(self.opts.max_speed, self.opts.burst_s, self.clock()), page, client)
            coord.open_job(JobRecord(id=job_id, name=name, source="live", created_at=time.time(),
                                     recording=True, stats={"input": f"{sample_rate} Hz mono 16-bit PCM"},
                                     engine=requirement.engine, model=requirement.model))
            self.sessions[job_id] = live
            log.info("job %s: live recording started at %d Hz", job_id, sample_rate)
            return {"job": job_id, "key": live.key, "ack": -1, "max_chunk_bytes": session.max_chunk_bytes}

    def chunk(self, chunk: LiveChunk) -> dict[str, Any]:
        """``{job, key, seq, pcm}`` → ``{ack}``; a refusal adds ``error``, an ended recording ``finished``.
        A chunk that comes sooner than ``max_speed`` allows waits its turn (without the lock); with
        ``reorder_chunks`` chunks of this recording already waiting, it is refused. Below ``min_free_disk_mb``
        of free space the recording ends with the audio it has."""
        with self.coordinator.lock:
            try:
                _, live = self._find(chunk.ref)
            except ChunkError as exc:
                return {"ack": -1, "error": str(exc), "finished": True}
            now = self.clock()
            delay = live.pace.delay(now)
            if delay > 0 and (live.waiting >= self.opts.reorder_chunks or delay > MAX_WAIT_S):
                return {"ack": live.session.ack,
                        "error": f"live audio is arriving faster than {self.opts.max_speed:g} times real time: "
                                 "wait for acknowledgements before sending more"}
            wait = live.pace.take(len(chunk.pcm) / 2 / live.session.sample_rate, now)
            live.waiting += 1
        try:
            if wait > 0:
                self.sleep(wait)
        finally:
            live.waiting -= 1
        floor = self.coordinator.settings.server.min_free_disk_mb

        def act(session: LiveSession, now: float) -> Update:
            if disk.refusal(self.coordinator.jobs_dir, len(chunk.pcm), floor):
                return session.end(f"{disk.FULL}: the recording was stopped at {session.duration_s:.1f} s, "
                                   "with everything before kept")
            return session.chunk(chunk.seq, chunk.pcm, now)
        return self._request(chunk.ref, act)

    def stop(self, stop: LiveStop) -> dict[str, Any]:
        """``{job, key, last_seq}``: Stop was pressed after chunk ``last_seq``. The last slice is closed and
        sent at once when every chunk is here; else when the missing ones come (or at the idle timeout)."""
        return self._request(stop.ref, lambda session, now: session.stop(stop.last_seq, now))

    def refuse(self, ref: LiveRef, reason: str) -> dict[str, Any]:
        """A request about this recording that could not be read: refused with ``reason``; nothing changes."""
        def refused(session: LiveSession, now: float) -> Update:
            raise ChunkError(reason)
        return self._request(ref, refused)

    def resume(self, ref: LiveRef, page: str = "", client: str = "") -> dict[str, Any]:
        """``{job, key}`` after a reconnect (``page`` is the new connection): what the server has (``ack``), so
        the page resends the rest."""
        with self.coordinator.lock:
            try:
                _, live = self._find(ref)
            except ChunkError as exc:
                return {"ack": -1, "error": str(exc), "finished": True}
            live.page, live.client = page, client
            live.session.last_heard = self.clock()
            return {"ack": live.session.ack, "stopping": live.session.last_seq is not None}

    def _request(self, ref: LiveRef, act: Callable[[LiveSession, float], Update]) -> dict[str, Any]:
        with self.coordinator.lock:
            try:
                job_id, live = self._find(ref)
            except ChunkError as exc:
                return {"ack": -1, "error": str(exc), "finished": True}
            acked = live.session.ack
            try:
                update = act(live.session, self.clock())
            except ChunkError as exc:  # refused; nothing changed
                return {"ack": live.session.ack, "error": str(exc)}
            try:
                return self._apply(job_id, live, update)
            except STORE_ERRORS as exc:  # the audio or the job could not be written: a full disk
                log.error("job %s: live audio could not be stored (%s); ending the recording", job_id, exc)
                self._close(job_id, live)
                self._unclosed.add(job_id)
                self._close_unclosed()
                reason = disk.FULL if disk.is_full(exc) else "the server could not store the audio"
                return {"ack": acked, "finished": True,
                        "error": f"{reason}: the recording was stopped, with the audio stored until then kept"}

    def _find(self, ref: LiveRef) -> tuple[str, _Live]:
        live = self.sessions.get(ref.job)
        if live is None or not hmac.compare_digest(ref.key.encode(), live.key.encode()):
            raise ChunkError("no such live recording here: it has ended (or the server restarted and closed "
                             "it with the audio it had)")
        return ref.job, live

    # --- applying what the session decided ------------------------------------------------------------------

    def _apply(self, job_id: str, live: _Live, update: Update) -> dict[str, Any]:
        session = live.session
        if len(update.samples):
            live.file.append(update.samples)
        answer: dict[str, Any] = {"ack": update.ack}
        now = self.clock()
        # New slices, the end, or a second's more audio: store the length so far and tell the pages.
        due = len(update.samples) > 0 and now - live.told_at >= DURATION_EVERY_S
        extended = True
        if update.slices and self.captions:
            self.captions.closing(job_id, session)  # before the push that shows the slices
        if update.slices or update.finished or due:
            live.told_at = now
            extended = self.coordinator.extend_job(job_id, update.slices, session.duration_s)
        if not extended:
            self._close(job_id, live)
            return {**answer, "error": DELETED, "finished": True}
        if update.finished:
            self._close(job_id, live)
            self.coordinator.end_recording(job_id, session.duration_s,
                                           {"threshold_db": round(session.splitter.threshold_db, 1)})
            log.info("job %s: live recording ended, %.1f s", job_id, session.duration_s)
            answer["finished"] = True
        elif self.captions:
            self.captions.advance(job_id, session)
        if update.error:
            answer["error"] = update.error
        return answer

    def deleted(self, job_id: str) -> None:
        """The job was deleted (``Coordinator.delete_job``, under its lock): if it is being recorded, the
        recording ends now. Its file is closed (no chunk more is written), its tentative text goes, and the page
        recording it is told (``live_ended {job, error}``), as are the job's pages (``partial`` null)."""
        live = self.sessions.get(job_id)
        if live is None:
            return
        self._close(job_id, live)
        self._unclosed.discard(job_id)
        self.coordinator.partials.pop(job_id, None)
        if live.page:  # never to "" (that would be everyone)
            self.coordinator.emit("live_ended", {"job": job_id, "error": DELETED}, to=live.page, namespace="/")
        self.coordinator.emit("partial", {"job": job_id, "partial": None}, to=f"job:{job_id}", namespace="/")
        log.info("job %s: deleted while it was being recorded; the recording ended", job_id)

    def _close(self, job_id: str, live: _Live) -> None:
        live.file.close()
        self.sessions.pop(job_id, None)
        if self.captions:
            self.captions.ended(job_id)

    def tick(self) -> None:
        """Called every second: a recording whose page has been silent for ``idle_timeout_s`` is closed with
        the audio it has, and its job finishes."""
        with self.coordinator.lock:
            self._close_unclosed()
            now = self.clock()
            for job_id, live in list(self.sessions.items()):
                update = live.session.expire(now)
                if update is not None:
                    log.warning("job %s: no word from its page for %.0f s; closing the live recording",
                                job_id, self.opts.idle_timeout_s)
                    self._apply(job_id, live, update)

    # --- after a restart ------------------------------------------------------------------------------------

    def recover(self) -> int:
        """Close every live recording a previous run left open: its page's session died with that run, so the
        audio on disk is all there will be. Its rest is cut and queued like the end of any recording."""
        jobs = self.coordinator.store.recording_jobs()
        for job in jobs:
            self._close_from_disk(job.id, "the server restarted while it was recording")
        return len(jobs)

    def _close_unclosed(self) -> None:
        """Close the jobs of recordings a full disk stopped, as far as the disk now allows."""
        for job_id in sorted(self._unclosed):
            try:
                self._close_from_disk(job_id, "the server's disk was full")
                self._unclosed.discard(job_id)
            except STORE_ERRORS as exc:
                log.error("job %s: still cannot close its live recording: %s", job_id, exc)

    def _close_from_disk(self, job_id: str, why: str) -> None:
        """End a recording whose session is gone with the audio its file holds: the rest after its last slice
        is cut and queued like the end of any recording."""
        coord = self.coordinator
        job = coord.store.get_job(job_id)
        if job is None or not job.recording:
            return
        path = coord.audio_path(job.id)
        samples = audio.PcmWriter.repair(path) if path.exists() else 0
        splitter = LiveSplitter(coord.settings.splitter, self.opts)
        if samples:  # rare (a restart, a full disk): reading the recording once on the event loop is fine
            splitter.feed(audio.PcmFile(path)[:])
        done_to = max((s.end for s in job.slices), default=0.0)
        splitter.open_frame = math.ceil(round(done_to * audio.TARGET_RATE) / splitter.frame_len)
        slices = splitter.close(final=True)
        duration = samples / audio.TARGET_RATE
        coord.extend_job(job.id, slices, duration)
        coord.end_recording(job.id, duration, {"threshold_db": round(splitter.threshold_db, 1), "closed": why})
        log.info("job %s: live recording closed at %.1f s (%s)", job.id, duration, why)
