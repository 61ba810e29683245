"""Where to cut a recording: pure numpy, no I/O, no sockets.

The recording is measured in 20 ms frames (RMS level in dBFS). Frames quieter than a threshold that adapts to
the recording's own noise floor are silence (a recording without speech dynamics, steady noise or hum at any
level, is all silence); a silence of at least ``min_silence_ms`` separates two stretches of speech. Slices are
then packed from whole stretches of speech:

* Whisper pads every input to a 30 s window, so a 5 s slice costs nearly as much as a 28 s one. Consecutive
  speech is packed into slices close to, but never over, ``max_slice_s``.
* Silence is not sent to workers: a pause longer than ``2 * pad_ms`` is shortened to ``pad_ms`` on each side, so
  a slice is a list of *pieces* of the original audio, played back to back (as faster-whisper's own VAD filter
  does). :func:`to_original_time` maps a time in a slice back to the recording.
* A slice ends at the longest pause among those that leave it at least ``min_fill`` full, so cuts fall
  between sentences rather than at the first breath past the limit.
* A stretch of speech longer than ``max_slice_s`` (no pause at all) is cut at its quietest 100 ms.
* With idle workers, :func:`split_for_parallelism` cuts finer so the slices fill whole rounds of them (see its
  docstring for the rule).

Why a numpy RMS pass and not a neural VAD: the split must cost well under 1 % of the transcription time, and
20 ms RMS frames are many times faster than Silero VAD or pydub's ``split_on_silence`` (``bench/splitter.py``
measures the three and checks the cuts' quality; its figures are in ``bench/results/splitter.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple, Sequence

import numpy as np

from .audio import TARGET_RATE

#: Level given to frames of digital silence, so that log10(0) never appears.
FLOOR_DB = -100.0


@dataclass(frozen=True)
class SplitOptions:
    """How a recording is cut into slices. Every length carries its unit in its name."""

    #: Longest slice sent to a worker (Whisper's window is 30 s; keep a margin for padding).
    max_slice_s: float = 28.0
    #: A pause must last this long to be a place to cut.
    min_silence_ms: int = 300
    #: Silence kept around speech at each cut and on each side of a shortened pause.
    pad_ms: int = 200
    #: Cutting finer for idle workers stops at slices of twice this length: shorter ones lose words even with
    #: guard bands of their neighbours' speech (``bench/slicing.py``; the README has the curve) ...
    min_slice_s: float = 4.0
    #: ... and at twice this when some worker that may take them hears slices alone (no word times, so no
    #: guard bands: the text suffers sooner).
    min_slice_alone_s: float = 7.0
    #: Packing looks back for the longest pause among cuts that leave a slice at least this full.
    min_fill: float = 0.75
    #: Length of one analysis frame.
    frame_ms: int = 20
    #: Percentile of frame levels taken as the noise floor.
    floor_percentile: float = 10.0
    #: Percentile of frame levels taken as the speech level.
    speech_percentile: float = 95.0
    #: Threshold = floor + this share of (speech level - floor) ...
    threshold_ratio: float = 0.25
    #: ... but at least this far above the floor ...
    min_margin_db: float = 4.0
    #: ... and never closer than this to the speech level.
    min_headroom_db: float = 6.0
    #: A burst of sound shorter than this inside silence (a click, a breath) does not count as speech.
    min_speech_ms: int = 60
    #: A recording whose loud frames stay below this level holds no speech at all.
    min_speech_db: float = -60.0

    @property
    def frame_len(self) -> int:
        """Samples in one analysis frame."""
        return TARGET_RATE * self.frame_ms // 1000

    @property
    def frames_per_s(self) -> float:
        return TARGET_RATE / self.frame_len

    @property
    def pad_frames(self) -> int:
        return round(self.pad_ms / self.frame_ms)

    @property
    def min_silence_frames(self) -> int:
        return max(1, round(self.min_silence_ms / self.frame_ms))

    def __post_init__(self) -> None:
        if self.max_slice_s < 2 * self.min_slice_s:
            raise ValueError("max_slice_s must be at least twice min_slice_s")
        if self.frame_ms <= 0 or self.min_silence_ms < self.frame_ms:
            raise ValueError("min_silence_ms must be at least one frame")
        if not 0 < self.min_fill <= 1:
            raise ValueError("min_fill must lie in (0, 1]")


class Span(NamedTuple):
    """A stretch of the recording, in samples: ``start`` inclusive, ``end`` exclusive."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


