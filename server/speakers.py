"""Who spoke when: the voices of a whole job clustered into speakers, and a speaker for every word and segment.

Pure numpy/scipy, no I/O. Workers started with ``--diarize`` send, with each slice's text, a *voice* (a unit
vector, resemblyzer's; see ``client/diarize.py``) for every stretch of speech they heard. Each slice is done by
whichever worker was free, so no worker can tell who is who across the recording; the server can, because it
has every voice of the job:

* :func:`cluster` groups the job's voices by average-linkage agglomerative clustering on cosine similarity:
  two groups are merged while the mean similarity between their members is at least
  ``same_speaker_similarity``. Measured on the corpus's voices (``python -m bench speakers`` prints the
  spread), stretches of the same person score 0.6–0.8 (median) and of different people 0.43–0.52, with a few
  pairs of one person above the other's 0.6; mean similarities of groups are steadier than single pairs, which
  is why the merging compares groups. A group with less than ``min_speaker_s`` of speech is too little to be a
  speaker of its own (a cough, a stretch the encoder got wrong): its voices join the nearest speaker. When the
  user says how many speakers there are (the upload's ``speakers`` field), the tree is cut at that count.
* :func:`stable_ids` keeps "Speaker 2" the same person while slices arrive and the clustering is redone: new
  groups are matched to the previous labels by the speech they share.
* :func:`speaker_at` and :func:`annotate` give each word the speaker of the stretch it was spoken in, and each
  segment the speaker of most of its words.

A job's labels are kept as *turns*: ``[start, end, id]`` on the recording's timeline, one per voice (or, for a
stereo recording labelled by channel, per stretch where one channel is louder: ``server/channels.py``).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from .voice_groups import VoiceGroups

#: A label's name until the user gives it one.
DEFAULT_NAME = "Speaker {id}"
#: Longest name a speaker may be given.
MAX_NAME_CHARS = 60
#: Most speakers a user may ask for (the upload's ``speakers`` field).
MAX_SPEAKERS = 20
#: Most voices one slice may carry (a 28 s slice has a dozen; one per 30 ms of a 30 s slice is 1000).
MAX_VOICES_PER_SLICE = 1000


@dataclass(frozen=True)
class LabelOptions:
    """How voices become speakers."""

    #: Average-linkage threshold: groups whose members are this similar on average (cosine) are one person.
    same_speaker_similarity: float = 0.55
    #: A group with less speech than this joins the nearest speaker.
    min_speaker_s: float = 4.0
    #: Most voices clustered together; a longer job clusters an even spread of them and gives each of the others
    #: the speaker whose centroid is nearest (memory stays bounded: the distances are n²/2).
    max_voices: int = 2000
    #: A word this far (seconds) from every labelled stretch gets no speaker.
    max_gap_s: float = 2.0


class VoiceError(ValueError):
    """A worker's voices are malformed (the message says how)."""


