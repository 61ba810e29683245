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
    ``start`` and ``end`` (seconds of the recording), ``text``, and optionally ``speaker``."""
    starts: list[int] = []
    para_start = 0.0
    for i, item in enumerate(items):
        if i == 0:
            starts.append(0)
            para_start = float(item["start"])
            continue
        before = items[i - 1]
        pause = float(item["start"]) - float(before["end"])
        speaker, previous_speaker = item.get("speaker"), before.get("speaker")
        ran = float(item["start"]) - para_start
        sentence_ended = str(before.get("text", "")).rstrip().endswith(SENTENCE_END)
        if (pause >= opts.pause_s or (speaker is not None and previous_speaker is not None
                                      and speaker != previous_speaker)
                or ran >= opts.max_s or (ran >= opts.soft_max_s and sentence_ended)):
            starts.append(i)
            para_start = float(item["start"])
    return starts


def group(items: Sequence[dict[str, Any]], opts: ParagraphOptions = ParagraphOptions()) -> list[list[int]]:
    """``items`` cut into paragraphs: lists of positions in ``items``, in order, together covering every item
    once."""
    starts = breaks(items, opts)
    ends = starts[1:] + [len(items)] if starts else []
    return [list(range(a, b)) for a, b in zip(starts, ends, strict=True)]