class Slice(NamedTuple):
    """One unit of work: pieces of the recording, in order, that a worker hears back to back."""

    pieces: tuple[Span, ...]

    @property
    def start(self) -> int:
        return self.pieces[0].start

    @property
    def end(self) -> int:
        return self.pieces[-1].end

    @property
    def length(self) -> int:
        """Samples the worker receives (dropped silence excluded)."""
        return sum(p.length for p in self.pieces)


class Analysis(NamedTuple):
    """What the splitter learnt about a recording; kept for tests, the page and the bench."""

    levels_db: np.ndarray
    threshold_db: float
    frame_len: int


# --- measuring -------------------------------------------------------------------------------------------------


def frame_levels_db(samples: np.ndarray, frame_len: int, block_frames: int = 5_000) -> np.ndarray:
    """RMS level of each whole frame in dBFS; works block by block (100 s of 20 ms frames) so a long recording
    on disk is never copied whole into floats. Integer samples are scaled to [-1, 1)."""
    n_frames = len(samples) // frame_len
    scale = 1.0 / 32768.0 if samples.dtype == np.int16 else 1.0
    levels = np.empty(n_frames, dtype=np.float32)
    for first in range(0, n_frames, block_frames):
        last = min(n_frames, first + block_frames)
        block = np.asarray(samples[first * frame_len : last * frame_len], dtype=np.float32) * scale
        power = np.mean(np.square(block.reshape(last - first, frame_len)), axis=1)
        levels[first:last] = 10.0 * np.log10(np.maximum(power, 10 ** (FLOOR_DB / 10)))
    return levels


def adaptive_threshold_db(levels_db: np.ndarray, opts: SplitOptions) -> float:
    """Silence threshold from the recording's own noise floor and speech level (a fixed -40 dBFS would call a
    noisy recording all speech and a quiet one all silence)."""
    if len(levels_db) == 0:
        return FLOOR_DB
    floor = float(np.percentile(levels_db, opts.floor_percentile))
    speech = float(np.percentile(levels_db, opts.speech_percentile))
    margin = max(opts.min_margin_db, opts.threshold_ratio * (speech - floor))
    return min(floor + margin, speech - opts.min_headroom_db) if speech - floor > opts.min_headroom_db else floor


def recording_threshold_db(levels_db: np.ndarray, opts: SplitOptions) -> float:
    """The silence threshold of a whole recording (an upload): :func:`adaptive_threshold_db`, except for a
    recording without speech dynamics, whose speech level is within ``min_headroom_db`` of its floor: steady
    noise or hum, at whatever level. Its threshold is ``min_headroom_db`` above that level, so the noise itself
    is silence (no slice of it goes to a worker: "no speech found") while a rare sound clearly louder than it
    (a few words over a noisy line, too short to move the percentiles) still counts as speech."""
    if len(levels_db) == 0:
        return FLOOR_DB
    floor = float(np.percentile(levels_db, opts.floor_percentile))
    speech = float(np.percentile(levels_db, opts.speech_percentile))
    if speech - floor <= opts.min_headroom_db:
        return speech + opts.min_headroom_db
    return adaptive_threshold_db(levels_db, opts)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True in ``mask`` as (first, end) frame indices."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=False))


def speech_regions(levels_db: np.ndarray, threshold_db: float, opts: SplitOptions) -> list[tuple[int, int]]:
    """Stretches of speech, in frames, separated by pauses of at least ``min_silence_ms``."""
    if len(levels_db) == 0 or float(np.max(levels_db)) < opts.min_speech_db:
        return []
    loud = levels_db >= threshold_db
    min_silence = opts.min_silence_frames
    for first, end in _runs(~loud):  # a short gap inside a word or between words is not a pause
        if end - first < min_silence and first > 0 and end < len(loud):
            loud[first:end] = True
    min_speech = max(1, round(opts.min_speech_ms / opts.frame_ms))
    for first, end in _runs(loud):  # a lone click inside a pause is not speech
        if end - first < min_speech:
            loud[first:end] = False
    quiet = ~loud
    return _runs(~quiet)


# --- cutting ---------------------------------------------------------------------------------------------------


def _smoothed(levels_db: np.ndarray, width: int = 5) -> np.ndarray:
    """Levels averaged over ``width`` frames (100 ms), so a forced cut lands between words, not in a stop."""
    if len(levels_db) < width:
        return levels_db.astype(np.float64)
    kernel = np.ones(width) / width
    return np.convolve(levels_db.astype(np.float64), kernel, mode="same")