def parse_voices(raw: Any, seconds: float, max_count: int = 2000) -> list[tuple[float, float, np.ndarray]]:
    """Check a result's ``voices`` (``[{"start", "end", "vector"}]``, times in the slice's audio of ``seconds``)
    and return them as ``(start, end, unit vector)``; raise :class:`VoiceError` for anything else. Every vector
    of one result has the same length (8–1024 numbers, all finite)."""
    if not isinstance(raw, list):
        raise VoiceError("voices must be a list")
    if len(raw) > max_count:
        raise VoiceError(f"more than {max_count} voices for one slice")
    out, size = [], None
    for item in raw:
        if not isinstance(item, dict):
            raise VoiceError("each voice must be {start, end, vector}")
        try:
            start, end = float(item["start"]), float(item["end"])
            vector = np.asarray(item["vector"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise VoiceError("each voice must be {start, end, vector} with numbers") from exc
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end <= seconds + 1.0):
            raise VoiceError(f"a voice's times must lie in the slice (0–{seconds:.1f} s), start before end")
        if vector.ndim != 1 or not 8 <= len(vector) <= 1024 or not np.all(np.isfinite(vector)):
            raise VoiceError("a voice's vector must be 8–1024 finite numbers")
        if size is not None and len(vector) != size:
            raise VoiceError("every voice of a slice must have the same length")
        size = len(vector)
        norm = float(np.linalg.norm(vector))
        if norm == 0:
            raise VoiceError("a voice's vector must not be all zeros")
        out.append((start, end, vector / norm))
    return out


def cluster(vectors: np.ndarray, seconds: np.ndarray, count: int | None = None,
            opts: LabelOptions = LabelOptions()) -> np.ndarray:
    """Speaker of each voice (0, 1, …) from its unit vector (rows of ``vectors``) and how long it spoke
    (``seconds``); ``count`` fixes the number of speakers."""
    from scipy.cluster.hierarchy import fcluster, linkage

    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=int)
    if n == 1 or count == 1:
        return np.zeros(n, dtype=int)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    chosen = np.arange(n) if n <= opts.max_voices else np.linspace(0, n - 1, opts.max_voices).round().astype(int)
    tree = linkage(vectors[chosen], method="average", metric="cosine")
    labels = fcluster(tree, 1.0 - opts.same_speaker_similarity, criterion="distance")
    groups = VoiceGroups(vectors[chosen], seconds[chosen], labels)
    groups.absorb_small(opts.min_speaker_s, keep=count or 1)
    if count:
        groups.join_closest(count)  # too many: the two most alike become one, until there are ``count``
        if groups.count < count:  # too few: the user knows better; cut the tree at that count
            groups = VoiceGroups(vectors[chosen], seconds[chosen],
                             fcluster(tree, min(count, len(chosen)), criterion="maxclust"))
    labels, matrix = groups.labels(), groups.centroids()
    if n > len(chosen):  # the voices left out of the tree go to the nearest speaker
        full = np.argmax(vectors @ matrix.T, axis=1)
        full[chosen] = labels
        labels = full
    return labels


def stable_ids(spans: Sequence[tuple[float, float]], labels: Sequence[int],
               previous: Sequence[Sequence[float]], next_id: int) -> tuple[list[int], int]:
    """Speaker ids (1, 2, …) for clusters ``labels`` of voices at ``spans``, the same as in the ``previous``
    turns wherever the speech they share says so (each previous id goes to the cluster it shares most speech
    with, one to one); other clusters get new ids from ``next_id`` on, in order of first appearance. Returns
    the ids per voice and the next unused id."""
    from scipy.optimize import linear_sum_assignment

    before = {(round(s, 3), round(e, 3)): int(i) for s, e, i in previous}
    clusters = sorted(set(labels), key=lambda k: min(spans[j][0] for j, lab in enumerate(labels) if lab == k))
    old_ids = sorted(set(before.values()))
    mapping: dict[int, int] = {}
    if old_ids:
        shared = np.zeros((len(clusters), len(old_ids)))
        for (s, e), lab in zip(spans, labels, strict=True):
            old = before.get((round(s, 3), round(e, 3)))
            if old is not None:
                shared[clusters.index(lab), old_ids.index(old)] += e - s
        for r, c in zip(*linear_sum_assignment(-shared), strict=True):
            if shared[r, c] > 0:
                mapping[clusters[r]] = old_ids[c]
    for k in clusters:
        if k not in mapping:
            mapping[k] = next_id
            next_id += 1
    return [mapping[lab] for lab in labels], next_id


def renumbered(turns: Sequence[Sequence[float]]) -> list[list[float]]:
    """The same turns with ids 1, 2, … in order of first appearance."""
    order: dict[int, int] = {}
    for _s, _e, i in sorted(turns):
        order.setdefault(int(i), len(order) + 1)
    return [[s, e, order[int(i)]] for s, e, i in turns]


