"""Corrections: a person fixes a segment's text; the fixed text is the text from then on, the worker's is kept.

The corrected text goes into the slice's ``segments`` and ``text`` themselves, so the API, the page, every
download and the search of past jobs use it with no further step; the worker's text is kept in the slice's
``edits`` (by segment number) until the correction is undone (``restore``), or the slice is transcribed again.

An edit names the text it was made on (``was``): if the segment no longer reads that (another page corrected it,
or the slice was transcribed again), the edit is refused with the text it now holds, rather than silently
overwriting someone else's work. :func:`parse` and :func:`apply` are pure; :func:`correct` runs them under the
coordinator's lock, which every writer of slices holds, so the check and the write are one step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import bodies
from .bodies import Refused
from .records import SliceRecord
from .states import SliceStatus

if TYPE_CHECKING:
    from .coordinator import Coordinator

#: Longest corrected text of one segment, in characters.
MAX_SEGMENT_CHARS = 2000
#: Longest request body a correction may have (it is one segment's text and a few words more).
MAX_BODY_BYTES = 64 * 1024
USAGE = ('send JSON {"text": "the corrected text", "was": "the text you corrected"}, or {"restore": true, '
         '"was": "the text it reads now"} to put back what the worker wrote')


@dataclass(frozen=True)
class Change:
    """What an edit asks: new ``text`` (None with ``restore``) for a segment that reads ``was`` now."""

    was: str
    text: str | None = None
    restore: bool = False


def clean(text: str) -> str:
    """One line of printable text, single-spaced: what a segment holds."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def parse(body: bytes | None) -> Change:
    """A request body (read by :func:`bodies.read`) → a :class:`Change`; :class:`Refused` (400) with a sentence
    for anything else."""
    data = bodies.json_object(body, USAGE)
    unknown = sorted(set(data) - {"text", "was", "restore"})
    if unknown:
        raise Refused(400, f"unknown field(s) {', '.join(map(repr, unknown))}: {USAGE}")
    was = data.get("was")
    if not isinstance(was, str):
        raise Refused(400, "say which text you corrected in 'was' (the segment as your page showed it), so "
                               "that an edit made on a stale page is refused instead of overwriting another")
    restore = data.get("restore", False)
    if not isinstance(restore, bool):
        raise Refused(400, "'restore' is true or false")
    text = data.get("text")
    if restore:
        if text is not None:
            raise Refused(400, "send either 'text' or 'restore', not both")
        return Change(was=was, restore=True)
    if not isinstance(text, str):
        raise Refused(400, f"'text' must be a string: {USAGE}")
    text = clean(text)
    if len(text) > MAX_SEGMENT_CHARS:
        raise Refused(400, f"the text is {len(text)} characters long; a segment holds at most "
                               f"{MAX_SEGMENT_CHARS}")
    return Change(was=was, text=text)


def apply(s: SliceRecord, number: int, change: Change, now: float) -> dict[str, Any]:
    """The columns to store for ``change`` to segment ``number`` of slice ``s``; :class:`Refused` when the
    slice has no such segment, is not transcribed, or the segment no longer reads ``change.was``."""
    if s.status != SliceStatus.DONE:
        state = {"queued": "waiting for a worker", "leased": "on a worker", "failed": "failed"}.get(s.status,
                                                                                                    s.status)
        raise Refused(409, f"slice {s.index} has no text to correct: it is {state}")
    if not 0 <= number < len(s.segments):
        raise Refused(404, f"slice {s.index} has no segment {number}: it has {len(s.segments)} "
                               f"(numbered from 0)")
    current = str(s.segments[number].get("text", ""))
    if clean(change.was) != clean(current):
        raise Refused(409, f"this segment changed since your page showed it: it now reads \"{current}\". "
                               "Your correction was not saved; look at the new text and correct it again if "
                               "it still needs it.", current=current)
    key = str(number)
    edits = {k: dict(v) for k, v in s.edits.items()}
    original = edits[key]["original"] if key in edits else current
    text = original if change.restore else change.text
    assert text is not None
    if text == original:
        edits.pop(key, None)
    else:
        edits[key] = {"original": original, "at": round(now, 3)}
    segments = [dict(seg) for seg in s.segments]
    segments[number]["text"] = text
    joined = " ".join(str(seg.get("text", "")) for seg in segments if str(seg.get("text", "")).strip())
    return {"segments": segments, "text": joined, "edits": edits}


def correct(coord: Coordinator, job_id: str, index: int, number: int, change: Change) -> dict[str, Any]:
    """Make ``change`` to a job's segment, store it and tell the job's pages; returns what the segment now
    holds. One step under the coordinator's lock, so two pages saving at once cannot both win."""
    with coord.lock:
        job = coord.store.get_job(job_id)
        if job is None:
            raise Refused(404, f"no job {job_id!r}")
        s = next((s for s in job.slices if s.index == index), None)
        if s is None:
            raise Refused(404, f"job {job_id} has no slice {index}: it has {len(job.slices)} (numbered from 0)")
        values = apply(s, number, change, time.time())
        coord.store.update_slice(job_id, index, **values)
        coord.job_changed(job_id)
        edit = values["edits"].get(str(number))
        return {"slice": index, "segment": number, "text": values["segments"][number]["text"],
                "edited": edit is not None, "original": edit["original"] if edit else None}


#: Longest name a job may be given.
MAX_NAME_CHARS = 120


def parse_name(body: bytes | None) -> str:
    """A rename's body, ``{"name": "..."}`` → the new name (printable, trimmed); :class:`Refused` (400)
    otherwise. The name is only ever shown (and put in download file names, cleaned), never used as a path."""
    usage = 'send JSON {"name": "the new name"}'
    data = bodies.json_object(body, usage)
    if set(data) != {"name"} or not isinstance(data["name"], str):
        raise Refused(400, f"the body must hold a 'name' string and nothing else: {usage}")
    name = clean(data["name"])
    if not name:
        raise Refused(400, "the name is empty: give the job a name with at least one visible character")
    if len(name) > MAX_NAME_CHARS:
        raise Refused(400, f"the name is {len(name)} characters long; at most {MAX_NAME_CHARS}")
    return name


def rename(coord: Coordinator, job_id: str, name: str) -> None:
    """Give a job a new name and tell the pages; :class:`Refused` (404) when there is no such job."""
    with coord.lock:
        if coord.store.get_job(job_id) is None:
            raise Refused(404, f"no job {job_id!r}")
        coord.store.update_job(job_id, name=name)
        coord.job_changed(job_id)
