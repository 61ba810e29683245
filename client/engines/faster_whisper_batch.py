"""Several slices through faster-whisper at once: one encoder pass and one beam search for the whole batch.

Why not ``WhisperModel.transcribe`` slice by slice: in its timestamp mode Whisper often stops a window a few
seconds early and expects a second window for the rest, so a 25 s slice regularly costs two full 30 s windows.
Here each slice is decoded once, without timestamps, as faster-whisper's ``BatchedInferencePipeline`` does,
and batched so the decoder's matrix products stay large.

What the batched pipeline lacks, and this adds back:

* **Text that stops early.** Without timestamps, Whisper sometimes ends a window at a change of topic and
  drops the speech after it (a radio address ending with "Thank you for listening" and a sonnet after it in
  the same slice: the sonnet was lost). Word times from the cross-attention alignment (one
  cheap decoder pass) show where the text stops; when that is more than ``remainder_s`` before the end of the
  slice, the rest is decoded again, prompted with the text so far, in a second batched round.
* **Segments with times.** The aligned words are grouped into sentence segments, so subtitles keep their
  timing; each segment carries its words (start, end, probability) and the decode's average log probability.
* **Failed decodes.** A result that is too repetitive (gzip compression ratio) or too unlikely (average log
  probability) goes through ``WhisperModel.transcribe`` with its temperature fallback (the engine's careful way).
* **Silence.** A result Whisper itself calls no-speech is dropped, with the same thresholds as ``transcribe``;
  words it invents from a silence ("Thank you.") are found by their alignment and dropped (``silence``).
* **Speech skipped beside a guard band.** A slice heard with its neighbours' speech around it (a guard band,
  see the server's ``guard``) whose decode lays one word over more than ``skipped_word_s`` skipped speech
  (a guard band of another recording can take the decoder's attention); it is decoded again from its own
  audio alone.
* **One bad slice fails only itself.** Continuation prompts of different lengths are decoded in groups of one
  length (CTranslate2 wants the start token at one position across a batch), and a batch that still raises is
  decoded again slice by slice; only a slice that fails alone is reported as failed.

This uses faster-whisper's own building blocks (``encode``, ``get_prompt``, ``find_alignment``), pinned at the
version in requirements.txt.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple

import numpy as np

from .base import MAX_WORD_CHARS, SAMPLE_RATE, Segment, Word, logprob
from .silence import without_invented

log = logging.getLogger("scatterscribe.worker")

#: Punctuation that ends a sentence, and so a segment.
SENTENCE_END = (".", "?", "!")


@dataclass(frozen=True)
class BatchOptions:
    """How a batch is decoded; thresholds as in faster-whisper's ``transcribe``."""

    beam_size: int = 5
    #: Text that ends more than this before the audio does is continued in another round. 1 s, not 2: heard
    #: after a guard band, a slice's text can stop more than a second early and lose its last words (the
    #: bench's width part found such a slice).
    remainder_s: float = 1.0
    #: Rounds of continuation at most (the first decode included).
    max_rounds: int = 3
    compression_ratio_threshold: float = 2.4
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    #: A segment is cut at the end of a sentence, or after this long without one.
    max_segment_s: float = 12.0
    #: Drop the words Whisper invents from silence (see ``silence``).
    drop_invented: bool = True
    #: A word aligned over more than this shows that the decoder skipped speech: the splitter leaves no pause
    #: over 0.4 s inside what a worker hears, so a word that long is laid over audio that got no text. A slice
    #: heard with guard bands whose text has one is decoded again from its own audio alone (see
    #: ``transcribe``).
    skipped_word_s: float = 2.0


class Steps(NamedTuple):
    """Which loaded copy of the model runs each step of a decode (copies of one model, with their own threads):
    ``encoder`` the encoder pass, ``decoder`` the beam search and the word alignment. The encoder's matrix
    products are large and gain from every thread; the decoder's, one token at a time, are small, and on a CPU
    its threads can spend more time waiting on each other than working (the engine picks its decoder by timing
    both, ``faster_whisper_engine.faster_decoder``)."""

    encoder: Any
    decoder: Any


@dataclass
class _Decoded:
    text_tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    words: list[dict]  # {"word", "start", "end", "probability"}, in seconds of the decoded audio