def speaker_at(turns: Sequence[Sequence[float]], starts: Sequence[float], start: float, end: float,
               max_gap_s: float = LabelOptions.max_gap_s) -> int | None:
    """The speaker of the turn that holds the middle of ``[start, end]``; else of the nearest turn within
    ``max_gap_s``; else None. ``turns`` sorted by start, ``starts`` their starts (for bisection)."""
    if not turns:
        return None
    middle = (start + end) / 2
    k = bisect.bisect_right(starts, middle)
    best, best_gap = None, max_gap_s
    for j in (k - 2, k - 1, k):
        if 0 <= j < len(turns):
            s, e, i = turns[j]
            gap = 0.0 if s <= middle <= e else min(abs(s - middle), abs(e - middle))
            if gap <= best_gap:
                best, best_gap = int(i), gap
    return best


def name_of(speaker: int | None, names: dict[str, str]) -> str | None:
    if speaker is None:
        return None
    return names.get(str(speaker)) or DEFAULT_NAME.format(id=speaker)


def annotate(segments: Iterable[dict[str, Any]], turns: Sequence[Sequence[float]],
             names: dict[str, str]) -> list[dict[str, Any]]:
    """Copies of ``segments`` (recording timeline) with ``speaker`` (the name) and ``speaker_id`` on each
    segment and each of its words: a word's is the turn it was spoken in, a segment's that of most of its
    words' time (or, without words, of its middle)."""
    ordered = sorted(turns)
    starts = [t[0] for t in ordered]
    out = []
    for seg in segments:
        seg = dict(seg)
        words = []
        weight: dict[int, float] = {}
        for word in seg.get("words") or []:
            sid = speaker_at(ordered, starts, float(word["start"]), float(word["end"]))
            words.append({**word, "speaker": name_of(sid, names), "speaker_id": sid})
            if sid is not None:
                weight[sid] = weight.get(sid, 0.0) + max(0.01, float(word["end"]) - float(word["start"]))
        if "words" in seg:
            seg["words"] = words
        sid = max(weight, key=weight.get) if weight else \
            speaker_at(ordered, starts, float(seg["start"]), float(seg["end"]))
        seg["speaker"], seg["speaker_id"] = name_of(sid, names), sid
        out.append(seg)
    return out


def speaker_list(turns: Sequence[Sequence[float]], names: dict[str, str]) -> list[dict[str, Any]]:
    """Each speaker once, in order of first appearance: ``{id, name, seconds}`` (seconds of speech)."""
    speech: dict[int, float] = {}
    for s, e, i in sorted(turns):
        speech[int(i)] = speech.get(int(i), 0.0) + (e - s)
    return [{"id": i, "name": name_of(i, names), "seconds": round(t, 1)} for i, t in speech.items()]


def check_name(name: Any) -> str:
    """A speaker's new name, cleaned (printable, spaces collapsed, 1–60 characters); ValueError otherwise."""
    if not isinstance(name, str):
        raise ValueError("send the new name as {\"name\": \"Alice\"}")
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in name).split())
    if not cleaned:
        raise ValueError("the name is empty")
    if len(cleaned) > MAX_NAME_CHARS:
        raise ValueError(f"the name is longer than {MAX_NAME_CHARS} characters")
    return cleaned


# --- a job's speaker state ------------------------------------------------------------------------------------
# Kept in the job's ``speakers`` column: {"method": "voice" | "channel", "requested": N or None, "turns": [[start,
# end, id], ...], "next_id": n, "final": bool, "names": {"1": "Alice"}, "voiced": slices with voices,
# "unvoiced": slices whose worker sent none, "errors": [why, ...]}.

#: Why a job has no labels when its workers sent no voices.
NO_VOICES = ("no speaker labels: the workers that transcribed this job do not compute voices (start a worker with "
             "--diarize, after pip install -r requirements-diarize.txt)")


