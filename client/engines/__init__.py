"""Speech engines a worker can run; each loads its model once, in its constructor."""

from __future__ import annotations

from typing import Any, Callable

from .base import Engine, Segment


def _faster_whisper(**opts: Any) -> Engine:
    from .faster_whisper_engine import FasterWhisperEngine
    return FasterWhisperEngine(**opts)


def _sleep(**opts: Any) -> Engine:
    from .sleep_engine import SleepEngine
    return SleepEngine(**opts)


#: Engine name → factory. Factories import their library lazily, so a worker needs only its own engine's.
ENGINES: dict[str, Callable[..., Engine]] = {
    "faster-whisper": _faster_whisper,
    "sleep": _sleep,  # for benchmarks only: sleeps instead of transcribing (sleep_engine.py)
}


def create_engine(name: str, **opts: Any) -> Engine:
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose from: {', '.join(ENGINES)}") from None
    return factory(**opts)


__all__ = ["ENGINES", "Engine", "Segment", "create_engine"]
