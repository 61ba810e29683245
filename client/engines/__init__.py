"""Speech engines a worker can run; each loads its model once, in its constructor."""

from __future__ import annotations

import importlib
from typing import Any, Callable

from .base import BatchEngine, Engine, Segment


def _lazy(module: str, cls: str) -> Callable[..., Engine]:
    """A factory that imports the engine's module only when the engine is built: a worker machine needs only
    its own engine's libraries."""
    def factory(**opts: Any) -> Engine:
        return getattr(importlib.import_module(f".{module}", __name__), cls)(**opts)
    return factory


#: Engine name → factory.
ENGINES: dict[str, Callable[..., Engine]] = {
    "faster-whisper": _lazy("faster_whisper_engine", "FasterWhisperEngine"),
    "whisper": _lazy("whisper_engine", "WhisperEngine"),
    "sphinx": _lazy("sphinx_engine", "SphinxEngine"),
    "google": _lazy("google_engine", "GoogleEngine"),
    "sleep": _lazy("sleep_engine", "SleepEngine"),  # for benchmarks only: sleeps instead of transcribing
}


def create_engine(name: str, **opts: Any) -> Engine:
    """Build (and so load) the engine called ``name`` with the worker's options."""
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose from: {', '.join(ENGINES)}") from None
    return factory(**opts)


__all__ = ["ENGINES", "BatchEngine", "Engine", "Segment", "create_engine"]
