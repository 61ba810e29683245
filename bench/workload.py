"""The bench's recordings, built from the corpus, and how their transcripts are scored.

The workload is the corpus's longest recordings, joined in manifest order into one recording of about ten
minutes. The long ones (over 20 s: a radio address, three sonnets, a Harvard list, two monologues, a
LibriSpeech paragraph) give only 403 s, so the next longest are added, longest first, until the total reaches
``target_s`` (31 recordings, 605 s for 600 s). Files are joined as they are, so each keeps its own leading and
trailing silence: those are the natural pauses between them. Longer workloads (30 and 60 minutes for the
scale-out and memory parts) repeat the same recording.

Scoring: tier C references probably came from an ASR system (the corpus README), so they are kept for timing
and for the alignment, but their words do not count. :func:`score` aligns the whole hypothesis against the
whole joined reference (every tier, so a tier-C stretch never pushes its words onto a neighbour), then counts
the errors of the trusted recordings only.
"""

from __future__ import annotations

import csv
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.audio import TARGET_RATE
from tests.support import CORPUS, normalise


@dataclass(frozen=True)
class Part:
    """One corpus recording inside the joined workload."""

    name: str
    tier: str
    reference: str
    start_s: float
    end_s: float

    @property
    def trusted(self) -> bool:
        """Does its reference count in the headline WER? (Tier C is for timing only.)"""
        return self.tier != "C"


@dataclass(frozen=True)
class Workload:
    """A joined recording on disk, with the recordings it is made of."""

    path: Path
    seconds: float
    parts: tuple[Part, ...]

    @property
    def reference(self) -> str:
        return " ".join(p.reference for p in self.parts)


def read_manifest(corpus: Path = CORPUS) -> list[dict[str, str]]:
    with open(corpus / "manifest.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def select(rows: list[dict[str, str]], target_s: float, longest_first: bool = True) -> list[dict[str, str]]:
    """Recordings until they add up to ``target_s``: the longest first (or, for a short smoke-test input, in
    manifest order); returned in manifest order."""
    chosen: set[str] = set()
    total = 0.0
    for row in sorted(rows, key=lambda r: -float(r["seconds"])) if longest_first else rows:
        if total >= target_s:
            break
        chosen.add(row["file"])
        total += float(row["seconds"])
    return [r for r in rows if r["file"] in chosen]


def read_pcm16(path: Path) -> np.ndarray:
    """A corpus file's samples (the corpus is 16 kHz mono 16-bit throughout; anything else is an error)."""
    with wave.open(str(path)) as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, TARGET_RATE):
            raise ValueError(f"{path.name}: expected 16 kHz mono 16-bit PCM")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def write_pcm16(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(TARGET_RATE)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def build(out_dir: Path, target_s: float = 600.0, repeat: int = 1, longest_first: bool = True,
          corpus: Path = CORPUS) -> Workload:
    """Join the selected recordings (``repeat`` times over) into one WAV under ``out_dir`` (kept there and
    reused by later runs)."""
    rows = select(read_manifest(corpus), target_s, longest_first)
    chunks, parts = [], []
    position = 0
    for _ in range(repeat):
        for row in rows:
            samples = read_pcm16(corpus / row["file"])
            chunks.append(samples)
            parts.append(Part(row["file"], row["tier"], row["reference"], position / TARGET_RATE,
                              (position + len(samples)) / TARGET_RATE))
            position += len(samples)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"workload-{target_s:.0f}s-{'longest' if longest_first else 'first'}-x{repeat}.wav"
    if not path.exists():
        partial = path.with_suffix(".partial")
        write_pcm16(partial, np.concatenate(chunks))
        partial.replace(path)  # a run cut short never leaves half a workload behind
    return Workload(path, position / TARGET_RATE, tuple(parts))


@dataclass(frozen=True)
class Score:
    """Word error rates in percent: ``trusted`` over tiers A, A- and B; ``all`` over every tier."""

    trusted: float
    all: float


def score(parts: tuple[Part, ...] | list[Part], hypothesis: str) -> Score:
    """WER of a transcript of the joined workload, normalised as the corpus README says (see the module
    docstring for tier C). Insertions count against the recording of the reference word before them."""
    import jiwer

    ref_words: list[str] = []
    owner: list[bool] = []  # per reference word: does it belong to a trusted recording?
    for part in parts:
        words = normalise(part.reference).split()
        ref_words += words
        owner += [part.trusted] * len(words)
    hyp = normalise(hypothesis)
    result = jiwer.process_words(" ".join(ref_words), hyp if hyp.strip() else "<empty>")
    errors_trusted = errors_all = 0
    for chunk in result.alignments[0]:
        if chunk.type == "equal":
            continue
        if chunk.type == "insert":
            n = chunk.hyp_end_idx - chunk.hyp_start_idx
            counted = [owner[max(0, chunk.ref_start_idx - 1)]] * n
        else:  # substitute or delete: one error per reference word
            counted = owner[chunk.ref_start_idx:chunk.ref_end_idx]
        errors_all += len(counted)
        errors_trusted += sum(counted)
    trusted_words = sum(owner)
    return Score(100.0 * errors_trusted / max(1, trusted_words), 100.0 * errors_all / max(1, len(ref_words)))
