"""Putting slices back together: one pure step from stored slices to text, subtitles and JSON.

A worker times its segments from the start of the audio it heard; that audio is the slice's pieces played
back to back, so :func:`to_original_time` walks the pieces to find where a time falls in the recording.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from . import paragraphs, speakers, strict_json, subtitles
from .records import JobRecord, SliceRecord
from .states import SliceStatus


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
    empty ones dropped, times never decreasing. Each keeps its ``words`` (mapped the same way, see
    :func:`shift_words`) and its ``avg_logprob`` (a finite number, else None)."""
    shifted = []
    last = pieces[0][0] if pieces else 0.0
    for seg in segments:
        text = str(seg.get("text", "")).strip()
        if not text:
            continue
        start = max(last, to_original_time(float(seg.get("start", 0.0)), pieces))
        end = max(start, to_original_time(float(seg.get("end", 0.0)), pieces))
        words = shift_words(seg.get("words"), pieces, start)
        shifted.append({"start": round(start, 3), "end": round(end, 3), "text": text, "words": words,
                        "avg_logprob": _finite(seg.get("avg_logprob"))})
        last = start
    return shifted


def shift_words(words: Any, pieces: Sequence[tuple[float, float]], not_before: float = 0.0) -> list[dict]:
    """A segment's words (times relative to the slice) → ``{"start", "end", "word", "probability"}`` on the
    recording's timeline: starts never decreasing and never before ``not_before``, each end at or after its
    start, the word stripped, the probability clamped to [0, 1]. A word that is not well formed (not an object,
    no text, a time that is not a finite number) is left out; anything but a list is no words."""
    out: list[dict] = []
    if not isinstance(words, list):
        return out
    last = not_before
    for word in words:
        if not isinstance(word, dict):
            continue
        text = word.get("word")
        start, end = _finite(word.get("start")), _finite(word.get("end"))
        if not isinstance(text, str) or not text.strip() or start is None or end is None:
            continue
        first = max(last, to_original_time(start, pieces))
        probability = _finite(word.get("probability"))
        out.append({"start": round(first, 3), "end": round(max(first, to_original_time(end, pieces)), 3),
                    "word": text.strip(), "probability": min(1.0, max(0.0, probability or 0.0))})
        last = first
    return out


def _finite(value: Any) -> float | None:
    """A finite float, or None for anything else (JSON has no NaN or infinity; a bool is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def failure_marker(s: SliceRecord) -> str:
    return f"[{format_clock(s.start)}–{format_clock(s.end)} could not be transcribed: {s.error or 'failed'}]"


def join_text(slices: Iterable[SliceRecord]) -> str:
    """The transcript so far, in order: the text of slices transcribed (a slice being transcribed again keeps
    its last text until the new one comes); a visible marker where a slice failed, so a failure is never a
    silent gap; nothing for slices still out."""
    parts = []
    for s in sorted(slices, key=lambda s: s.index):
        if s.transcribed and s.text.strip():
            parts.append(" ".join(s.text.split()))
        elif s.status == SliceStatus.FAILED:
            parts.append(failure_marker(s))
    return " ".join(parts)


def timed_segments(job: JobRecord) -> list[dict[str, Any]]:
    """Every segment of the job on the recording's timeline, in order, with the slice it came from; a corrected
    one says so and keeps its original text (``edited``, ``original``); a failed slice is one item marked
    ``failed``; a done slice whose worker sent text without times is one item spanning the slice; a slice being
    transcribed again gives its last text until the new one comes. Each item and each of its words has a
    ``speaker`` (the name; None where the job has no speaker labels)."""
    out = []
    for s in sorted(job.slices, key=lambda s: s.index):
        if s.transcribed:
            if not s.segments and s.text.strip():
                out.append({"start": s.start, "end": s.end, "text": s.text, "slice": s.index, "words": [],
                            "avg_logprob": None})
            for n, seg in enumerate(s.segments):
                # Segments stored before words were kept lack them: every segment has the contract's shape.
                item = {"words": [], "avg_logprob": None, **seg, "slice": s.index}
                edit = s.edits.get(str(n))
                if edit is not None:
                    item.update(edited=True, original=edit["original"])
                out.append(item)
        elif s.status == SliceStatus.FAILED:
            out.append({"start": s.start, "end": s.end, "text": failure_marker(s), "slice": s.index,
                        "failed": True, "span": f"{format_clock(s.start)}–{format_clock(s.end)}",
                        "error": s.error or "failed", "words": [], "avg_logprob": None})
    return speakers.labelled_items(out, job.speakers)


def format_clock(seconds: float) -> str:
    """12.5 → '0:12.5'; 3725 → '1:02:05.0'."""
    minutes, secs = divmod(max(0.0, seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"


def _spoken(job: JobRecord) -> list[dict[str, Any]]:
    """The timed items that hold text (a segment corrected to nothing is left out)."""
    return [item for item in timed_segments(job) if str(item.get("text", "")).strip()]


def to_srt(job: JobRecord) -> str:
    return subtitles.to_srt(subtitles.cues(_spoken(job), duration_s=job.duration, name_changes=True))


def to_vtt(job: JobRecord) -> str:
    return subtitles.to_vtt(subtitles.cues(_spoken(job), duration_s=job.duration))


def to_txt(job: JobRecord, timestamps: bool = False) -> str:
    """The transcript in paragraphs (``paragraphs``), a blank line between them, each starting with its
    speaker's name when the job has speaker labels; with ``timestamps`` each starts with its time, e.g.
    ``[1:02.5]``. A job without text gives its note ("no speech found")."""
    items = _spoken(job)
    out = []
    for para in paragraphs.group(items):
        text = " ".join(" ".join(str(items[i]["text"]).split()) for i in para)
        who = paragraphs.first_speaker(items, para)  # paragraphs break where the speaker changes: one name each
        if who is not None:
            text = f"{who['speaker']}: {text}"
        out.append(f"[{format_clock(items[para[0]]['start'])}] {text}" if timestamps else text)
    return ("\n\n".join(out) or job.note) + "\n"


def _used(values: Iterable[str]) -> str:
    """Distinct non-empty values in order of first use, joined: "faster-whisper" or "faster-whisper, sphinx"."""
    return ", ".join(dict.fromkeys(v for v in values if v))


def to_json(job: JobRecord, view: dict[str, Any]) -> str:
    """The job view plus every timed segment. ``engine`` and ``model`` say what produced the text (the job's
    slices); what the job asked workers for is under ``requested``. A live recording's tentative text
    (``partial``) is never part of a download."""
    done = [s for s in job.slices if s.transcribed]
    used = {"engine": _used(s.engine for s in done) or job.engine, "model": _used(s.model for s in done) or job.model,
            "requested": {"engine": job.engine, "model": job.model}}
    final = {key: value for key, value in view.items() if key != "partial"}
    return strict_json.dumps({**final, **used, "segments": timed_segments(job)}, indent=2, ensure_ascii=False) + "\n"
