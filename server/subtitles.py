"""Subtitles people can read: a transcript's timed segments cut into cues, wrapped into lines, and timed.

Pure: segments in, :class:`Cue` objects and ``.srt``/``.vtt`` text out. The rules (:class:`CueOptions`) are the
common broadcast ones: at most 2 lines of at most 42 characters, at most 7 s on screen, at least 1 s unless the
next cue starts sooner, and no faster than 20 characters a second to read where the pause after the words
leaves room for it. Cues are cut at word times, at a sentence end where one falls in reach, else at a clause
end, else at a pause between words; a long pause always ends a cue, so no cue stays up over silence.

Words come from each segment's ``words`` (the engine's word times), matched to the words of its text
(:func:`token_times`: Whisper may time "self-government" as "self" and "-government"). A segment without them,
or whose text no longer matches them (a correction that added or removed words), has its time shared out over
its words by their length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple, Sequence

SENTENCE_END = (".", "?", "!", "…")
CLAUSE_END = (",", ";", ":", "—", "–")
_CLOSERS = "\"')]»”’"


@dataclass(frozen=True)
class CueOptions:
    """What a cue may hold and how long it stays up."""

    max_line_chars: int = 42
    max_lines: int = 2
    max_cue_s: float = 7.0
    min_cue_s: float = 1.0  # unless the next cue starts sooner
    max_chars_per_s: float = 20.0  # reading speed, met by staying up longer where the next cue leaves room
    hard_pause_s: float = 1.5  # a pause between words this long always ends the cue
    soft_pause_s: float = 0.3  # a pause this long is a fair place to cut when no punctuation is in reach


class Word(NamedTuple):
    start: float
    end: float
    text: str
    speaker: Any = None


class Cue(NamedTuple):
    start: float
    end: float
    lines: tuple[str, ...]
    speaker: Any = None  # the speaker's name, where the transcript has speaker labels

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def _ends_with(token: str, marks: tuple[str, ...]) -> bool:
    return token.rstrip(_CLOSERS).endswith(marks)


def _chunks(token: str, size: int) -> list[str]:
    """A token longer than a line (a URL) cut into line-sized pieces; anything else as it is."""
    return [token[i:i + size] for i in range(0, len(token), size)] if len(token) > size else [token]


def token_times(tokens: Sequence[str], words: Sequence[dict[str, Any]]) -> list[tuple[float, float]] | None:
    """The (start, end) of each of a text's words (``tokens``) from the engine's timed ``words``: several timed
    words make one token when together they spell it ("self" + "-government"); when they spell something else,
    one timed word per token if the counts agree (a correction that fixed a word's spelling), else None."""
    out: list[tuple[float, float]] = []
    k = 0
    for token in tokens:
        first, joined = k, ""
        while k < len(words) and len(joined) < len(token):
            joined += str(words[k].get("word", "")).strip()
            k += 1
        if joined != token:
            break
        out.append((float(words[first]["start"]), float(words[k - 1]["end"])))
    else:
        if k == len(words):
            return out
    if len(words) == len(tokens):
        return [(float(w["start"]), float(w["end"])) for w in words]
    return None


def segment_words(segment: dict[str, Any], opts: CueOptions = CueOptions()) -> list[Word]:
    """A segment's words with times inside the segment, never going backwards."""
    start = float(segment.get("start", 0.0))
    end = max(start, float(segment.get("end", start)))
    tokens = str(segment.get("text", "")).split()
    speaker = segment.get("speaker")
    timed = [w for w in (segment.get("words") or []) if isinstance(w, dict) and "start" in w and "end" in w]
    times = token_times(tokens, timed) if timed else None
    words: list[Word] = []
    if times is not None:
        own = {float(w["start"]): w.get("speaker", speaker) for w in timed}  # a word may have its own speaker
        for token, (a, b) in zip(tokens, times, strict=True):
            who = own.get(a, speaker)
            a = min(max(a, start), end)
            b = min(max(b, a), end)
            words.append(Word(a, b, token, who))
    else:  # share the segment's time out by length (a space counts as one character)
        total = sum(len(t) + 1 for t in tokens) or 1
        t = start
        for token in tokens:
            step = (end - start) * (len(token) + 1) / total
            words.append(Word(t, t + step, token, speaker))
            t += step
    out: list[Word] = []
    last = start
    for w in words:
        pieces = _chunks(w.text, opts.max_line_chars)
        a, b = max(w.start, last), max(w.end, last)
        step = (b - a) / len(pieces)
        for n, piece in enumerate(pieces):
            out.append(Word(a + n * step, a + (n + 1) * step, piece, w.speaker))
        last = a
    return out


def wrap(tokens: Sequence[str], opts: CueOptions = CueOptions()) -> tuple[str, ...] | None:
    """The tokens as at most ``max_lines`` (2) lines of at most ``max_line_chars``; None when they do not fit.
    One line when it fits; two lines break after punctuation where that keeps them near balanced, else in the
    middle."""
    text = " ".join(tokens)
    if len(text) <= opts.max_line_chars:
        return (text,) if text else None
    if opts.max_lines < 2:
        return None
    best: tuple[float, tuple[str, str]] | None = None
    for p in range(1, len(tokens)):
        first, second = " ".join(tokens[:p]), " ".join(tokens[p:])
        if len(first) > opts.max_line_chars or len(second) > opts.max_line_chars:
            continue
        score = abs(len(first) - len(second))
        if _ends_with(tokens[p - 1], SENTENCE_END + CLAUSE_END):
            score -= 20
        if best is None or score < best[0]:
            best = (score, (first, second))
    return None if best is None else best[1]


def _cut_after(words: Sequence[Word], i: int, j: int, opts: CueOptions) -> int:
    """Where the cue that starts at ``words[i]`` ends, given that ``words[i..j]`` is the most that fits and more
    words follow: the last sentence end in reach, else the last clause end, else the last pause, else ``j``;
    a place that would leave a cue shorter than ``min_cue_s`` only when nothing else is in reach."""
    def rank(k: int) -> int:
        token = words[k].text
        if _ends_with(token, SENTENCE_END):
            return 3
        if _ends_with(token, CLAUSE_END):
            return 2
        return 1 if words[k + 1].start - words[k].end >= opts.soft_pause_s else 0

    long_enough = [k for k in range(i, j + 1) if words[k].end - words[i].start >= opts.min_cue_s]
    candidates = long_enough or list(range(i, j + 1))
    return max(candidates, key=lambda k: (rank(k), k))


def _runs(words: Sequence[Word], opts: CueOptions) -> Iterable[Sequence[Word]]:
    """The words split where a cue must end: a long pause, or a change of speaker."""
    first = 0
    for k in range(1, len(words) + 1):
        if k == len(words) or words[k].start - words[k - 1].end >= opts.hard_pause_s \
                or words[k].speaker != words[k - 1].speaker:
            yield words[first:k]
            first = k


def name_label(name: str, opts: CueOptions = CueOptions()) -> str:
    """``name`` as a cue's opening label ("Alice:"), cut with an ellipsis to fit on one line: a speaker's name
    may be up to 60 characters, a line only 42."""
    label = f"{name}:"
    if len(label) <= opts.max_line_chars:
        return label
    return name[:max(1, opts.max_line_chars - 2)].rstrip() + "…:"


def _cues_of(words: Sequence[Word], opts: CueOptions, name: str | None = None) -> list[Cue]:
    """Cues for words that may run together (no hard break among them), before timing; ``name``, when given,
    opens the first cue ("Alice:", shortened to fit a line), counted in its lines."""
    cues = []
    i = 0
    while i < len(words):
        label = [name_label(name, opts)] if name and i == 0 else []
        j = i
        while j + 1 < len(words) and words[j + 1].end - words[i].start <= opts.max_cue_s and \
                wrap(label + [w.text for w in words[i:j + 2]], opts) is not None:
            j += 1
        cut = j if j == len(words) - 1 else _cut_after(words, i, j, opts)
        lines = wrap(label + [w.text for w in words[i:cut + 1]], opts) or tuple(label) + (words[i].text,)
        cues.append(Cue(words[i].start, words[cut].end, lines, words[i].speaker))
        i = cut + 1
    return cues


def failure_cue(item: dict[str, Any], opts: CueOptions = CueOptions()) -> Cue:
    """A failed slice as one cue at its start: its time span and reason, cut to fit two lines."""
    start = float(item["start"])
    span = f"[{item.get('span', '')} could not be transcribed:".replace("[ ", "[")
    first = span if len(span) <= opts.max_line_chars else "[could not be transcribed:"
    reason = str(item.get("error") or "failed")
    limit = opts.max_line_chars - 1
    second = (reason if len(reason) <= limit else reason[:limit - 1].rstrip() + "…") + "]"
    return Cue(start, max(start, float(item["end"])), (first, second))


def _timed(cues: list[Cue], opts: CueOptions, duration_s: float | None) -> list[Cue]:
    """Each cue stays up at least ``min_cue_s`` and long enough to read, never past the next cue's start, never
    longer than ``max_cue_s``."""
    out = []
    for n, cue in enumerate(cues):
        limit = cue.start + opts.max_cue_s
        if n + 1 < len(cues):
            limit = min(limit, cues[n + 1].start)
        elif duration_s is not None:
            limit = min(limit, max(duration_s, cue.end))
        chars = len(cue.text)
        want = max(cue.end, cue.start + opts.min_cue_s, cue.start + chars / opts.max_chars_per_s)
        out.append(Cue(cue.start, max(cue.start, min(want, limit)), cue.lines, cue.speaker))
    return out


def cues(items: Sequence[dict[str, Any]], opts: CueOptions = CueOptions(),
         duration_s: float | None = None, name_changes: bool = False) -> list[Cue]:
    """Cues for a transcript's timed items in recording order: segments (``start``, ``end``, ``text``, and
    ``words`` where known) and failed slices (``failed: True``, with ``span`` and ``error``). A change of speaker
    always ends a cue; with ``name_changes`` the first cue of each speaker's turn opens with the name ("Alice:"),
    as subtitles without voice tags (``.srt``) show it."""
    raw: list[Cue] = []
    pending: list[Word] = []
    last_speaker: list[Any] = [None]

    def flush() -> None:
        for run in _runs(pending, opts):
            speaker = run[0].speaker
            named = name_changes and speaker is not None and speaker != last_speaker[0]
            raw.extend(_cues_of(run, opts, str(speaker) if named else None))
            last_speaker[0] = speaker
        pending.clear()

    for item in items:
        if item.get("failed"):
            flush()
            raw.append(failure_cue(item, opts))
        else:
            pending.extend(segment_words(item, opts))
    flush()
    return _timed(raw, opts, duration_s)


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def no_arrow(text: str) -> str:
    """``text`` with every ``-->`` made ``->``: in a cue's text the arrow would be read as a timing line (the
    cue cut there). A correction or a speaker's name is whatever a person typed."""
    while "-->" in text:
        text = text.replace("-->", "->")
    return text


def to_srt(cue_list: Sequence[Cue]) -> str:
    """SubRip: numbered cues, their times, their lines (SubRip has no escapes: only ``-->`` is neutralised)."""
    return "\n".join(f"{n}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n" + "\n".join(map(no_arrow, c.lines))
                     + "\n" for n, c in enumerate(cue_list, 1))


def vtt_escape(text: str) -> str:
    """Text as WebVTT cue text: ``&``, ``<`` and ``>`` as character references, so a typed ``<b>`` is shown, not
    taken for markup, and no ``-->`` is left (its ``>`` is escaped)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _voice(speaker: Any) -> str:
    """A WebVTT voice tag for a speaker's name (``<v Alice>``), escaped: a name is whatever a user typed."""
    if speaker is None:
        return ""
    return f"<v {vtt_escape(str(speaker))}>"


def to_vtt(cue_list: Sequence[Cue]) -> str:
    """WebVTT; a cue with a speaker opens with its voice tag (``<v Alice>``), which players show as the name. The
    text is escaped (:func:`vtt_escape`)."""
    body = "\n".join(f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{_voice(c.speaker)}"
                     + "\n".join(map(vtt_escape, c.lines)) + "\n" for c in cue_list)
    return "WEBVTT\n\n" + body
