"""What a worker hears for a slice: the slice's own pieces, with guard bands of the neighbouring audio around them.

A slice is a few seconds to 28 s, but Whisper always decodes a 30 s window. A slice heard alone loses what was
said just before and after it: a word cut from its sentence is guessed from its sound alone ("resonant
frequencies" became "president frequencies"), and the silence at its edges invites invented text. So the
worker is sent the slice with up to ``guard_s`` of the neighbouring speech on each side, within the window,
and told where the slice's own audio lies in what it hears (``Heard.span``); the server keeps only the words
aligned inside that span (``stitch``).

Guard bands are taken from the neighbouring slices' pieces, not from the raw recording: long pauses are left
out there too, so every second of a guard band is mostly speech. All times here are seconds of the recording,
except ``Heard.span``, which is in seconds of the audio the worker hears (the pieces back to back). Pure: no
audio is read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

Piece = tuple[float, float]


@dataclass(frozen=True)
class GuardOptions:
    """How much neighbouring audio a worker hears around a slice."""

    #: Context audio before and after a slice, at most, each side (0 turns guard bands off).
    guard_s: float = 6.0
    #: What the worker hears in all stays within this (Whisper's window is 30 s; a margin for the padding).
    window_s: float = 29.5
    #: A side left less than this (or than ``guard_s``, if that is less) gets no guard band. A band squeezed
    #: into the little room a long slice leaves gives too little context to help, and it can hurt: the
    #: decoder may skip it, the alignment then dragging the slice's first word back over it, out of the slice;
    #: or it changes the slice's words. A higher floor drops useful bands where slices are 17-20 s. The
    #: measurements are in the commit that set it and in bench/results (the width and slicing parts).
    min_guard_s: float = 4.0

    def __post_init__(self) -> None:
        if self.guard_s < 0 or self.window_s <= 0:
            raise ValueError("guard_s must be at least 0 and window_s above 0")


class Heard(NamedTuple):
    """What a worker is sent for a slice: ``pieces`` of the recording played back to back, and ``span``, where
    the slice's own pieces lie in that audio (start, end) in seconds."""

    pieces: tuple[Piece, ...]
    span: tuple[float, float]


def length(pieces: Sequence[Piece]) -> float:
    return sum(b - a for a, b in pieces)


def _merged(pieces: Sequence[Piece]) -> tuple[Piece, ...]:
    """Pieces with touching neighbours joined (a short pause between two slices is cut on one frame that both
    share), so the worker's times map back through as few pieces as possible."""
    out: list[list[float]] = []
    for a, b in pieces:
        if b <= a:
            continue
        if out and abs(out[-1][1] - a) < 1e-9:
            out[-1][1] = b
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


def _tail(pieces: Sequence[Piece], seconds: float) -> list[Piece]:
    """The last ``seconds`` of audio of ``pieces`` (played back to back)."""
    out: list[Piece] = []
    for a, b in reversed(pieces):
        if seconds <= 1e-9:
            break
        take = min(b - a, seconds)
        out.append((b - take, b))
        seconds -= take
    return out[::-1]


def _head(pieces: Sequence[Piece], seconds: float) -> list[Piece]:
    """The first ``seconds`` of audio of ``pieces``."""
    out: list[Piece] = []
    for a, b in pieces:
        if seconds <= 1e-9:
            break
        take = min(b - a, seconds)
        out.append((a, a + take))
        seconds -= take
    return out


def heard(slices: Sequence[Sequence[Piece]], index: int, opts: GuardOptions) -> Heard:
    """What the worker hears for slice ``index`` of a job whose slices (in recording order) are ``slices``: its
    own pieces, after up to ``guard_s`` of the slices before it and before up to ``guard_s`` of those after it,
    never more than ``window_s`` in all. When the room is short, each side gets half of it; a side with less
    audio available (the first or last slice) leaves the rest to the other; a side left less than
    ``min_guard_s`` (or ``guard_s``, if less; and less than all its neighbours' audio) gets none."""
    own = list(slices[index])
    before_all = [p for s in slices[:index] for p in s]
    after_all = [p for s in slices[index + 1:] for p in s]
    room = max(0.0, opts.window_s - length(own))
    want_before = min(opts.guard_s, length(before_all))
    want_after = min(opts.guard_s, length(after_all))
    if want_before + want_after > room:
        half = room / 2
        if want_before < half:
            want_after = room - want_before
        elif want_after < half:
            want_before = room - want_after
        else:
            want_before = want_after = half
    least = min(opts.min_guard_s, opts.guard_s)
    want_before = want_before if want_before >= min(least, length(before_all)) - 1e-9 else 0.0
    want_after = want_after if want_after >= min(least, length(after_all)) - 1e-9 else 0.0
    before, after = _tail(before_all, want_before), _head(after_all, want_after)
    start = length(before)
    return Heard(_merged(before + own + after), (round(start, 6), round(start + length(own), 6)))
