"""CMU Sphinx: SpeechRecognition's ``recognize_sphinx`` recogniser with its bundled US English model. Fully
offline, CPU only, one thread per slice; much less accurate than Whisper.

``recognize_sphinx`` builds a new pocketsphinx decoder, which loads the model, on every call (``python -m
bench.engines`` measures what that costs a slice). This engine builds the decoder once, with the configuration
and model files ``recognize_sphinx`` uses, and runs the same decoding steps for each slice, so it gives
``recognize_sphinx``'s text (a test checks that) without the reload. The decoder's word timings give the
segments and their words: each word's start and end (its frames) and its posterior probability, which
pocketsphinx computes for the best path; Sphinx has no average log probability to give (None).
"""

from __future__ import annotations

import math
import os
import queue
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .base import SAMPLE_RATE, Segment, Word, pcm16_bytes

MODEL = "en-US"
#: A pause at least this long between words starts a new segment.
SEGMENT_PAUSE_S = 0.3


def model_files(speech_recognition: Any) -> tuple[str, str, str]:
    """Acoustic model folder, language model and dictionary that ``recognize_sphinx`` uses for en-US."""
    base = Path(speech_recognition.__file__).resolve().parent / "pocketsphinx-data" / MODEL
    files = (base / "acoustic-model", base / "language-model.lm.bin", base / "pronounciation-dictionary.dict")
    if not all(f.exists() for f in files):
        raise RuntimeError(f"the sphinx engine needs SpeechRecognition's English model, missing under {base}")
    return tuple(str(f) for f in files)  # type: ignore[return-value]


class SphinxEngine:
    """``model``: empty or "en-US" (the one model shipped). Each of the ``slots`` gets its own decoder (a
    pocketsphinx decoder serves one utterance at a time); ``device``, ``threads``, ``compute_type`` and
    ``beam_size`` mean nothing here."""

    name = "sphinx"
    max_slice_s = 30.0

    def __init__(self, model: str = "", device: str = "cpu", compute_type: str = "int8", threads: int = 2,
                 beam_size: int = 5, slots: int = 1):
        try:
            import speech_recognition
        except ImportError as exc:
            raise RuntimeError("the sphinx engine requires the SpeechRecognition package "
                               "(pip install SpeechRecognition pocketsphinx)") from exc
        try:
            from pocketsphinx import Config, Decoder
        except ImportError as exc:
            raise RuntimeError("the sphinx engine requires the pocketsphinx package "
                               "(pip install pocketsphinx)") from exc
        if model not in ("", MODEL):
            raise ValueError(f"the sphinx engine has one model, {MODEL!r}, not {model!r}")
        if device != "cpu":
            raise ValueError(f"the sphinx engine runs on the cpu only, not {device!r}")
        hmm, lm, dictionary = model_files(speech_recognition)
        self.model = MODEL
        self._decoders: queue.Queue = queue.Queue()
        for _ in range(max(1, slots)):
            config = Config()  # the same settings recognize_sphinx gives its decoder
            config.set_string("-hmm", hmm)
            config.set_string("-lm", lm)
            config.set_string("-dict", dictionary)
            config.set_string("-logfn", os.devnull)
            self._decoders.put(Decoder(config))
        self._frame_s = 1.0 / float(Config()["frate"])

    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        decoder = self._decoders.get()
        try:
            decoder.start_utt()
            decoder.process_raw(pcm16_bytes(audio), False, True)  # search on; the slice is one utterance
            decoder.end_utt()
            frame = self._frame_s
            words = [] if decoder.hyp() is None else \
                [(s.word, s.start_frame * frame, (s.end_frame + 1) * frame, s.prob) for s in decoder.seg()]
        finally:
            self._decoders.put(decoder)
        yield from _segments(words, len(audio) / SAMPLE_RATE)


def _segments(words: list[tuple[str, float, float, float]], duration_s: float) -> Iterator[Segment]:
    """Words and fillers (``<sil>``, ``[NOISE]``, ...) with their times and posterior probabilities → segments
    that break at pauses, each with its words."""
    current: list[tuple[str, float, float, float]] = []
    for word, start, end, prob in words:
        if word[0] in "<[+":  # a filler, not a word
            if end - start >= SEGMENT_PAUSE_S and current:
                yield _segment(current, duration_s)
                current = []
            continue
        current.append((re.sub(r"\(\d+\)$", "", word), start, end, prob))  # "meters(2)": second pronunciation
    if current:
        yield _segment(current, duration_s)


def _segment(words: list[tuple[str, float, float, float]], duration_s: float) -> Segment:
    text = " ".join(w for w, _, _, _ in words)
    timed = tuple(Word(round(min(start, duration_s), 3), round(min(end, duration_s), 3), word,
                       round(min(1.0, max(0.0, float(prob))), 3) if math.isfinite(prob) else 0.0)
                  for word, start, end, prob in words)
    return Segment(round(words[0][1], 3), round(min(words[-1][2], duration_s), 3), text, timed, None)
