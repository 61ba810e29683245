"""Where a transcript's paragraphs break: one pure rule shared by the page's job view and the ``.txt`` download.

A transcript is a list of timed items in recording order (segments, a failed slice's marker, a slice still
out). A new paragraph starts before an item when the speaker changes (once speakers are known), after a pause
of :attr:`ParagraphOptions.pause_s` or more, or once the paragraph has run for about a minute: from
``soft_max_s`` on it breaks after the first sentence end, and at ``max_s`` it breaks whatever the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

SENTENCE_END = (".", "?", "!", "…", '."', '?"', '!"')


@dataclass(frozen=True)
class ParagraphOptions:
    """When a paragraph ends."""

    pause_s: float = 1.5  # silence between two items that starts a new paragraph
    soft_max_s: float = 45.0  # a paragraph this long ends at the next sentence end
    max_s: float = 75.0  # ... and one this long ends before the next item, sentence end or not


def breaks(items: Sequence[dict[str, Any]], opts: ParagraphOptions = ParagraphOptions()) -> list[int]:
    """Positions in ``items`` where a paragraph starts (always 0 for a non-empty list). Each item has
    ``start`` and ``end`` (seconds of the recording), ``text``, and optionally ``speaker``. An item without a
    speaker (a slice whose worker sent no voices, one not labelled yet) neither breaks a paragraph nor carries
    it on: the next labelled item is compared with the paragraph's last known speaker, so [A, None, B] breaks
    before B."""
    starts: list[int] = []
    para_start = 0.0
    speaker_so_far = None  # the paragraph's last known speaker
    for i, item in enumerate(items):
        speaker = item.get("speaker")
        if i == 0:
            starts.append(0)
            para_start, speaker_so_far = float(item["start"]), speaker
            continue
        before = items[i - 1]
        pause = float(item["start"]) - float(before["end"])
        ran = float(item["start"]) - para_start
        sentence_ended = str(before.get("text", "")).rstrip().endswith(SENTENCE_END)
        if (pause >= opts.pause_s or (speaker is not None and speaker_so_far is not None
                                      and speaker != speaker_so_far)
                or ran >= opts.max_s or (ran >= opts.soft_max_s and sentence_ended)):
            starts.append(i)
            para_start, speaker_so_far = float(item["start"]), None
        if speaker is not None:
            speaker_so_far = speaker
    return starts


def first_speaker(items: Sequence[dict[str, Any]], para: Sequence[int]) -> dict[str, Any] | None:
    """The first item of paragraph ``para`` (positions in ``items``) that has a speaker, or None: whose
    paragraph it is (every labelled item of a paragraph has the same speaker, see :func:`breaks`)."""
    return next((items[i] for i in para if items[i].get("speaker") is not None), None)


def group(items: Sequence[dict[str, Any]], opts: ParagraphOptions = ParagraphOptions()) -> list[list[int]]:
    """``items`` cut into paragraphs: lists of positions in ``items``, in order, together covering every item
    once."""
    starts = breaks(items, opts)
    ends = starts[1:] + [len(items)] if starts else []
    return [list(range(a, b)) for a, b in zip(starts, ends, strict=True)]
