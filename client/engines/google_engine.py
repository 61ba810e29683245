"""Google's free web speech API through SpeechRecognition's ``recognize_google``. Needs internet; nothing to
load but the library, and no GPU or threads to speak of.

The API takes about a minute of audio per request in theory, but its users report empty answers for anything
much past 30 s (SpeechRecognition issues #61, #247), so this engine announces 25 s as its longest slice and
the server cuts the recordings it serves to fit. Each slice becomes one segment: the API gives no timings, so
the segment has no words (``words`` empty, ``avg_logprob`` None) and the page and subtitles share its time out
over its words.
"""

from __future__ import annotations

import os
import re
from typing import Iterator

import numpy as np

from .base import SAMPLE_RATE, Segment, pcm16_bytes

#: Where requests go: SpeechRecognition's default endpoint unless this variable names another (a proxy).
ENDPOINT_ENV = "SCATTERSCRIBE_GOOGLE_URL"
#: An API key of your own; without one SpeechRecognition sends its generic key.
KEY_ENV = "SCATTERSCRIBE_GOOGLE_KEY"
DEFAULT_LANGUAGE = "en-US"


class GoogleEngine:
    """``model``: the language tag sent with each request (default en-US; e.g. en-GB). ``device``,
    ``threads``, ``compute_type``, ``beam_size`` and ``slots`` mean nothing here beyond how many requests the
    worker has in flight."""

    name = "google"
    max_slice_s = 25.0

    def __init__(self, model: str = "", device: str = "cpu", compute_type: str = "int8", threads: int = 2,
                 beam_size: int = 5, slots: int = 1):
        try:
            import speech_recognition
        except ImportError as exc:
            raise RuntimeError("the google engine requires the SpeechRecognition package "
                               "(pip install SpeechRecognition)") from exc
        language = model or DEFAULT_LANGUAGE
        if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", language):
            raise ValueError(f"the google engine's --model is a language tag such as en-US, not {language!r}")
        self.model = language
        self._sr = speech_recognition
        self._recognizer = speech_recognition.Recognizer()
        self._recognizer.operation_timeout = 60  # seconds for one request; None would wait for ever
        self._endpoint = os.environ.get(ENDPOINT_ENV) or None
        self._key = os.environ.get(KEY_ENV) or None

    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        data = self._sr.AudioData(pcm16_bytes(audio), SAMPLE_RATE, 2)
        extra = {"endpoint": self._endpoint} if self._endpoint else {}
        try:
            text = self._recognizer.recognize_google(data, key=self._key, language=self.model, **extra)
        except self._sr.UnknownValueError:  # Google heard no words: an empty slice, not a failure
            return
        except self._sr.RequestError as exc:  # no connection, quota, refused key: another worker may retry
            raise RuntimeError(f"Google speech request failed: {exc}") from exc
        yield Segment(0.0, round(len(audio) / SAMPLE_RATE, 3), str(text), (), None)  # nothing timed to give