def sentence_segments(words: list[dict], offset_s: float, max_segment_s: float,
                      avg_logprob: float | None = None) -> list[Segment]:
    """Group aligned words into segments that end at a sentence end (or run no longer than ``max_segment_s``),
    shifted by ``offset_s``; each keeps its words and the decode's ``avg_logprob``."""
    segments: list[Segment] = []
    current: list[dict] = []
    for word in words:
        if not word["word"]:
            continue
        current.append(word)
        text = word["word"].rstrip()
        if text.endswith(SENTENCE_END) or word["end"] - current[0]["start"] >= max_segment_s:
            segments.append(_segment(current, offset_s, avg_logprob))
            current = []
    if current:
        segments.append(_segment(current, offset_s, avg_logprob))
    return segments


def _segment(words: list[dict], offset_s: float, avg_logprob: float | None) -> Segment:
    start, end = offset_s + float(words[0]["start"]), offset_s + float(words[-1]["end"])
    timed = tuple(Word(round(max(0.0, offset_s + float(w["start"])), 3),
                       round(max(0.0, offset_s + float(w["start"]), offset_s + float(w["end"])), 3),
                       w["word"].strip()[:MAX_WORD_CHARS], _probability(w.get("probability")))
                  for w in words if w["word"].strip())
    return Segment(round(start, 3), round(end, 3), "".join(w["word"] for w in words), timed, logprob(avg_logprob))


def _probability(value) -> float:
    """A word's probability as a plain float in [0, 1] (never NaN: a word of no token averages nothing)."""
    p = float(value) if value is not None else 0.0
    return round(min(1.0, max(0.0, p)), 3) if math.isfinite(p) else 0.0


def shifted(segment: Segment, offset_s: float) -> Segment:
    """A segment and its words moved ``offset_s`` later."""
    return segment._replace(start=round(segment.start + offset_s, 3), end=round(segment.end + offset_s, 3),
                            words=tuple(w._replace(start=round(w.start + offset_s, 3),
                                                   end=round(w.end + offset_s, 3)) for w in segment.words))


