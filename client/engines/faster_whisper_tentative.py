"""Tentative text with faster-whisper: one quick decode of a live recording's open part (``server/tentative.py``).

Cheaper than a slice's decode, and bounded however long the open part grows:

* **Greedy**, one window, no word alignment, no second round, no temperature fallback: the text is provisional,
  and the slice's own decode replaces it.
* **The stable prefix is forced**, not searched: the words the last two decodes agreed on go into the prompt
  after ``<|notimestamps|>`` and the decoder continues from them, so it only generates the words after them
  (the prefix costs one pass over its tokens, not a step per token), and those words come out exactly as the
  page shows them already.
* **A bounded number of tokens**: about as many as the audio can hold, so a decode that loops stops early.

The encoder always sees one 30 s window (Whisper's own; a shorter input makes tiny.en repeat itself), so its
cost is fixed per request. Text Whisper calls no speech, or that repeats itself, gives back only the prefix.
Neither step can be interrupted, but between them the caller may abandon the decode (a slice has arrived: it
goes first).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .base import SAMPLE_RATE

#: Tokens allowed per second of audio (speech runs at about 4), plus a few for punctuation.
TOKENS_PER_S = 8
TOKENS_SPARE = 16


class TentativeDecoder:
    """Tentative decodes on a loaded ``faster_whisper.WhisperModel`` (thresholds as its ``transcribe``): its
    encoder pass on ``model``, its decoding on ``decoder`` (``model`` unless given; see
    ``faster_whisper_batch.Steps``)."""

    def __init__(self, model, no_speech_threshold: float = 0.6, log_prob_threshold: float = -1.0,
                 compression_ratio_threshold: float = 2.4, decoder=None):
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model = model
        self.decoder = decoder or model
        self.tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                                   language="en")
        self.suppress_tokens = list(get_suppressed_tokens(self.tokenizer, [-1]))
        self.no_speech_threshold = no_speech_threshold
        self.log_prob_threshold = log_prob_threshold
        self.compression_ratio_threshold = compression_ratio_threshold

    def decode(self, audio: np.ndarray, prefix: str = "", abandon: Callable[[], bool] | None = None) -> str | None:
        """The text of ``audio`` (float32, mono, 16 kHz, at most 30 s), starting with ``prefix``; None when
        ``abandon()``, asked once the audio is encoded, says to give up."""
        from faster_whisper.transcribe import get_compression_ratio, pad_or_trim

        model, decoder, tokenizer = self.model, self.decoder, self.tokenizer
        prefix = " ".join(prefix.split())
        features = pad_or_trim(model.feature_extractor(audio)[..., :-1])
        encoded = model.encode(features[np.newaxis])
        if abandon is not None and abandon():
            return None
        prompt = decoder.get_prompt(tokenizer, [], without_timestamps=True, prefix=prefix or None)
        budget = len(prompt) + int(len(audio) / SAMPLE_RATE * TOKENS_PER_S) + TOKENS_SPARE
        result = decoder.model.generate(encoded, [prompt], beam_size=1, max_length=min(decoder.max_length, budget),
                                        return_scores=True, return_no_speech_prob=True,
                                        suppress_blank=not prefix, suppress_tokens=self.suppress_tokens)[0]
        # The sequence holds the forced prefix too: the text starts with it exactly.
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        text = tokenizer.decode(tokens).strip()
        n = len(result.sequences_ids[0])
        avg_logprob = result.scores[0] * n / (n + 1)
        if result.no_speech_prob > self.no_speech_threshold and avg_logprob < self.log_prob_threshold:
            return prefix
        if text and get_compression_ratio(text) > self.compression_ratio_threshold:
            return prefix
        return text
