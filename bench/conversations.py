"""Conversations built from the corpus, with the truth of who speaks when: the speaker bench's and the speaker
tests' recordings.

The corpus holds one voice per recording, so a conversation is made by taking turns: each voice's recordings
are cut at their own pauses into turns of ``turn_s`` (2–20 s; a short recording is one turn as it is), and the
turns of the voices alternate (with three voices, the next speaker is drawn among the other two), separated by
pauses of ``pause_s`` (0.4–1.2 s) of silence. Everything is drawn from a seeded generator, so a conversation is
the same on every machine. A stereo conversation puts each voice on a channel of its own, with the other voice
faint on it (``bleed_db``), as two microphones in one room hear it.

Scoring (:func:`words_right`): each transcribed word's true speaker is the one whose turn holds the word's
middle (or the nearest turn, for a word aligned into a pause); labels are mapped to voices one to one, the
mapping that gets most words right (the usual diarization scoring), and the share of words right is reported.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from server import splitter
from server.audio import TARGET_RATE
from tests.support import CORPUS

#: The voices the bench and the tests use, each a list of corpus recordings of one person.
VOICES: dict[str, tuple[str, ...]] = {
    "lj": tuple(f"ljspeech_LJ001-{n:04d}.wav" for n in range(1, 33)),  # LJ Speech: one woman reading
    "bush": ("bush_radio_address_2008-11-01.wav",),  # a man, a radio address
    "harvard": ("osr_us_000_0034_harvard_list72.wav",),  # a woman reading the Harvard sentences
    "sonnets": tuple(f"librivox_shakespeare_sonnet_00{n}.wav" for n in (1, 2, 3)),  # a LibriVox reader
    "mfa": ("mfa_acoustic_corpus_spontaneous.wav", "mfa_cold_corpus_spontaneous.wav"),  # a man, speaking freely
}


@dataclass(frozen=True)
class Turn:
    """A stretch of one voice in the conversation (seconds)."""

    voice: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Conversation:
    """A conversation on disk, and who speaks when."""

    name: str
    path: Path
    seconds: float
    turns: tuple[Turn, ...]
    channels: int = 1

    @property
    def voices(self) -> list[str]:
        return sorted({t.voice for t in self.turns})


def read_pcm16(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, TARGET_RATE):
            raise ValueError(f"{path.name}: expected 16 kHz mono 16-bit PCM")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def write_pcm16(path: Path, samples: np.ndarray) -> None:
    """A 16 kHz 16-bit WAV; ``samples`` is (n,) for mono or (n, channels)."""
    samples = np.asarray(samples, dtype="<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(TARGET_RATE)
        w.writeframes(samples.tobytes())


def pause_cuts(samples: np.ndarray) -> list[int]:
    """Sample positions in the middle of a recording's pauses (the splitter's own speech regions)."""
    opts = splitter.SplitOptions()
    analysis = splitter.analyse(samples, opts)
    regions = splitter.speech_regions(analysis.levels_db, analysis.threshold_db, opts)
    frame = analysis.frame_len
    return [(a_end + b_start) * frame // 2 for (_, a_end), (b_start, _) in zip(regions, regions[1:], strict=False)]


def voice_turns(files: Sequence[str], rng: np.random.Generator, turn_s: tuple[float, float],
                corpus: Path = CORPUS) -> list[np.ndarray]:
    """A voice's recordings cut into turns: each turn ends at the pause nearest to a length drawn from
    ``turn_s``; recordings no longer than the longest turn stay whole."""
    turns = []
    for name in files:
        samples = read_pcm16(corpus / name)
        if len(samples) <= turn_s[1] * TARGET_RATE:
            turns.append(samples)
            continue
        cuts = pause_cuts(samples)
        start = 0
        while len(samples) - start > turn_s[1] * TARGET_RATE:
            want = start + rng.uniform(*turn_s) * TARGET_RATE
            fits = [c for c in cuts if turn_s[0] * TARGET_RATE <= c - start <= turn_s[1] * TARGET_RATE]
            end = min(fits, key=lambda c: abs(c - want)) if fits else int(start + turn_s[1] * TARGET_RATE)
            turns.append(samples[start:end])
            start = end
        turns.append(samples[start:])
    return [t for t in turns if len(t) >= 0.5 * TARGET_RATE]


def build(name: str, voices: Sequence[str], out_dir: Path, seconds: float, seed: int = 0,
          turn_s: tuple[float, float] = (2.0, 20.0), pause_s: tuple[float, float] = (0.4, 1.2),
          stereo: bool = False, bleed_db: float = -24.0, corpus: Path = CORPUS,
          noise_snr_db: float | None = None) -> Conversation:
    """A conversation of about ``seconds`` between ``voices`` (names in :data:`VOICES`), written under
    ``out_dir`` as ``<name>.wav`` (mono, or one voice per channel when ``stereo``). With ``noise_snr_db``, white
    noise runs under the whole of it (pauses too), that many dB below the speech's level (RMS of the turns): a
    noisy room or line, the same on every machine."""
    if stereo and len(voices) != 2:
        raise ValueError("a stereo conversation has two voices, one per channel")
    rng = np.random.default_rng(seed)
    pools = {v: voice_turns(VOICES[v], rng, turn_s, corpus) for v in voices}
    used = {v: 0 for v in voices}
    pieces: list[tuple[str, np.ndarray]] = []
    total = 0.0
    voice = voices[0]
    while total < seconds and used[voice] < len(pools[voice]):
        audio = pools[voice][used[voice]]
        used[voice] += 1
        pieces.append((voice, audio))
        total += len(audio) / TARGET_RATE
        others = [v for v in voices if v != voice] or [voice]  # one voice: a monologue, cut into turns
        voice = others[int(rng.integers(len(others)))]
    pauses = [int(rng.uniform(*pause_s) * TARGET_RATE) for _ in pieces]
    length = sum(len(a) for _, a in pieces) + sum(pauses[:-1])
    mix = np.zeros((length, 2 if stereo else 1), dtype=np.float64)
    turns, at = [], 0
    bleed = 10 ** (bleed_db / 20)
    for (voice, audio), pause in zip(pieces, pauses, strict=True):
        x = audio.astype(np.float64)
        if stereo:
            own = voices.index(voice)
            mix[at:at + len(x), own] += x
            mix[at:at + len(x), 1 - own] += bleed * x
        else:
            mix[at:at + len(x), 0] += x
        turns.append(Turn(voice, round(at / TARGET_RATE, 3), round((at + len(x)) / TARGET_RATE, 3)))
        at += len(x) + pause
    if noise_snr_db is not None:
        speech = np.concatenate([mix[round(t.start_s * TARGET_RATE):round(t.end_s * TARGET_RATE)] for t in turns])
        level = float(np.sqrt(np.mean(np.square(speech)))) / 10 ** (noise_snr_db / 20)
        mix += np.random.default_rng(seed + 1000).standard_normal(mix.shape) * level
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.wav"
    samples = np.clip(np.round(mix), -32768, 32767).astype("<i2")
    write_pcm16(path, samples if stereo else samples[:, 0])
    return Conversation(name, path, round(length / TARGET_RATE, 3), tuple(turns), 2 if stereo else 1)


def stereo_call(out_dir: Path, corpus: Path = CORPUS, bleed_db: float = -24.0) -> Conversation:
    """The corpus's stereo-diarization recording (``fw_stereo_diarization_right.wav``: the right channel of
    faster-whisper's two-channel test file, kept as mono) answering LJ Speech sentences on the left channel:
    left, right, left, with a pause between turns and each voice faint on the other's channel."""
    left = [read_pcm16(corpus / f"ljspeech_LJ001-{n:04d}.wav") for n in (2, 4)]
    right = read_pcm16(corpus / "fw_stereo_diarization_right.wav")
    order = [("lj", 0, left[0]), ("fw-right", 1, right), ("lj", 0, left[1])]
    pause = int(0.8 * TARGET_RATE)
    length = sum(len(a) for *_, a in order) + pause * (len(order) - 1)
    mix = np.zeros((length, 2))
    turns, at = [], 0
    for voice, channel, audio in order:
        mix[at:at + len(audio), channel] += audio
        mix[at:at + len(audio), 1 - channel] += 10 ** (bleed_db / 20) * audio.astype(np.float64)
        turns.append(Turn(voice, round(at / TARGET_RATE, 3), round((at + len(audio)) / TARGET_RATE, 3)))
        at += len(audio) + pause
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "stereo-call.wav"
    write_pcm16(path, np.clip(np.round(mix), -32768, 32767))
    return Conversation("stereo-call", path, round(length / TARGET_RATE, 3), tuple(turns), 2)