def _force_cuts(region: tuple[int, int], smooth: np.ndarray, max_frames: int) -> list[tuple[int, int]]:
    """Cut a stretch of speech longer than ``max_frames`` at its quietest points, each part ≤ max_frames."""
    first, end = region
    parts = []
    while end - first > max_frames:
        lo, hi = first + max_frames // 2, first + max_frames
        cut = lo + int(np.argmin(smooth[lo:hi]))
        parts.append((first, cut))
        first = cut
    parts.append((first, end))
    return parts


class _Unit(NamedTuple):
    """A stretch of speech in frames plus the silence it may borrow on each side."""

    first: int
    end: int
    gap_before: int  # frames of pause before it (0 for a forced cut)


def _units(regions: list[tuple[int, int]], levels_db: np.ndarray, max_frames: int, pad: int) -> list[_Unit]:
    smooth = _smoothed(levels_db)
    units: list[_Unit] = []
    previous_end = 0
    for region in regions:
        for k, (first, end) in enumerate(_force_cuts(region, smooth, max_frames - 2 * pad)):
            units.append(_Unit(first, end, first - previous_end if k == 0 else 0))
            previous_end = end
    return units


def _pieces(units: Sequence[_Unit], pad: int, n_frames: int) -> list[tuple[int, int]]:
    """Frame pieces for a run of units: a pause up to 2*pad is kept whole, a longer one keeps pad on each side."""
    pieces = [[max(0, units[0].first - pad), units[0].end]]
    for previous, unit in zip(units, units[1:], strict=False):
        if unit.gap_before <= 2 * pad:
            pieces[-1][1] = unit.end
        else:
            pieces[-1][1] = previous.end + pad
            pieces.append([unit.first - pad, unit.end])
    pieces[-1][1] = min(n_frames, pieces[-1][1] + pad)
    return [(a, b) for a, b in pieces]


def _added_frames(unit: _Unit, first_in_slice: bool, pad: int) -> int:
    """Frames a unit adds to a slice: itself plus what is kept of the pause before it (both pads if first)."""
    kept_pause = 2 * pad if first_in_slice else min(unit.gap_before, 2 * pad)
    return unit.end - unit.first + kept_pause


def _pack(units: list[_Unit], max_frames: int, min_fill: float, pad: int) -> list[list[_Unit]]:
    """Greedy packing of units into slices of at most max_frames; a full slice ends at its longest pause among
    those that leave it at least ``min_fill`` full."""
    slices: list[list[_Unit]] = []
    i = 0
    while i < len(units):
        sizes = [_added_frames(units[i], True, pad)]  # sizes[k]: frames of units[i : i + k + 1]
        j = i + 1
        while j < len(units) and sizes[-1] + _added_frames(units[j], False, pad) <= max_frames:
            sizes.append(sizes[-1] + _added_frames(units[j], False, pad))
            j += 1
        if j < len(units):  # full: end at the longest pause before units[k], k in i+1..j
            best = j
            for k in range(j - 1, i, -1):
                if sizes[k - 1 - i] < min_fill * max_frames:
                    break
                if units[k].gap_before > units[best].gap_before:
                    best = k
            j = best
        slices.append(units[i:j])
        i = j
    return slices


def _cut_between(left: _Unit, right: _Unit, levels_db: np.ndarray) -> int:
    """The quietest frame of the pause between two units (the frame boundary where one slice ends and the next
    begins when the pause is too short to drop). Only the middle half of the pause is searched: the quietest
    frame of a whole pause is often the last one before a word starts (levels differ by a dB or two across a
    pause), and a cut there leaves the next slice no lead-in and risks clipping the word's onset."""
    lo, hi = left.end, right.first
    if hi <= lo:
        return lo
    margin = (hi - lo) // 4
    lo, hi = lo + margin, hi - margin
    return lo + int(np.argmin(levels_db[lo:hi]))


