"""Words Whisper invents from silence, found by where the alignment puts them.

Given a second or more of silence, Whisper often writes something nobody said ("Thank you.", "All right.",
"Thanks for watching"), and its alignment gives it away: the invented phrase starts with an improbable word
stretched across the silence, and the rest is squeezed where nothing sounds. Going through a slice's words in
order, a word is dropped when

* it is improbable (first token below ``max_probability``) and under ``min_loud_share`` of its frames are
  loud, or very improbable (below ``min_probability``) and under ``max_loud_share`` of them are, or
* no frame within ``margin_s`` of it is loud, and it is improbable, or follows a dropped word, or lies past
  the end of the audio (in the zeros Whisper pads a short slice with). A probable word squeezed into a quiet
  moment is kept: Whisper's alignment sometimes collapses a real last word that way.

Loud means above a threshold from the slice's own levels, set as the splitter sets the recording's (a quarter
of the way from the noise floor to the speech level, at least 4 dB above the floor). Pure numpy, on the
worker: the server's ``[splitter]`` settings need not be known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import SAMPLE_RATE, Segment, Word

FRAME_S = 0.02


@dataclass(frozen=True)
class SilenceOptions:
    #: A word with no loud frame this close to it is suspect.
    margin_s: float = 0.1
    #: An improbable word (first token below this) ...
    max_probability: float = 0.5
    #: ... with fewer loud frames than this share of its own came from silence;
    min_loud_share: float = 0.25
    #: a very improbable one (below this) ...
    min_probability: float = 0.05
    #: ... with fewer than this share, too.
    max_loud_share: float = 0.75


def loud_frames(audio: np.ndarray) -> np.ndarray:
    """One boolean per 20 ms frame of ``audio``: above the slice's silence threshold."""
    frame = int(SAMPLE_RATE * FRAME_S)
    n = len(audio) // frame
    if n == 0:
        return np.zeros(0, dtype=bool)
    power = np.mean(np.square(audio[: n * frame].astype(np.float64).reshape(n, frame)), axis=1)
    levels = 10 * np.log10(np.maximum(power, 1e-10))
    floor, speech = np.percentile(levels, 10), np.percentile(levels, 95)
    if speech - floor <= 6.0:  # no dynamics: steady noise, or speech throughout
        return levels > floor + 6.0 if speech - floor > 0 else np.zeros(n, dtype=bool)
    threshold = min(floor + max(4.0, 0.25 * (speech - floor)), speech - 6.0)
    return levels >= threshold


def invented(word: Word, loud: np.ndarray, after_invented: bool = False,
             opts: SilenceOptions = SilenceOptions()) -> bool:
    """Did this word come from silence? ``after_invented``: the word before it did. (See the module
    docstring.)"""
    def frames(a: float, b: float) -> np.ndarray:
        lo, hi = max(0, int(a / FRAME_S)), max(0, int(np.ceil(b / FRAME_S)))
        return loud[lo:hi]  # past the audio's end: padding, silence
    improbable = word.probability < opts.max_probability
    if not frames(word.start - opts.margin_s, word.end + opts.margin_s).any():
        return improbable or after_invented or word.start >= len(loud) * FRAME_S
    own = frames(word.start, max(word.end, word.start + FRAME_S))
    share = float(own.mean()) if len(own) else 0.0
    return (improbable and share < opts.min_loud_share) or \
        (word.probability < opts.min_probability and share < opts.max_loud_share)


def without_invented(segments: list[Segment], audio: np.ndarray,
                     opts: SilenceOptions = SilenceOptions()) -> list[Segment]:
    """``segments`` of ``audio`` without the words invented from silence; a segment left without words is
    dropped, one that lost some is trimmed to those it kept. Segments without word times stay as they are."""
    loud = loud_frames(audio)
    out, dropped = [], False
    for seg in segments:
        if not seg.words:
            out.append(seg)
            continue
        kept = []
        for w in seg.words:
            dropped = invented(w, loud, dropped, opts)
            if not dropped:
                kept.append(w)
        kept = tuple(kept)
        if len(kept) == len(seg.words):
            out.append(seg)
        elif kept:
            out.append(seg._replace(start=kept[0].start, end=kept[-1].end, text=" " + " ".join(w.word for w in kept),
                                    words=kept))
    return out
