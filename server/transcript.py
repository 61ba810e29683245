"""Putting slices back together: one pure step from stored slices to text, subtitles and JSON.

A worker times its segments from the start of the audio it heard; that audio is the slice's pieces played
back to back, so :func:`to_original_time` walks the pieces to find where a time falls in the recording.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from .store import JobRecord, SliceRecord


def to_original_time(t: float, pieces: Sequence[tuple[float, float]]) -> float:
    """A time in a slice's audio (pieces back to back) → seconds of the original recording."""
    if not pieces:
        return t
    t = max(0.0, t)
    for start, end in pieces:
        length = end - start
        if t <= length:
            return start + t
        t -= length
    return pieces[-1][1]  # past the end (a worker rounded up): clamp to the slice's last sample


def shift_segments(segments: Iterable[dict[str, Any]], pieces: Sequence[tuple[float, float]]) -> list[dict]:
    """Worker segments (times relative to the slice) → segments on the recording's timeline, text stripped,
    empty ones dropped, times never decreasing."""
    shifted = []
    last = pieces[0][0] if pieces else 0.0
    for seg in segments:
        text = str(seg.get("text", "")).strip()
        if not text:
            continue
        start = max(last, to_original_time(float(seg.get("start", 0.0)), pieces))
        end = max(start, to_original_time(float(seg.get("end", 0.0)), pieces))
        shifted.append({"start": round(start, 3), "end": round(end, 3), "text": text})
        last = start
    return shifted


def failure_marker(s: SliceRecord) -> str:
    return f"[{format_clock(s.start)}–{format_clock(s.end)} could not be transcribed: {s.error or 'failed'}]"


def join_text(slices: Iterable[SliceRecord]) -> str:
    """The transcript so far, in order: done slices' text; a visible marker where a slice failed, so a failure
    is never a silent gap; nothing for slices still out."""
    parts = []
    for s in sorted(slices, key=lambda s: s.index):
        if s.status == "done" and s.text.strip():
            parts.append(" ".join(s.text.split()))
        elif s.status == "failed":
            parts.append(failure_marker(s))
    return " ".join(parts)


def timed_segments(job: JobRecord) -> list[dict[str, Any]]:
    """Every segment of the job on the recording's timeline, in order, with the slice it came from."""
    out = []
    for s in sorted(job.slices, key=lambda s: s.index):
        if s.status == "done":
            out.extend({**seg, "slice": s.index} for seg in s.segments)
        elif s.status == "failed":
            out.append({"start": s.start, "end": s.end, "text": failure_marker(s), "slice": s.index})
    return out


def format_clock(seconds: float) -> str:
    """12.5 → '0:12.5'; 3725 → '1:02:05.0'."""
    minutes, secs = divmod(max(0.0, seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(job: JobRecord) -> str:
    cues = []
    for n, seg in enumerate(timed_segments(job), 1):
        cues.append(f"{n}\n{_stamp(seg['start'], ',')} --> {_stamp(seg['end'], ',')}\n{seg['text']}\n")
    return "\n".join(cues)


def to_vtt(job: JobRecord) -> str:
    cues = [f"{_stamp(seg['start'], '.')} --> {_stamp(seg['end'], '.')}\n{seg['text']}\n"
            for seg in timed_segments(job)]
    return "WEBVTT\n\n" + "\n".join(cues)


def to_txt(job: JobRecord) -> str:
    text = join_text(job.slices)
    return (text or job.note) + "\n"


def to_json(job: JobRecord, view: dict[str, Any]) -> str:
    """The job view with its timed segments; a live recording's tentative text is never part of a download."""
    final = {key: value for key, value in view.items() if key != "partial"}
    return json.dumps({**final, "segments": timed_segments(job)}, indent=2, ensure_ascii=False) + "\n"
