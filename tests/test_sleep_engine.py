"""The benchmarking engine: it sleeps its rate times the audio's length, and refuses a nonsense rate."""

import time

import numpy as np
import pytest

from client.engines import create_engine


def test_sleeps_for_its_rate_times_the_audio():
    """Two seconds of audio at 0.05 s per second: at least 0.1 s asleep, one segment spanning the audio."""
    engine = create_engine("sleep", model="0.05", threads=4, slots=2)
    t0 = time.perf_counter()
    segments = list(engine.transcribe(np.zeros(32000, np.float32)))
    assert time.perf_counter() - t0 >= 0.1
    assert [(s.start, s.end) for s in segments] == [(0.0, 2.0)]
    assert engine.name == "sleep" and engine.model == "0.05"


@pytest.mark.parametrize("model", ["fast", "-1", "1000"])
def test_a_nonsense_rate_is_refused(model):
    """A rate that is not a number between 0 and 100 is refused when the engine is made."""
    with pytest.raises(ValueError, match="sleep engine"):
        create_engine("sleep", model=model)