def initial_state(requested: int | None, channel_turns: list[list[float]] | None = None) -> dict[str, Any]:
    """A new job's speaker state: labelled by channel from the start when ``channel_turns`` are given (a stereo
    recording whose channels hold different people: final at once), else waiting for voices."""
    if channel_turns is not None:
        ids = {int(t[2]) for t in channel_turns}
        return {"method": "channel", "requested": requested, "turns": channel_turns,
                "next_id": max(ids, default=0) + 1, "final": True, "names": {}}
    return {"method": "voice", "requested": requested, "turns": [], "next_id": 1, "final": False, "names": {}}


def relabelled(state: dict[str, Any], spans: Sequence[tuple[float, float]], labels: Sequence[int],
               final: bool) -> dict[str, Any]:
    """The state with new turns from clustered voices: ids kept where the people are the same (renamed ones
    included); once ``final`` and while nobody has named anyone, numbered again in order of first appearance."""
    ids, next_id = stable_ids(spans, labels, state.get("turns", []), int(state.get("next_id", 1)))
    turns = sorted([round(s, 3), round(e, 3), i] for (s, e), i in zip(spans, ids, strict=True))
    if final and not state.get("names"):
        turns = renumbered(turns)
        next_id = max((t[2] for t in turns), default=0) + 1
    return {**state, "turns": turns, "next_id": next_id, "final": final}


def view(state: dict[str, Any]) -> dict[str, Any]:
    """What the job view says about speakers: ``status`` ("labelled", "waiting" while no slice with voices is
    done, or "none" with a ``note`` saying why), the ``method``, whether the labels are ``final``, and the
    speakers (``list``: id, name, seconds of speech)."""
    method = state.get("method")
    turns = state.get("turns") or []
    names = state.get("names") or {}
    unvoiced, voiced = int(state.get("unvoiced", 0)), int(state.get("voiced", 0))
    out: dict[str, Any] = {"status": "labelled" if turns else "waiting", "method": method,
                           "final": bool(state.get("final")), "requested": state.get("requested"),
                           "list": speaker_list(turns, names), "note": ""}
    if not method:
        out.update(status="none", note="no speaker labels: this job was made before the server labelled speakers")
    elif method == "voice" and not turns and unvoiced and not voiced:
        errors = state.get("errors") or []
        out.update(status="none", note=f"no speaker labels: the workers' voices could not be used ({errors[0]})"
                   if errors else NO_VOICES)
    elif method == "voice" and not turns and voiced and state.get("final"):
        out.update(status="none", note="no speaker labels: no speech was found to label")
    elif method == "voice" and unvoiced and turns:
        out["note"] = (f"{unvoiced} of {unvoiced + voiced} slices were transcribed by workers that do not "
                       "compute voices (no --diarize): their words have no speaker")
    return out


def labelled_segments(segments: list[dict[str, Any]], state: dict[str, Any]) -> list[dict[str, Any]]:
    """``segments`` with their speakers (:func:`annotate`) when the job has any; unchanged otherwise."""
    turns = state.get("turns") or []
    return annotate(segments, turns, state.get("names") or {}) if turns else segments


def labelled_items(items: list[dict[str, Any]], state: dict[str, Any]) -> list[dict[str, Any]]:
    """A transcript's timed items (``transcript.timed_segments``) with ``speaker`` and ``speaker_id`` on every
    item and word: the speaker's where the job has labels, None elsewhere (and on a failed slice's marker)."""
    turns = state.get("turns") or []
    labelled = iter(annotate([item for item in items if not item.get("failed")], turns,
                             state.get("names") or {})) if turns else None
    out = []
    for item in items:
        if labelled is not None and not item.get("failed"):
            out.append(next(labelled))
        else:
            out.append({**item, "speaker": None, "speaker_id": None,
                        "words": [{**w, "speaker": None, "speaker_id": None} for w in item.get("words") or []]})
    return out