class BatchTranscriber:
    """Batched decoding on a loaded ``faster_whisper.WhisperModel``.

    ``fallback(audio)`` transcribes one slice the careful way (the engine's own ``transcribe``); it is used
    for a slice whose batched decode looks wrong. ``side_by_side``, when given, is a second, loaded copy of the
    model with ``parallel`` one-thread decoders (``num_workers``): a batch of several slices is then dealt out
    among them and decoded in parallel (CTranslate2 releases the GIL). A lone slice is encoded by ``model`` with
    all its threads and decoded by ``lone_decoder`` (``model`` unless given: see ``Steps``)."""

    def __init__(self, model, fallback: Callable[[np.ndarray], Iterable[Segment]],
                 options: BatchOptions = BatchOptions(), side_by_side: object | None = None,
                 parallel: int = 1, lone_decoder: object | None = None):
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model = model
        self.fallback = fallback
        self.options = options
        self.tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                                   language="en")
        self.suppress_tokens = list(get_suppressed_tokens(self.tokenizer, [-1]))
        self.parallel = max(1, parallel) if side_by_side is not None else 1
        self._lone = Steps(model, lone_decoder or model)
        self._side_by_side = Steps(side_by_side, side_by_side)
        self._pool = ThreadPoolExecutor(self.parallel, "decoder") if self.parallel > 1 else None

    def transcribe(self, audios: list[np.ndarray],
                   spans: list[tuple[float, float] | None] | None = None) -> list[list[Segment] | Exception]:
        """Segments of each slice (float32, mono, 16 kHz), in seconds from the start of that slice. ``spans``:
        where each slice's own audio lies in what it holds (the rest is guard bands of its neighbours' speech,
        see the server's ``guard``), None for all of it. A slice that cannot be decoded gets the exception in
        its place; its batch-mates are unharmed."""
        items = list(zip(audios, spans or [None] * len(audios), strict=True))
        parts = min(self.parallel, len(items))
        if parts <= 1:
            return self._heard_alone_if_skipped(self._lone, items, self._isolated(self._lone, items))
        dealt = [items[k::parts] for k in range(parts)]
        results: list[list[Segment] | Exception] = [[] for _ in audios]
        steps = self._side_by_side
        for k, part in enumerate(self._pool.map(
                lambda batch: self._heard_alone_if_skipped(steps, batch, self._isolated(steps, batch)), dealt)):
            results[k::parts] = part
        return results

    def _heard_alone_if_skipped(self, steps: Steps, items: list[tuple[np.ndarray, tuple[float, float] | None]],
                                results: list[list[Segment] | Exception]) -> list[list[Segment] | Exception]:
        """``results`` with each slice heard with guard bands whose decoder skipped speech (a word aligned over
        more than ``skipped_word_s``) decoded again from its own audio alone, its times shifted back to where
        that audio lies in what it heard.

        Why: a guard band of another recording or speaker can take the decoder's attention: a slice of a
        spontaneous monologue followed by a band of sentences read aloud was decoded as those sentences alone,
        its first word aligned over the whole monologue. A short band can be skipped the other way, the slice's
        first word dragged back over it and lost at the cut."""
        limit = self.options.skipped_word_s
        redo = [k for k, ((audio, span), result) in enumerate(zip(items, results, strict=True))
                if span is not None and not isinstance(result, Exception)
                and (span[0] > 0 or span[1] < len(audio) / SAMPLE_RATE - 0.01)
                and any(w.end - w.start > limit for segment in result for w in segment.words)]
        if not redo:
            return results
        log.info("%d of %d slices skipped speech beside their guard bands; decoding them alone", len(redo),
                 len(items))
        alone = [(items[k][0][round(items[k][1][0] * SAMPLE_RATE):round(items[k][1][1] * SAMPLE_RATE)], None)
                 for k in redo]
        results = list(results)
        for k, again in zip(redo, self._isolated(steps, alone), strict=True):
            if not isinstance(again, Exception):  # else the first result stands
                results[k] = [shifted(segment, items[k][1][0]) for segment in again]
        return results

    def _isolated(self, steps: Steps, items: list[tuple[np.ndarray, tuple[float, float] | None]]
                  ) -> list[list[Segment] | Exception]:
        """The batch decoded together; if that raises, each slice alone, so one bad slice fails only itself."""
        audios = [a for a, _ in items]
        ends = [len(a) / SAMPLE_RATE if span is None else span[1] for a, span in items]
        try:
            return self._finished(self._transcribe(steps, audios, ends), audios)
        except Exception as exc:  # noqa: BLE001 - any decoder error: retry the slices apart
            if len(audios) == 1:
                return [exc]
            log.warning("a batch of %d slices failed (%s: %s); decoding them one by one", len(audios),
                        type(exc).__name__, exc)
        results: list[list[Segment] | Exception] = []
        for audio, end in zip(audios, ends, strict=True):
            try:
                results += self._finished(self._transcribe(steps, [audio], [end]), [audio])
            except Exception as exc:  # noqa: BLE001 - reported for this slice alone
                results.append(exc)
        return results

    def _finished(self, results: list[list[Segment]], audios: list[np.ndarray]) -> list[list[Segment]]:
        """Each slice's segments without the words Whisper invented from its silences (``silence``)."""
        if not self.options.drop_invented:
            return results
        return [without_invented(segments, audio) for segments, audio in zip(results, audios, strict=True)]

    def _transcribe(self, steps: Steps, audios: list[np.ndarray], ends: list[float]) -> list[list[Segment]]:
        """Each slice decoded in as many rounds as its text needs to reach ``ends`` (the end of its own audio,
        in seconds of the slice: what a guard band after it holds is not worth another round)."""
        opts = self.options
        results: list[list[Segment]] = [[] for _ in audios]
        # Work still to decode: (slice number, offset in the slice in seconds, audio, tokens so far)
        pending = [(i, 0.0, audio, []) for i, audio in enumerate(audios) if len(audio)]
        for _round in range(opts.max_rounds):
            if not pending:
                break
            decoded = self._decode(steps, [a for _, _, a, _ in pending], [t for _, _, _, t in pending])
            still: list[tuple[int, float, np.ndarray, list[int]]] = []
            for (i, offset, audio, before), d in zip(pending, decoded, strict=True):
                verdict = self._verdict(d)
                if verdict == "silence":
                    continue
                if verdict == "failed":
                    results[i] += [shifted(s, offset) for s in self.fallback(audio)]
                    continue
                if not d.words:  # no alignment: keep the text, without times inside the slice
                    end = offset + len(audio) / SAMPLE_RATE
                    text = self.tokenizer.decode(d.text_tokens)
                    results[i].append(Segment(round(offset, 3), round(end, 3), text, (), logprob(d.avg_logprob)))
                    continue
                results[i] += sentence_segments(d.words, offset, opts.max_segment_s, d.avg_logprob)
                spoken_to = max(float(w["end"]) for w in d.words)
                if min(len(audio) / SAMPLE_RATE, ends[i] - offset) - spoken_to > opts.remainder_s:
                    cut = int(spoken_to * SAMPLE_RATE)
                    still.append((i, offset + cut / SAMPLE_RATE, audio[cut:], before + d.text_tokens))
            pending = still
        return results

    def _verdict(self, d: _Decoded) -> str:
        """"silence", "failed" (needs the careful path) or "ok", with faster-whisper's thresholds."""
        from faster_whisper.transcribe import get_compression_ratio

        opts = self.options
        unlikely = d.avg_logprob < opts.log_prob_threshold
        if d.no_speech_prob > opts.no_speech_threshold and unlikely:
            return "silence"
        text = self.tokenizer.decode(d.text_tokens).strip()
        if not text:
            return "silence"
        if unlikely or get_compression_ratio(text) > opts.compression_ratio_threshold:
            return "failed"
        return "ok"

    def _decode(self, steps: Steps, audios: list[np.ndarray], previous: list[list[int]]) -> list[_Decoded]:
        """Each slice decoded after its own text so far (``previous``). CTranslate2 decodes a batch only when
        ``<|startoftranscript|>`` sits at one position in every prompt, so the slices are decoded in groups of
        equal prompt length: the first round is one group (no text yet); a continuation round has one group
        per length of text so far (it encodes its shorter audio anew anyway)."""
        prompts = [steps.decoder.get_prompt(self.tokenizer, tokens, without_timestamps=True) for tokens in previous]
        groups: dict[int, list[int]] = {}
        for k, prompt in enumerate(prompts):
            groups.setdefault(len(prompt), []).append(k)
        decoded: list[_Decoded | None] = [None] * len(audios)
        for members in groups.values():
            found = self._decode_group(steps, [audios[k] for k in members], [prompts[k] for k in members])
            for k, d in zip(members, found, strict=True):
                decoded[k] = d
        return decoded  # type: ignore[return-value] - every slot is filled: the groups cover every slice

    def _decode_group(self, steps: Steps, audios: list[np.ndarray], prompts: list[list[int]]) -> list[_Decoded]:
        """One encoder pass and one beam search over slices whose prompts have one length, then word times
        from the alignment."""
        from faster_whisper.transcribe import pad_or_trim

        tokenizer, encoder, decoder = self.tokenizer, steps.encoder, steps.decoder
        features = np.stack([pad_or_trim(encoder.feature_extractor(a)[..., :-1]) for a in audios])
        encoded = encoder.encode(features)
        results = decoder.model.generate(encoded, prompts, beam_size=self.options.beam_size,
                                         max_length=decoder.max_length, return_scores=True,
                                         return_no_speech_prob=True, suppress_blank=True,
                                         suppress_tokens=self.suppress_tokens)
        decoded = []
        for result in results:
            tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
            n = len(result.sequences_ids[0])  # average log probability, computed as transcribe does
            decoded.append(_Decoded(tokens, result.scores[0] * n / (n + 1), result.no_speech_prob, []))
        frames = [min(encoder.feature_extractor.nb_max_frames, len(a) // encoder.feature_extractor.hop_length)
                  for a in audios]
        spoken = [k for k, d in enumerate(decoded) if d.text_tokens]
        if len(spoken) == len(decoded):
            alignments = decoder.find_alignment(tokenizer, [d.text_tokens for d in decoded], encoded, frames)
        else:  # align only what has text (an empty item cannot be aligned); the encoder output is re-made
            alignments = [[] for _ in decoded]
            if spoken:
                found = decoder.find_alignment(tokenizer, [decoded[k].text_tokens for k in spoken],
                                               encoder.encode(features[spoken]), [frames[k] for k in spoken])
                for k, words in zip(spoken, found, strict=True):
                    alignments[k] = words
        for d, words in zip(decoded, alignments, strict=True):
            _merge_punctuation(words)
            d.words = [w for w in words if w["word"]]
        return decoded


def _merge_punctuation(words: list[dict]) -> None:
    from faster_whisper.transcribe import merge_punctuations

    merge_punctuations(words, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、")
