"""Speakers of a stereo recording whose channels hold different people, from the channels' levels alone.

A phone call recorded as two channels, or an interview with a microphone per person, says who speaks when
without any model: at each moment, the person speaking is loudest on their own channel. The upload's decoder
calls :class:`ChannelLevels` with each block of frames *before* it mixes the channels down to the mono copy
everything else uses (``audio.convert_to_pcm16``'s ``channel_levels`` hook); the levels are kept in the job's
folder (``channel_levels.npy``, 20 ms frames, dBFS per channel).

:func:`separated` decides whether the channels hold different people: in a plain stereo recording (music, a
room, a mono recording copied to both channels) every channel hears every speaker about equally, while in a
call a good share of the speech is ``dominance_db`` louder on one channel than on the other, for each of at
least two channels. :func:`channel_turns` then gives each stretch of speech to its loudest channel: "Speaker 1"
is the first (left) channel, "Speaker 2" the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAME_S = 0.02
FLOOR_DB = -100.0
FILE_NAME = "channel_levels.npy"


@dataclass(frozen=True)
class ChannelOptions:
    """When channels count as different people, and how their turns are cut."""

    #: A frame belongs to a channel when it is this much louder there than on every other channel ...
    dominance_db: float = 6.0
    #: ... and each of at least two channels must own this share of the speech frames.
    min_share: float = 0.1
    #: Speech is what is this far below the loudest frames' level (95th percentile) or closer.
    speech_below_peak_db: float = 30.0
    #: Levels are smoothed over this long before the loudest channel is taken (a plosive on the other
    #: microphone does not change the speaker).
    smooth_s: float = 0.2
    #: Speech separated by less silence than this stays one turn when its channel does not change.
    join_gap_s: float = 0.3


class ChannelLevels:
    """Mean power per channel in 20 ms frames of the output timeline, fed blocks of the source's frames in
    order (a block may start before the end of the previous one: the overlap is skipped)."""

    def __init__(self) -> None:
        self.rate = 0
        self.channels = 0
        self._seen = 0  # source frames taken so far
        # Per block fed: its first output frame, and per output frame its summed power per channel and how
        # many source frames fell in it (a frame that straddles two blocks is summed from both).
        self._firsts: list[int] = []
        self._sums: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []

    def add(self, first: int, frames: np.ndarray, rate: int) -> None:
        """``frames`` (n, channels) of float samples in [-1, 1] starting at source frame ``first``."""
        if frames.ndim != 2 or frames.shape[1] < 2:
            return
        if not self.rate:
            self.rate, self.channels = rate, frames.shape[1]
        skip = max(0, self._seen - first)
        frames = frames[skip:]
        if len(frames) == 0:
            return
        start = first + skip
        end = start + len(frames)
        lo, last = start * 50 // self.rate, (end - 1) * 50 // self.rate  # output frames the block touches
        # Where each later output frame starts, in the block: frame k starts at source frame ceil(k * rate / 50).
        later = np.arange(lo + 1, last + 1, dtype=np.int64)
        edges = np.concatenate(([0], (later * self.rate + 49) // 50 - start))
        sums = np.add.reduceat(np.square(frames), edges, axis=0, dtype=np.float64)
        counts = np.diff(np.append(edges, len(frames))).astype(np.float64)
        self._firsts.append(lo)
        self._sums.append(sums)
        self._counts.append(counts)
        self._seen = start + len(frames)

    def levels_db(self) -> np.ndarray:
        """(frames, channels) mean level of each 20 ms frame in dBFS; empty for mono."""
        if not self._sums:
            return np.zeros((0, max(self.channels, 2)), dtype=np.float32)
        total = self._firsts[-1] + len(self._counts[-1])
        sums = np.zeros((total, self.channels))
        counts = np.zeros(total)
        for lo, s, n in zip(self._firsts, self._sums, self._counts, strict=True):
            sums[lo:lo + len(n)] += s
            counts[lo:lo + len(n)] += n
        power = sums / np.maximum(counts, 1)[:, None]
        return (10 * np.log10(np.maximum(power, 10 ** (FLOOR_DB / 10)))).astype(np.float32)

    def save(self, folder: Path) -> Path | None:
        """Write the levels into ``folder`` (nothing for a mono recording); the file's path, or None."""
        if not self._sums:
            return None
        path = folder / FILE_NAME
        np.save(path, self.levels_db())
        return path


def load(folder: Path) -> np.ndarray | None:
    path = folder / FILE_NAME
    return np.load(path, allow_pickle=False) if path.exists() else None


def _speech(levels_db: np.ndarray, opts: ChannelOptions) -> np.ndarray:
    loudest = levels_db.max(axis=1)
    if len(loudest) == 0:
        return np.zeros(0, dtype=bool)
    peak = float(np.percentile(loudest, 95))
    return (loudest >= peak - opts.speech_below_peak_db) & (loudest > FLOOR_DB + 1)


def _owner(levels_db: np.ndarray, opts: ChannelOptions) -> np.ndarray:
    """Per frame: the channel that is ``dominance_db`` louder than all others (after smoothing), or -1."""
    width = max(1, round(opts.smooth_s / FRAME_S))
    kernel = np.ones(width) / width
    power = 10 ** (levels_db.astype(np.float64) / 10)
    smooth = np.stack([np.convolve(power[:, c], kernel, mode="same") for c in range(power.shape[1])], axis=1)
    smooth_db = 10 * np.log10(np.maximum(smooth, 10 ** (FLOOR_DB / 10)))
    top = np.argmax(smooth_db, axis=1)
    ordered = np.sort(smooth_db, axis=1)
    margin = ordered[:, -1] - ordered[:, -2]
    return np.where(margin >= opts.dominance_db, top, -1)


def separated(levels_db: np.ndarray | None, opts: ChannelOptions = ChannelOptions()) -> bool:
    """Do the channels hold different people? At least two channels each own ``min_share`` of the speech."""
    if levels_db is None or levels_db.ndim != 2 or levels_db.shape[1] < 2 or len(levels_db) == 0:
        return False
    speech = _speech(levels_db, opts)
    if speech.sum() == 0:
        return False
    owner = _owner(levels_db, opts)[speech]
    shares = [float(np.mean(owner == c)) for c in range(levels_db.shape[1])]
    return sum(share >= opts.min_share for share in shares) >= 2


def channel_turns(levels_db: np.ndarray, opts: ChannelOptions = ChannelOptions()) -> list[list[float]]:
    """``[start, end, speaker]`` (seconds; speaker = channel + 1) for each stretch of speech owned by one
    channel; speech that no channel owns (both people at once, or too even to tell) is given to the louder."""
    speech = _speech(levels_db, opts)
    owner = _owner(levels_db, opts)
    loudest = np.argmax(levels_db, axis=1)
    owner = np.where(owner >= 0, owner, loudest)
    turns: list[list[float]] = []
    gap = round(opts.join_gap_s / FRAME_S)
    k, n = 0, len(speech)
    while k < n:
        if not speech[k]:
            k += 1
            continue
        end = k
        while end < n and speech[end] and owner[end] == owner[k]:
            end += 1
        start_s, end_s, who = round(k * FRAME_S, 3), round(end * FRAME_S, 3), int(owner[k]) + 1
        if turns and turns[-1][2] == who and start_s - turns[-1][1] <= gap * FRAME_S:
            turns[-1][1] = end_s
        else:
            turns.append([start_s, end_s, who])
        k = end
    return turns
