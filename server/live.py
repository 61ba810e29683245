"""Live recordings: a recording scattered while it is being made. The pure parts: no sockets, no files, the
time passed in, so every rule here is tested on its own.

A page sends the microphone's 16-bit PCM in numbered chunks of ~250 ms. :class:`LiveSession` takes them
and says, for each one, what to acknowledge, which 16 kHz samples to append to the job's audio file and which
slices are now closed (to be scattered at once):

* :class:`Sequencer` puts chunks back in order. It acknowledges the highest sequence number up to which
  everything has arrived, ignores chunks it already has, holds a few that arrive early (Socket.IO may hand two
  events to two handlers) and refuses one too far ahead, so the page resends from the acknowledged one.
* :class:`audio.Resampler` turns another sample rate into 16 kHz chunk by chunk, the resampler of WAV
  uploads, so the stored audio is the same bytes either way.
* :class:`LiveSplitter` decides where slices end while the audio grows (the rule is in its docstring). Every
  closed slice is cut by :func:`splitter.plan_part`, so live slices carry the same pieces and pads as
  uploaded ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import audio
from .splitter import Slice, SplitOptions, adaptive_threshold_db, frame_levels_db, plan_part, speech_regions


@dataclass(frozen=True)
class LiveOptions:
    """The ``[live]`` section: how live recordings are cut, and their limits."""

    #: A pause of at least ``pause_s`` closes the open slice once it spans this much of the recording ...
    slice_after_s: float = 8.0
    pause_s: float = 0.6
    #: ... and a pause this long closes it whatever its length (the speaker stopped: show the words).
    long_pause_s: float = 2.0
    #: The silence threshold adapts to this much of the most recent audio ...
    threshold_window_s: float = 300.0
    #: ... once there is this much of it; before that it is ``start_threshold_db``.
    warmup_s: float = 2.0
    #: Between a quiet room (about -60 dBFS) and speech into a microphone (about -30 to -15 dBFS).
    start_threshold_db: float = -45.0
    #: A live job whose page has not been heard from for this long is closed with the audio it has.
    idle_timeout_s: float = 60.0
    #: Live recordings at once on this server; 0 turns live mode off (pages then upload a recording at Stop).
    max_sessions: int = 4
    #: Longest chunk accepted (the page sends ~0.25 s).
    max_chunk_s: float = 1.0
    #: Chunks after a missing one that are held until it comes; one further ahead is refused. As many chunks
    #: may wait for their turn under ``max_speed``; one more is refused.
    reorder_chunks: int = 64
    #: Audio taken from one recording at most this many times faster than real time (a page resending after a
    #: reconnect), after ``burst_s`` seconds of it; sooner chunks wait their turn.
    max_speed: float = 4.0
    burst_s: float = 30.0
    #: Live recordings at once from one page connection, and from one client address.
    max_sessions_per_page: int = 1
    max_sessions_per_client: int = 2

    def __post_init__(self) -> None:
        if self.slice_after_s <= 0 or self.long_pause_s <= 0 or self.idle_timeout_s <= 0:
            raise ValueError("slice_after_s, long_pause_s and idle_timeout_s must be positive")
        if self.max_sessions < 0:
            raise ValueError("max_sessions must be 0 (live mode off) or more")
        if self.reorder_chunks < 1 or self.max_chunk_s <= 0:
            raise ValueError("reorder_chunks and max_chunk_s must be positive")
        if self.max_speed <= 0 or self.burst_s < 0 or self.max_sessions_per_page < 1 or \
                self.max_sessions_per_client < 1:
            raise ValueError("max_speed, max_sessions_per_page and max_sessions_per_client must be positive")


class ChunkError(ValueError):
    """A chunk or request the session refuses; the message is for the page (and its user)."""


# --- order --------------------------------------------------------------------------------------------------


class Sequencer:
    """Numbered chunks in, the same chunks in order out, each exactly once."""

    def __init__(self, window: int):
        self.window = window
        self.acked = -1  # every chunk up to this one has arrived
        self.early: dict[int, bytes] = {}

    def accept(self, seq: int, data: bytes) -> list[bytes]:
        """The chunks that are now in order (none, this one, or this one and early ones it unblocked)."""
        if seq <= self.acked or seq in self.early:
            return []  # a resend of something already here
        if seq > self.acked + self.window:
            raise ChunkError(f"chunk {seq} is too far ahead: resend from chunk {self.acked + 1}")
        self.early[seq] = data
        ready = []
        while self.acked + 1 in self.early:
            self.acked += 1
            ready.append(self.early.pop(self.acked))
        return ready


# --- where slices end ---------------------------------------------------------------------------------------


class LiveSplitter:
    """Where a growing recording's slices end, decided as its audio arrives.

    The audio not yet in a closed slice is the *open stretch*. After each chunk, with the silence threshold of
    the recent audio (:func:`splitter.adaptive_threshold_db` over ``threshold_window_s``; a fixed
    ``start_threshold_db`` for the first ``warmup_s``):

    * A pause closes the open slice as soon as it has lasted ``pause_s``, if the speech before it spans at
      least ``slice_after_s``; or as soon as it has lasted ``long_pause_s``, however short the slice (the
      speaker stopped: their words should show). Shorter pauses, breaths within a sentence, do not close it:
      shorter slices cost words (``bench/live.py`` compares live cuts with an upload's,
      ``bench/results/live.md``). The cut lies ``pad_ms``
      after the speech (or at the pause's quietest frame if it is shorter than two pads), never inside it.
    * Speech with no such pause is cut once it no longer fits in ``max_slice_s``, exactly where the upload
      splitter cuts it (the longest pause leaving the slice ``min_fill`` full, else the quietest 100 ms).
    * Silence with no speech since the last slice is dropped as it comes (it would never be sent anyway).
    * At the end (:meth:`close` with ``final``) the rest is cut as an upload's would be.

    Each closed stretch is turned into slices by :func:`splitter.plan_part`, as an upload's waiting slices are
    cut again, so live slices have the same pieces and pads as uploaded ones. Per chunk this costs one
    percentile over the window and a pass over the open stretch (at most ~``max_slice_s``); ``bench/live.py``
    measures it (``bench/results/live.md``).
    """

    def __init__(self, opts: SplitOptions, live: LiveOptions):
        self.opts, self.live = opts, live
        self.frame_len, self.frames_per_s = opts.frame_len, opts.frames_per_s
        self._levels = np.zeros(1024, np.float32)
        self.n_frames = 0
        self._partial = np.zeros(0, "<i2")  # samples that do not yet make a whole frame
        self.open_frame = 0  # first frame not in a closed slice (nor dropped as silence)
        self.threshold_db = live.start_threshold_db
        self._pad = opts.pad_frames
        self._close_pause = max(opts.min_silence_frames, round(live.pause_s * self.frames_per_s))
        self._long_pause = max(opts.min_silence_frames, round(live.long_pause_s * self.frames_per_s))

    @property
    def levels_db(self) -> np.ndarray:
        return self._levels[: self.n_frames]

    def feed(self, samples: np.ndarray) -> None:
        """Measure the next 16 kHz samples (whole 20 ms frames; a partial frame waits for the rest)."""
        samples = np.concatenate((self._partial, np.asarray(samples, dtype="<i2")))
        whole = len(samples) // self.frame_len * self.frame_len
        self._partial = samples[whole:]
        levels = frame_levels_db(samples[:whole], self.frame_len)
        if self.n_frames + len(levels) > len(self._levels):
            grown = np.zeros(max(2 * len(self._levels), self.n_frames + len(levels)), np.float32)
            grown[: self.n_frames] = self.levels_db
            self._levels = grown
        self._levels[self.n_frames : self.n_frames + len(levels)] = levels
        self.n_frames += len(levels)

    def threshold(self) -> float:
        """The silence threshold now: adaptive over the recent audio, fixed while there is too little."""
        if self.n_frames < self.live.warmup_s * self.frames_per_s:
            return self.live.start_threshold_db
        first = max(0, self.n_frames - round(self.live.threshold_window_s * self.frames_per_s))
        return adaptive_threshold_db(self.levels_db[first:], self.opts)

    def close(self, final: bool = False) -> list[Slice]:
        """Slices closed by the audio measured so far (all the rest when ``final``), in samples of the whole
        recording; each is closed once."""
        self.threshold_db = self.threshold()
        closed: list[Slice] = []
        while True:
            stretch = self.levels_db[self.open_frame :]
            if final:
                closed += self._plan(len(stretch))
                self.open_frame = self.n_frames
                return closed
            regions = speech_regions(stretch, self.threshold_db, self.opts)
            if not regions:
                keep = self._pad + self.opts.min_silence_frames  # room for a word that is only starting
                self.open_frame = max(self.open_frame, self.n_frames - keep)
                return closed
            cut = self._pause_cut(regions, stretch)
            if cut is not None:
                closed += self._plan(cut)
                self.open_frame += cut
                continue
            plan = self._plan(len(stretch))
            if len(plan) < 2:
                return closed
            closed += plan[:-1]
            self.open_frame = plan[-2].end // self.frame_len

    def _pause_cut(self, regions: list[tuple[int, int]], stretch: np.ndarray) -> int | None:
        """Frame (in the open stretch) where the first pause that closes the open slice leaves off, if any."""
        first_speech = regions[0][0]
        for k, (_, end) in enumerate(regions):
            gap = (regions[k + 1][0] if k + 1 < len(regions) else len(stretch)) - end
            long_enough = (end - first_speech) / self.frames_per_s >= self.live.slice_after_s
            if gap >= self._close_pause if long_enough else gap >= self._long_pause:
                if gap >= 2 * self._pad:
                    return end + self._pad
                return end + int(np.argmin(stretch[end : end + gap]))
        return None

    def _plan(self, frames: int) -> list[Slice]:
        """The upload splitter's slices for the first ``frames`` of the open stretch, in recording samples."""
        stretch = self.levels_db[self.open_frame : self.open_frame + frames]
        return plan_part(stretch, self.open_frame * self.frame_len, self.threshold_db, self.opts)


# --- one recording ------------------------------------------------------------------------------------------


class Update(NamedTuple):
    """What one request to a session changed."""

    ack: int  # every chunk up to this one has arrived
    samples: np.ndarray  # 16 kHz samples to append to the stored audio, in order
    slices: list[Slice]  # slices closed now, to scatter at once
    finished: bool  # no more audio will come: the job may finish once its slices are done
    error: str = ""  # why the session finished early, for the page


class LiveSession:
    """One live recording: chunks in, audio and closed slices out. States: recording → (stopping →) finished.

    ``stop(last_seq)`` with chunks still missing waits for them (the page resends what was not acknowledged);
    a session not heard from for ``idle_timeout_s`` finishes with what it has (:meth:`expire`).
    """

    def __init__(self, sample_rate: int, opts: SplitOptions, live: LiveOptions, max_duration_s: float,
                 now: float):
        if not isinstance(sample_rate, int) or not audio.MIN_RATE <= sample_rate <= audio.MAX_RATE:
            raise ChunkError(f"unsupported sample rate: {sample_rate!r} (8000 to 48000 Hz are accepted)")
        self.sample_rate = sample_rate
        self.live = live
        self.max_frames = int(max_duration_s * sample_rate)
        self.max_chunk_bytes = 2 * int(live.max_chunk_s * sample_rate)
        self.sequencer = Sequencer(live.reorder_chunks)
        self.resampler = audio.Resampler(sample_rate)
        self.splitter = LiveSplitter(opts, live)
        self.frames_in = 0  # at the page's rate
        self.samples_out = 0  # at 16 kHz
        self.last_seq: int | None = None  # set by stop
        self.finished = False
        self.last_heard = now

    @property
    def ack(self) -> int:
        return self.sequencer.acked

    @property
    def duration_s(self) -> float:
        return self.samples_out / audio.TARGET_RATE

    def chunk(self, seq: object, pcm: object, now: float) -> Update:
        """A chunk from the page. Raises :class:`ChunkError` for one it refuses (nothing is changed then)."""
        if self.finished:
            raise ChunkError("this live recording is over")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**31:
            raise ChunkError("seq must be a whole number from 0")
        if not isinstance(pcm, (bytes, bytearray)) or not pcm or len(pcm) % 2:
            raise ChunkError("pcm must be 16-bit samples (an even, non-zero number of bytes)")
        if len(pcm) > self.max_chunk_bytes:
            raise ChunkError(f"a chunk may hold at most {self.live.max_chunk_s:g} s of audio")
        if self.last_seq is not None and seq > self.last_seq:
            raise ChunkError(f"chunk {seq} comes after the last one ({self.last_seq})")
        self.last_heard = now
        ready = self.sequencer.accept(seq, bytes(pcm))
        frames = sum(len(c) for c in ready) // 2
        if self.frames_in + frames > self.max_frames:  # the limit ends the recording before these chunks
            self.sequencer.acked -= len(ready)
            limit = self.max_frames / self.sample_rate / 60
            return self._finish()._replace(
                error=f"the recording reached this server's limit of {limit:.4g} min: it was stopped there")
        self.frames_in += frames
        pcm16 = np.frombuffer(b"".join(ready), dtype="<i2")
        samples = audio.float_to_pcm16(self.resampler.feed(pcm16.astype(np.float32) / 32768.0))
        if self.last_seq is not None and self.ack >= self.last_seq:
            return self._finish(samples)
        return self._advance(samples)

    def stop(self, last_seq: object, now: float) -> Update:
        """Stop was pressed after chunk ``last_seq`` (-1: none). Finishes at once if every chunk is here."""
        if not isinstance(last_seq, int) or isinstance(last_seq, bool) or not -1 <= last_seq < 2**31:
            raise ChunkError("last_seq must be a whole number from -1")
        if last_seq < self.ack:
            raise ChunkError(f"last_seq {last_seq} is before chunks already received (up to {self.ack})")
        self.last_heard = now
        if self.finished:
            return Update(self.ack, np.zeros(0, "<i2"), [], True)
        self.last_seq = last_seq
        if self.ack >= last_seq:
            return self._finish()
        return Update(self.ack, np.zeros(0, "<i2"), [], False)

    def expire(self, now: float) -> Update | None:
        """Finish with what has arrived if the page has been silent for ``idle_timeout_s``; else None."""
        if self.finished or now - self.last_heard < self.live.idle_timeout_s:
            return None
        return self._finish()

    def end(self, reason: str) -> Update:
        """Finish now with the audio that has arrived, telling the page ``reason`` (the disk is full)."""
        return self._finish()._replace(error=reason)

    def _advance(self, samples: np.ndarray) -> Update:
        self.samples_out += len(samples)
        self.splitter.feed(samples)
        return Update(self.ack, samples, self.splitter.close(), False)

    def _finish(self, samples: np.ndarray | None = None) -> Update:
        rest = audio.float_to_pcm16(self.resampler.finish())
        samples = rest if samples is None else np.concatenate((samples, rest))
        self.samples_out += len(samples)
        self.splitter.feed(samples)
        self.finished = True
        return Update(self.ack, samples, self.splitter.close(final=True), True)
