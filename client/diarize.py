"""Speaker voices for the server's speaker labels: what a worker started with ``--diarize`` adds to each result.

The speech of a slice is cut into *stretches*: runs of words with no pause of ``pause_s`` between them (one
person's phrase, most of the time: people take turns at pauses), at most ``max_stretch_s`` long. Without word
times (an engine that has none) the segments' spans are cut the same way. Each stretch gets one *voice*: a
vector of 256 numbers from resemblyzer's voice encoder, whose vectors for the same person point the same way.
The server clusters the voices of a whole job, whichever worker made them, into speakers (``server/speakers.py``).

The encoder (a 3-layer LSTM over 40-band mel frames, trained on 1.6 s pieces of speech) ships inside the
resemblyzer package on PyPI, so nothing is downloaded at run time; it needs torch, which is why this is an
optional extra (``requirements-diarize.txt``) and never part of the default worker. The mel frames are computed
once per slice; every stretch is cut into windows of the encoder's 1.6 s that together cover it, all windows of
a slice go through the encoder as one batch, and a stretch's voice is the normalised mean of its windows'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .engines.base import SAMPLE_RATE

#: The encoder's mel frames are 10 ms apart (resemblyzer's ``mel_window_step``).
FRAMES_PER_S = 100
INSTALL = "pip install -r requirements-diarize.txt"


@dataclass(frozen=True)
class VoiceOptions:
    """How a slice's speech is cut into stretches and windows."""

    #: A pause this long between two words starts a new stretch.
    pause_s: float = 0.3
    #: A longer stretch is cut into equal parts no longer than this.
    max_stretch_s: float = 3.2
    #: The encoder's window (resemblyzer's ``partials_n_frames``: 160 frames of 10 ms).
    window_s: float = 1.6
    #: Each window is brought to this level before the encoder hears it (resemblyzer's own normalisation,
    #: louder only): the encoder was trained on speech at this level.
    target_dbfs: float = -30.0


def speech_spans(segments: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    """Where a slice's text was spoken: its words' times when the engine gives them, else its segments'."""
    words = [w for seg in segments for w in (seg.get("words") or [])]
    spans = words if words else segments
    return sorted((float(s["start"]), float(s["end"])) for s in spans if float(s["end"]) > float(s["start"]))


def stretches(spans: Sequence[tuple[float, float]], opts: VoiceOptions = VoiceOptions()) -> list[tuple[float, float]]:
    """Runs of ``spans`` (sorted) with no pause of ``pause_s`` between them, each cut into equal parts of at
    most ``max_stretch_s``."""
    runs: list[list[float]] = []
    for start, end in spans:
        if runs and start - runs[-1][1] < opts.pause_s:
            runs[-1][1] = max(runs[-1][1], end)
        else:
            runs.append([start, end])
    out = []
    for start, end in runs:
        parts = max(1, math.ceil((end - start) / opts.max_stretch_s - 1e-9))
        step = (end - start) / parts
        out += [(round(start + k * step, 3), round(start + (k + 1) * step, 3)) for k in range(parts)]
    return out


def windows(first: int, end: int, size: int, limit: int) -> list[int]:
    """Start frames of windows of ``size`` frames that together cover frames ``[first, end)``: as few as
    cover it, spread evenly; a stretch shorter than a window gets one window centred on it. Windows stay
    inside ``[0, limit)`` where they fit."""
    length = end - first
    if length <= size:
        return [max(0, min(limit - size, first + length // 2 - size // 2))]
    count = math.ceil(length / size)
    return [first + round(k * (length - size) / (count - 1)) for k in range(count)]


class VoiceEmbedder:
    """Resemblyzer's voice encoder, loaded once; :meth:`voices` embeds one slice's stretches."""

    name = "resemblyzer"

    def __init__(self, threads: int = 1, opts: VoiceOptions = VoiceOptions()):
        try:
            import torch
            from resemblyzer import VoiceEncoder, wav_to_mel_spectrogram
        except ImportError as exc:
            raise RuntimeError(f"--diarize needs the resemblyzer package and torch ({INSTALL})") from exc
        self.opts = opts
        self._torch = torch
        self._mel = wav_to_mel_spectrogram
        # One thread: on 2 shared cores a 2-thread LSTM spends most of its time waiting on its other half
        # (127 s of speech: 1.8 s with one thread against 8-11 s with two while the machine was busy).
        torch.set_num_threads(max(1, threads))
        self.encoder = VoiceEncoder("cpu", verbose=False)
        # The first mel spectrogram compiles librosa's numba kernels (seconds): pay that now, not on a slice.
        noise = np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE).astype(np.float32) * 0.1
        self.voices(noise, [{"start": 0.0, "end": 2.0}])

    def voices(self, audio: np.ndarray, segments: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``[{"start", "end", "vector"}]`` for the stretches of ``audio`` (float32, 16 kHz, the slice as the
        worker heard it) where ``segments`` (the slice's text, times relative to ``audio``) were spoken."""
        parts = stretches(speech_spans(segments), self.opts)
        if not parts or len(audio) == 0:
            return []
        size = round(self.opts.window_s * FRAMES_PER_S)
        hop = SAMPLE_RATE // FRAMES_PER_S
        mel = self._mel(np.ascontiguousarray(audio, dtype=np.float32))  # (frames, 40): power, not log
        if len(mel) < size:
            mel = np.pad(mel, ((0, size - len(mel)), (0, 0)))
        batch, owner = [], []
        target = 10 ** (self.opts.target_dbfs / 20)
        for k, (start, end) in enumerate(parts):
            first = min(len(mel) - 1, max(0, int(start * FRAMES_PER_S)))
            last = max(first + 1, min(len(mel), math.ceil(end * FRAMES_PER_S)))
            for w in windows(first, last, size, len(mel)):
                piece = audio[w * hop:(w + size) * hop]
                rms = float(np.sqrt(np.mean(np.square(piece, dtype=np.float64)))) if len(piece) else 0.0
                gain = max(1.0, target / rms) if rms > 0 else 1.0
                batch.append(mel[w:w + size] * gain ** 2)  # the mel is power: a gain g scales it by g²
                owner.append(k)
        with self._torch.no_grad():
            embedded = self.encoder(self._torch.from_numpy(np.stack(batch).astype(np.float32))).numpy()
        owner_ids = np.asarray(owner)
        out = []
        for k, (start, end) in enumerate(parts):
            mean = embedded[owner_ids == k].mean(axis=0)
            norm = float(np.linalg.norm(mean))
            if norm > 0 and np.isfinite(norm):
                out.append({"start": start, "end": end, "vector": np.round(mean / norm, 4).tolist()})
        return out