def true_voice(turns: Sequence[Turn], start: float, end: float) -> str:
    """The voice whose turn holds the middle of ``[start, end]``, else the nearest turn's."""
    middle = (start + end) / 2
    for t in turns:
        if t.start_s <= middle <= t.end_s:
            return t.voice
    return min(turns, key=lambda t: min(abs(t.start_s - middle), abs(t.end_s - middle))).voice


def words_right(turns: Sequence[Turn], words: Sequence[tuple[float, float, object]]) -> tuple[float, dict]:
    """Share of ``words`` (``(start, end, label)``) whose label maps to their true voice, under the one-to-one
    mapping of labels to voices that gets most of them right; and that mapping. A word without a label
    (None) is wrong."""
    from scipy.optimize import linear_sum_assignment

    if not words:
        return 0.0, {}
    voices = sorted({t.voice for t in turns})
    labels = sorted({w[2] for w in words if w[2] is not None}, key=str)
    counts = np.zeros((len(labels), len(voices)))
    for start, end, label in words:
        if label is not None:
            counts[labels.index(label), voices.index(true_voice(turns, start, end))] += 1
    rows, cols = linear_sum_assignment(-counts)
    right = counts[rows, cols].sum()
    return float(right / len(words)), {labels[r]: voices[c] for r, c in zip(rows, cols, strict=True)}
