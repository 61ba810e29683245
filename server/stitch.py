"""Which of the words a worker heard belong to its slice: pure, on the recording's timeline.

A worker hears a slice with guard bands of the neighbouring speech (``guard``), so it returns words from its
neighbours' time too, and near a cut both neighbours may hear the same word. Each word must end up in the
transcript once. The rule:

* Between two neighbouring slices the **cut** is the middle of the gap between the end of the one's own
  audio and the start of the next's (the splitter cuts in pauses, so no word should straddle it). A slice's
  **region** runs from the cut before it to the cut after it; a word belongs where its middle lies.
* Whisper's alignment can be a few hundred milliseconds off, so two slices may place the same word on
  different sides of a cut (it would be lost, or doubled). Whichever of the two slices is settled second looks
  at the other's words within ``near_s`` of the cut: a word both heard (same text once normalised, in the same
  order, see :func:`_pairs`) is kept by the second only if the first did not keep its copy. A word only one of
  them heard is kept by its region alone. So the first settles by its region and the second completes the cut,
  and neither is ever rewritten afterwards.

Words are ``{"start", "end", "word", "probability"}`` dicts (the Words contract); a slice's ``heard`` words are
all the words its worker returned, guard bands included; its ``kept`` words are those in its segments.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Sequence

from .states import SliceStatus

Word = dict[str, Any]

SENTENCE_END = (".", "?", "!")


@dataclass(frozen=True)
class Neighbour:
    """A slice next to the one being settled, as far as it is done: its ``heard`` words, the ``kept`` ones
    (a subset of ``heard``) and its ``region``; ``heard`` is None when it is not done (or failed): the region
    rule alone decides."""

    heard: Sequence[Word] | None = None
    kept: Sequence[Word] | None = None
    region: tuple[float, float] = (float("-inf"), float("inf"))


def midpoint(word: Word) -> float:
    return (float(word["start"]) + float(word["end"])) / 2


def cut_between(left_end: float, right_start: float) -> float:
    """The cut between a slice whose own audio ends at ``left_end`` and the next, which starts at
    ``right_start`` (the same instant when the pause between them was short)."""
    return (left_end + right_start) / 2


def _norm(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


def _key(word: Word) -> tuple[float, str]:
    """Which heard word a kept one is: its end and its text, normalised (a kept word's start may have been
    moved to keep times in order, and its first letter capitalised at a join)."""
    return (round(float(word["end"]), 3), _norm(str(word["word"])))


def _pairs(mine: Sequence[Word], theirs: Sequence[Word]) -> list[tuple[int, int]]:
    """Index pairs of the words two slices both heard: the longest common runs of equal normalised words, in
    order (``difflib``), each pair within 1 s of each other."""
    matcher = difflib.SequenceMatcher(a=[_norm(w["word"]) for w in mine], b=[_norm(w["word"]) for w in theirs],
                                      autojunk=False)
    pairs = []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            i, j = block.a + k, block.b + k
            if abs(midpoint(mine[i]) - midpoint(theirs[j])) <= 1.0:
                pairs.append((i, j))
    return pairs


def _settle_cut(words: list[Word], keep: list[bool], cut: float, mine: tuple[float, float], other: Neighbour,
                near_s: float) -> None:
    """Correct ``keep`` (the region rule's verdicts on ``words``) at one cut against a done neighbour: a word
    the neighbour heard too, and which belongs to one of the two (its middle, averaged over both copies, lies
    in the two regions together), is kept only if the neighbour did not keep its copy. A word of a slice
    further away (heard in a guard band past a short neighbour) is left to the region rule."""
    if other.heard is None:
        return
    lo, hi = min(mine[0], other.region[0]), max(mine[1], other.region[1])
    near = [k for k, w in enumerate(words) if abs(midpoint(w) - cut) <= near_s]
    theirs = [w for w in other.heard if abs(midpoint(w) - cut) <= near_s]
    kept_by_them = {_key(w) for w in other.kept or ()}
    for i, j in _pairs([words[k] for k in near], theirs):
        if lo <= (midpoint(words[near[i]]) + midpoint(theirs[j])) / 2 < hi:
            keep[near[i]] = _key(theirs[j]) not in kept_by_them


def keep_words(heard: Sequence[Word], region: tuple[float, float], before: Neighbour = Neighbour(),
               after: Neighbour = Neighbour(), near_s: float = 1.5) -> list[Word]:
    """The words a slice keeps of those it ``heard``: those whose middle lies in its ``region`` (cut before,
    cut after), corrected at each cut against a done neighbour (see the module docstring), in the order heard,
    starts never decreasing."""
    words = list(heard)  # in the order the decoder said them
    lo, hi = region
    keep = [lo <= midpoint(w) < hi for w in words]
    _settle_cut(words, keep, lo, region, before, near_s)
    _settle_cut(words, keep, hi, region, after, near_s)
    kept = [dict(w) for w, k in zip(words, keep, strict=True) if k]
    # Starts never go backwards, across a cut either: not before the last word the slice before kept, not
    # after the first word the slice after kept.
    floor = max((float(w["start"]) for w in before.kept or ()), default=float("-inf"))
    ceiling = min((float(w["start"]) for w in after.kept or ()), default=float("inf"))
    for w in kept:
        w["start"] = min(max(float(w["start"]), floor), max(floor, ceiling))
        w["end"] = max(float(w["end"]), w["start"])
        floor = w["start"]
    return kept


def _segment(words: list[Word]) -> dict[str, Any]:
    """A stored segment (the Words contract) from kept words of one worker segment."""
    return {"start": round(float(words[0]["start"]), 3), "end": round(float(words[-1]["end"]), 3),
            "text": " ".join(str(w["word"]) for w in words),
            "words": [{"start": round(float(w["start"]), 3), "end": round(float(w["end"]), 3),
                       "word": str(w["word"]), "probability": w["probability"]} for w in words],
            "avg_logprob": words[0].get("lp")}


# --- one slice's result, among its neighbours ---------------------------------------------------------------


@dataclass(frozen=True)
class Settled:
    """What is stored for a slice once its result is settled: its text and segments (its kept words), and
    every word it heard (for the neighbour settled after it)."""

    text: str
    segments: list[dict[str, Any]]
    heard: list[Word]


def region(slices: Sequence[Any], k: int) -> tuple[float, float]:
    """The part of the recording ``slices[k]`` answers for: from the cut with the slice before it to the cut
    with the slice after it (open-ended where there is none: the recording's ends, or a live recording's slice
    not closed yet). ``slices``: consecutive slices in order (anything with ``start`` and ``end``)."""
    lo = cut_between(slices[k - 1].end, slices[k].start) if k > 0 else float("-inf")
    hi = cut_between(slices[k].end, slices[k + 1].start) if k + 1 < len(slices) else float("inf")
    return lo, hi


def _neighbour(slices: Sequence[Any], k: int) -> Neighbour:
    """``slices[k]`` as a neighbour (its far cut is known: the window reaches two past the slice settled)."""
    if not 0 <= k < len(slices) or slices[k].status != SliceStatus.DONE or not slices[k].heard:
        return Neighbour()
    lo, hi = region(slices, k)
    return Neighbour(slices[k].heard, [w for seg in slices[k].segments for w in seg.get("words") or ()], (lo, hi))


def settle(slices: Sequence[Any], k: int, segments: list[dict[str, Any]]) -> Settled:
    """The result of ``slices[k]`` (its worker's ``segments``, already on the recording's timeline, guard bands
    included) settled among its neighbours: ``slices`` are consecutive store records in order, reaching two
    past it on each side where the job has them. The words of its region, corrected at each cut against a
    neighbour already done. A result with a segment without words (an engine
    without word times) cannot be stitched: its segments whose middle lies in the region are kept whole."""
    lo, hi = region(slices, k)
    if any(not seg.get("words") for seg in segments):
        kept = [seg for seg in segments if lo <= (seg["start"] + seg["end"]) / 2 < hi]
        return Settled(" ".join(seg["text"] for seg in kept), kept, [])
    heard = [{**w, "seg": n, "lp": seg.get("avg_logprob")} for n, seg in enumerate(segments) for w in seg["words"]]
    before = _neighbour(slices, k - 1)
    kept = keep_words(heard, (lo, hi), before, _neighbour(slices, k + 1))
    said_before = before.kept if before.heard is not None else [w for w in heard if midpoint(w) < lo]
    kept = clean_start(kept, said_before[-1]["word"] if said_before else None)
    settled = [_segment(group) for group in _by_segment(kept)]
    return Settled(" ".join(seg["text"] for seg in settled), settled, heard)


def clean_start(words: list[Word], previous: str | None) -> list[Word]:
    """A slice's kept words made to join the text before them cleanly: no leading word that is only
    punctuation (the slice before ends the sentence itself), and a capital after a sentence end (a slice cut
    mid-text starts in lower case). ``previous``: the last word said before
    this slice (its neighbour's last kept word, else the last word its own guard band heard), None if
    unknown."""
    words = list(words)
    while words and not re.search(r"\w", str(words[0]["word"])):
        words.pop(0)
    if words and previous is not None and previous.rstrip("\"')”’").endswith(SENTENCE_END):
        text = str(words[0]["word"])
        at = re.search(r"[^\W\d_]", text)
        if at is not None and text[at.start()].islower():
            words[0] = {**words[0], "word": text[:at.start()] + text[at.start()].upper() + text[at.start() + 1:]}
    return words


def _by_segment(words: list[Word]) -> list[list[Word]]:
    """Kept words in runs from one of the worker's segments: each run becomes a stored segment, so the worker's
    segmentation (sentences, for the Whisper engines) is kept."""
    groups: list[list[Word]] = []
    for w in words:
        if groups and groups[-1][-1].get("seg") == w.get("seg"):
            groups[-1].append(w)
        else:
            groups.append([w])
    return groups
