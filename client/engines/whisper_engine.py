"""openai-whisper (PyTorch). Heavy to install (torch, and triton on Linux x86-64) but the reference Whisper.

The model is loaded once here and each slice goes to ``model.transcribe`` as a float32 array, so no ffmpeg is
needed. SpeechRecognition's whisper helpers are not used: they load the model again on every call.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from .base import Segment, logprob, words_of

DEFAULT_MODEL = "tiny.en"


class WhisperEngine:
    """``model``: a Whisper model name (downloaded once to ``~/.cache/whisper``: needs internet the first
    time) or the path of a checkpoint file. ``threads`` sets torch's CPU threads; fp16 is used on cuda only;
    ``compute_type`` means nothing here."""

    name = "whisper"
    max_slice_s = 30.0  # Whisper's window
    word_times = True  # every segment carries its aligned words

    def __init__(self, model: str = "", device: str = "cpu", compute_type: str = "int8", threads: int = 2,
                 beam_size: int = 5, slots: int = 1):
        try:
            import torch
            import whisper
        except ImportError as exc:
            raise RuntimeError("the whisper engine requires the openai-whisper package (pip install "
                               "openai-whisper; with torch and triton it takes about 2 GB)") from exc
        if device not in ("cpu", "cuda"):
            raise ValueError(f"the whisper engine runs on cpu or cuda, not {device!r}")
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda, but this torch build sees no CUDA device")
        source = model or DEFAULT_MODEL
        is_file = os.path.isfile(source)
        if not is_file and source not in whisper.available_models():
            raise ValueError(f"whisper model {source!r} is neither a checkpoint file nor one of "
                             f"{', '.join(whisper.available_models())}")
        torch.set_num_threads(max(1, threads))
        try:
            self._model = whisper.load_model(source, device=device)
        except OSError as exc:  # the download failed (no internet) or the file is unreadable
            raise RuntimeError(f"cannot load the whisper model {source!r}: {exc}; without internet, pass "
                               f"--model with the path of a checkpoint file") from exc
        self.model = Path(source).name if is_file else source
        self.beam_size = beam_size
        self._fp16 = device == "cuda"  # on the CPU whisper would warn and fall back to fp32 anyway
        # Decoding installs key/value-cache hooks on the shared model, so two slices must not decode at once.
        self._lock = threading.Lock()

    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        # One slice is at most one 30 s window, which whisper decodes in one go: segments come at the end.
        with self._lock:
            result = self._model.transcribe(np.asarray(audio, dtype=np.float32), language="en",
                                            fp16=self._fp16, beam_size=self.beam_size or None, verbose=None,
                                            word_timestamps=True)
        for seg in result["segments"]:
            # Word timestamps move segment edges onto word times, which can fall a frame before 0.
            start = max(0.0, float(seg["start"]))
            yield Segment(start, max(start, float(seg["end"])), str(seg["text"]), words_of(seg.get("words", [])),
                          logprob(seg.get("avg_logprob")))
