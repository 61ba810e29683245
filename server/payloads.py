"""Socket.IO payloads, parsed at the edge: whatever a worker or a page sends becomes either a typed value whose
every number is finite and in range and every string bounded, or :class:`PayloadError` with a sentence for the
sender. ``events.py`` calls these; the coordinator and the live sessions only ever see the typed values.

JSON lets a sender write ``Infinity``, ``NaN``, ``-1e9``, ``true`` where a count belongs, or a million-item list:
each is refused here, by name, before anything is stored or scheduled.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from . import speakers
from .ids import is_job_id
from .scheduler import Requirement, SliceKey, WorkerInfo

#: Longest slice a worker may announce, and so the latest time a segment or word may name in a slice's audio.
MAX_SLICE_S = 3600.0
#: Most slices a worker may hold (and decode as one batch).
MAX_SLOTS = 64
#: Longest a slice's transcription may be said to have taken (a day: anything longer is a broken clock).
MAX_ELAPSED_S = 86_400.0
#: Longest word (Whisper's tokens make words of a few dozen characters at most).
MAX_WORD_CHARS = 200
#: Most live audio one chunk may carry, in bytes (1 s at 48 kHz is 96 KB; the session's own limit is tighter).
MAX_PCM_BYTES = 1 << 20
#: A lease id is what ``uuid4().hex`` makes.
_LEASE = re.compile(r"[0-9a-f]{32}")


class PayloadError(ValueError):
    """A payload that cannot be used; the message says which field and why, for the sender."""


# --- checks -------------------------------------------------------------------------------------------------


def _field(data: dict[str, Any], name: str, default: Any = ..., where: str = "") -> Any:
    if name in data:
        return data[name]
    if default is ...:
        raise PayloadError(f"{where}{name} is missing")
    return default


def number(value: Any, name: str, low: float, high: float) -> float:
    """A finite JSON number in [low, high] (never a bool, never a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError(f"{name} must be a number")
    try:
        x = float(value)
    except OverflowError:  # an integer too large for a float
        raise PayloadError(f"{name} must be a number from {low:g} to {high:g}") from None
    if not math.isfinite(x) or not low <= x <= high:
        raise PayloadError(f"{name} must be a number from {low:g} to {high:g}")
    return x


def whole(value: Any, name: str, low: int, high: int) -> int:
    """A JSON integer in [low, high] (never a bool; 3.0 is not a whole number here)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PayloadError(f"{name} must be a whole number from {low} to {high}")
    return value


def text(value: Any, name: str, limit: int) -> str:
    """A string of at most ``limit`` characters, as sent (control characters are the caller's business)."""
    if not isinstance(value, str):
        raise PayloadError(f"{name} must be a string")
    if len(value) > limit:
        raise PayloadError(f"{name} is over {limit} characters")
    return value


def label(value: Any, limit: int, default: str = "") -> str:
    """A name to show (worker name, engine, model): printable characters only, cut to ``limit``."""
    if value is None:
        return default
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise PayloadError("names must be strings")
    cleaned = "".join(ch for ch in str(value)[: 4 * limit] if ch.isprintable())
    return cleaned[:limit] or default


def job_id(value: Any, name: str = "job") -> str:
    if not is_job_id(value):
        raise PayloadError(f"{name} must be a job id (16 hex digits)")
    return value


def _dict(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{name} must be an object")
    return value


# --- workers ------------------------------------------------------------------------------------------------


def worker_info(auth: Any) -> WorkerInfo:
    """What a connecting worker says about itself (its Socket.IO ``auth``), bounded and cleaned."""
    auth = auth if isinstance(auth, dict) else {}
    # Announcements beyond what this server uses are taken at its limit, as they always were.
    slots = min(MAX_SLOTS, whole(auth.get("slots", 1), "slots", 1, 2**31))
    max_slice_s = min(MAX_SLICE_S, number(auth.get("max_slice_s", 30.0), "max_slice_s", 1.0, 1e9))
    return WorkerInfo(name=label(auth.get("name"), 64, "worker"), engine=label(auth.get("engine"), 32, "unknown"),
                      model=label(auth.get("model"), 128), slots=slots, max_slice_s=max_slice_s,
                      words=auth.get("words") is True, diarize=auth.get("diarize") is True,
                      tentative=auth.get("tentative") is True,
                      parallel=min(slots, whole(auth.get("parallel", slots), "parallel", 1, 2**31)))


@dataclass(frozen=True)
class SliceRef:
    """Which slice a worker's message is about: the lease it was sent with, and the slice itself."""

    lease: str
    job: str
    index: int

    @property
    def key(self) -> SliceKey:
        return SliceKey(self.job, self.index)


@dataclass(frozen=True)
class Word:
    """One word, times in seconds of the slice's audio."""

    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """A stretch of a slice's text, times in seconds of the slice's audio (the Words contract of the brief)."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text,
                "words": [asdict(w) for w in self.words], "avg_logprob": self.avg_logprob}


@dataclass(frozen=True)
class Result:
    """A worker's text for a slice it holds."""

    ref: SliceRef
    text: str
    segments: tuple[Segment, ...]
    elapsed_s: float  # wall time the transcription took (its whole batch's)
    batch: int  # slices decoded together with it
    engine: str | None  # None: the one the worker announced
    model: str | None
    #: Speaker voices (``--diarize`` workers): (start, end, unit vector) in the slice's audio; None when the
    #: worker sent none, and then ``voice_error`` may say why.
    voices: tuple[tuple[float, float, Any], ...] | None = None
    voice_model: str = ""
    voice_s: float = 0.0  # what embedding them cost the worker
    voice_error: str = ""


@dataclass(frozen=True)
class SliceFailure:
    """A worker could not transcribe a slice it holds."""

    ref: SliceRef
    reason: str


def slice_ref(data: Any) -> SliceRef:
    """The lease, job and index every message about a slice carries."""
    data = _dict(data, "the message")
    lease = _field(data, "lease")
    if not isinstance(lease, str) or not _LEASE.fullmatch(lease):
        raise PayloadError("lease must be the lease id the slice came with")
    return SliceRef(lease, job_id(_field(data, "job")), whole(_field(data, "index"), "index", 0, 10**6))


def _word(value: Any, where: str) -> Word:
    w = _dict(value, where)
    start = number(_field(w, "start", where=f"{where}."), f"{where}.start", 0.0, MAX_SLICE_S)
    end = max(start, number(_field(w, "end", where=f"{where}."), f"{where}.end", 0.0, MAX_SLICE_S))
    return Word(start, end, text(_field(w, "word", where=f"{where}."), f"{where}.word", MAX_WORD_CHARS),
                number(_field(w, "probability", where=f"{where}."), f"{where}.probability", 0.0, 1.0))


def _segment(value: Any, where: str, words_left: int, max_chars: int) -> Segment:
    seg = _dict(value, where)
    start = number(_field(seg, "start", 0.0), f"{where}.start", 0.0, MAX_SLICE_S)
    # An end before its start is an engine's rounding, not an attack: it is taken as the start.
    end = max(start, number(_field(seg, "end", start), f"{where}.end", 0.0, MAX_SLICE_S))
    words = _field(seg, "words", None) or []
    if not isinstance(words, list):
        raise PayloadError(f"{where}.words must be a list")
    if len(words) > words_left:
        raise PayloadError("the result holds more words than its text allows")
    logprob = _field(seg, "avg_logprob", None)
    return Segment(start, end, text(_field(seg, "text", ""), f"{where}.text", max_chars),
                   tuple(_word(w, f"{where}.words[{n}]") for n, w in enumerate(words)),
                   None if logprob is None else number(logprob, f"{where}.avg_logprob", -1e4, 0.0))


def result(data: dict[str, Any], ref: SliceRef, max_text_chars: int) -> Result:
    """The rest of a result, once :func:`slice_ref` has read which slice it is for. Text (the result's, and its
    segments' together) is bounded by ``max_text_chars``, segments by half that, words by that."""
    body = text(_field(data, "text", ""), "text", max_text_chars)
    segments = _field(data, "segments", None) or []
    if not isinstance(segments, list):
        raise PayloadError("segments must be a list")
    if len(segments) > max_text_chars // 2:
        raise PayloadError(f"the result holds more than {max_text_chars // 2} segments")
    parsed: list[Segment] = []
    chars = words = 0
    for n, seg in enumerate(segments):
        parsed.append(_segment(seg, f"segments[{n}]", max_text_chars - words, max_text_chars))
        chars += len(parsed[-1].text)
        words += len(parsed[-1].words)
        if chars > max_text_chars:
            raise PayloadError(f"the segments' text is over {max_text_chars} characters")
    engine, model = _field(data, "engine", None), _field(data, "model", None)
    return Result(ref, body, tuple(parsed),
                  elapsed_s=number(_field(data, "elapsed", 0.0), "elapsed", 0.0, MAX_ELAPSED_S),
                  batch=whole(_field(data, "batch", 1), "batch", 1, MAX_SLOTS),
                  engine=None if engine is None else label(engine, 32),
                  model=None if model is None else label(model, 128), **_voices(data))


def _voices(data: dict[str, Any]) -> dict[str, Any]:
    """A result's speaker voices. Voices that cannot be used cost the slice its labels, never its text: they
    are dropped and ``voice_error`` says why."""
    error = label(_field(data, "voice_error", None), 300)
    raw = _field(data, "voices", None)
    if raw is None:
        return {"voice_error": error}
    try:
        voices = tuple(speakers.parse_voices(raw, seconds=MAX_SLICE_S, max_count=speakers.MAX_VOICES_PER_SLICE))
        seconds = number(_field(data, "voice_s", 0.0), "voice_s", 0.0, MAX_ELAPSED_S)
    except (speakers.VoiceError, PayloadError) as exc:
        return {"voice_error": f"the server refused its voices: {exc}"}
    return {"voices": voices, "voice_model": label(_field(data, "voice_model", None), 64, "unknown"),
            "voice_s": seconds, "voice_error": error}


def slice_failure(data: dict[str, Any], ref: SliceRef) -> SliceFailure:
    reason = _field(data, "error", "unknown error")
    return SliceFailure(ref, label(reason if isinstance(reason, str) else repr(reason)[:500], 500, "unknown error"))


def hand_back(data: Any) -> tuple[str, ...]:
    """``{leases: [...]}``: the leases a stopping worker gives back."""
    leases = _field(_dict(data, "the message"), "leases")
    if not isinstance(leases, list) or len(leases) > MAX_SLOTS:
        raise PayloadError(f"leases must be a list of at most {MAX_SLOTS} lease ids")
    if not all(isinstance(lease, str) and _LEASE.fullmatch(lease) for lease in leases):
        raise PayloadError("leases must be lease ids")
    return tuple(leases)


@dataclass(frozen=True)
class TentativeText:
    """A worker's tentative text of a live recording's open part, for the request ``id`` it was sent."""

    id: str
    job: str
    text: str
    elapsed_s: float  # how long the decode took on the worker


def tentative_text(data: Any, max_text_chars: int) -> TentativeText:
    """``{id, job, text, elapsed}``: the answer to a ``tentative`` request (``live_captions.py``)."""
    data = _dict(data, "the message")
    request_id = _field(data, "id")
    if not isinstance(request_id, str) or not _LEASE.fullmatch(request_id):
        raise PayloadError("id must be the id the request came with")
    return TentativeText(request_id, job_id(_field(data, "job")),
                         text(_field(data, "text"), "text", max_text_chars),
                         number(_field(data, "elapsed", 0.0), "elapsed", 0.0, MAX_ELAPSED_S))


# --- pages --------------------------------------------------------------------------------------------------

#: A live recording's key is ``secrets.token_urlsafe(18)`` (24 characters); anything much longer is not one.
MAX_KEY_CHARS = 64


@dataclass(frozen=True)
class LiveStart:
    name: str
    sample_rate: int
    requirement: Requirement = Requirement()  # the workers its slices and tentative text may go to


@dataclass(frozen=True)
class LiveRef:
    """Which live recording a page's message is about, and the key that proves it started it."""

    job: str
    key: str


@dataclass(frozen=True)
class LiveChunk:
    ref: LiveRef
    seq: int
    pcm: bytes


@dataclass(frozen=True)
class LiveStop:
    ref: LiveRef
    last_seq: int


def watched_job(data: Any) -> str:
    """``{job}`` of ``watch`` and ``unwatch``."""
    return job_id(_field(_dict(data, "the message"), "job"))


def live_start(data: Any) -> LiveStart:
    data = _dict(data, "the message")
    rate = _field(data, "sample_rate", None)
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise PayloadError(f"unsupported sample rate: {rate!r} (8000 to 48000 Hz are accepted)")
    name = _field(data, "name", "") or ""
    engine, model = _field(data, "engine", "") or "", _field(data, "model", "") or ""
    if not isinstance(engine, str) or not isinstance(model, str) or \
            not re.fullmatch(r"[\w.\-/]{0,128}", engine.strip() + model.strip()):
        raise PayloadError("engine and model may hold letters, digits, '.', '-', '_' and '/' only")
    return LiveStart(text(name, "name", 1000), rate, Requirement(engine.strip(), model.strip()))


def live_ref(data: Any) -> LiveRef:
    data = _dict(data, "the message")
    key = _field(data, "key")
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS:
        raise PayloadError("key must be the key live_start gave")
    return LiveRef(job_id(_field(data, "job")), key)


def live_chunk(data: Any) -> LiveChunk:
    ref = live_ref(data)
    seq = _field(data, "seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**31:
        raise PayloadError("seq must be a whole number from 0")
    pcm = _field(data, "pcm")
    if not isinstance(pcm, (bytes, bytearray)) or not pcm or len(pcm) % 2 or len(pcm) > MAX_PCM_BYTES:
        raise PayloadError("pcm must be 16-bit samples (an even, non-zero number of bytes)")
    return LiveChunk(ref, seq, bytes(pcm))


def live_stop(data: Any) -> LiveStop:
    ref = live_ref(data)
    last = _field(data, "last_seq", None)
    if isinstance(last, bool) or not isinstance(last, int) or not -1 <= last < 2**31:
        raise PayloadError("last_seq must be a whole number from -1")
    return LiveStop(ref, last)