def _to_slices(groups: list[list[_Unit]], levels_db: np.ndarray, pad: int, frame_len: int) -> list[Slice]:
    n_frames = len(levels_db)
    frame_pieces = [_pieces(g, pad, n_frames) for g in groups]
    # Neighbouring slices must not share audio: where the pause between them is short, both stop at its
    # quietest frame.
    for k in range(1, len(groups)):
        prev_last, next_first = groups[k - 1][-1], groups[k][0]
        a_end = frame_pieces[k - 1][-1][1]
        b_start = frame_pieces[k][0][0]
        if a_end > b_start:
            cut = _cut_between(prev_last, next_first, levels_db)
            frame_pieces[k - 1][-1] = (frame_pieces[k - 1][-1][0], cut)
            frame_pieces[k][0] = (cut, frame_pieces[k][0][1])
    return [
        Slice(tuple(Span(a * frame_len, b * frame_len) for a, b in pieces if b > a))
        for pieces in frame_pieces
    ]


def analyse(samples: np.ndarray, opts: SplitOptions) -> Analysis:
    """Frame levels and the adaptive threshold of a recording."""
    levels = frame_levels_db(samples, opts.frame_len)
    return Analysis(levels, recording_threshold_db(levels, opts), opts.frame_len)


def plan_from_analysis(analysis: Analysis, opts: SplitOptions) -> list[Slice]:
    """Slices for an analysed recording (see the module docstring for the rules)."""
    levels = analysis.levels_db
    regions = speech_regions(levels, analysis.threshold_db, opts)
    if not regions:
        return []
    pad = opts.pad_frames
    max_frames = int(opts.max_slice_s * TARGET_RATE / analysis.frame_len)
    units = _units(regions, levels, max_frames, pad)
    groups = _pack(units, max_frames, opts.min_fill, pad)
    return _to_slices(groups, levels, pad, analysis.frame_len)


def plan_part(levels_db: np.ndarray, start: int, threshold_db: float, opts: SplitOptions) -> list[Slice]:
    """Slices for a part of a recording that begins at sample ``start`` (a multiple of the frame length), from
    its own frame levels, planned with ``threshold_db``. Spans are on the recording's timeline and stay inside
    the part. Cutting a job's waiting slices again (:func:`plan_span`) and a live recording's closed stretches
    (``live.LiveSplitter``) both plan this way."""
    plan = plan_from_analysis(Analysis(levels_db, threshold_db, opts.frame_len), opts)
    return [Slice(tuple(Span(p.start + start, p.end + start) for p in s.pieces)) for s in plan]


def plan_span(samples: np.ndarray, start: int, end: int, threshold_db: float, opts: SplitOptions) -> list[Slice]:
    """Slices for the part ``[start, end)`` of a recording (in samples), planned with the whole recording's
    silence threshold: how a job's waiting slices are cut again when the connected workers take only shorter
    ones. Spans are on the recording's timeline and stay inside the part."""
    return plan_part(frame_levels_db(samples[start:end], opts.frame_len), start, threshold_db, opts)


def split_at_silence(samples: np.ndarray, opts: SplitOptions = SplitOptions()) -> list[Slice]:
    """Slices of a mono recording; an empty list when it holds no speech."""
    return plan_from_analysis(analyse(samples, opts), opts)


def split_for_parallelism(analysis: Analysis, opts: SplitOptions, idle_slots: int) -> list[Slice]:
    """Slices for a recording, cut finer so that they fill whole rounds of the idle workers' slots.

    The rule: a job lasts as long as its busiest worker, and a slice costs a fixed part (Whisper's 30 s
    window) plus a part that grows with its length. With ``idle_slots`` slots the normal plan of ``n`` slices
    takes ``rounds = ceil(n / idle_slots)`` rounds, the last one part-empty; cutting finer shortens every
    round and costs nothing as long as the number of rounds stays the same, i.e. while every extra slice finds
    a slot that would otherwise be idle. So the recording is packed again with the shortest maximum length
    that still gives no more than ``rounds * idle_slots`` slices (and not below ``2 * min_slice_s``), found by
    bisection. With more idle slots than slices that is one round: as many slices as slots. Cuts still fall in
    pauses, so the text is unchanged.
    """
    plan = plan_from_analysis(analysis, opts)
    if not plan or idle_slots <= 0:
        return plan
    target = -(-len(plan) // idle_slots) * idle_slots  # whole rounds
    if len(plan) == target:
        return plan
    lo, hi = 2 * opts.min_slice_s, max(s.length for s in plan) / TARGET_RATE
    best = plan
    for _ in range(12):
        if hi - lo < 0.25:
            break
        mid = (lo + hi) / 2
        candidate = plan_from_analysis(analysis, replace(opts, max_slice_s=mid))
        if len(candidate) <= target:
            best, hi = candidate, mid
        else:
            lo = mid
    return best
