"""The worker's voices (``--diarize``): where the stretches fall, and what the real encoder makes of real voices."""

import numpy as np
import pytest

from client.cli import build_parser, settings_from
from client.diarize import VoiceOptions, speech_spans, stretches, windows
from tests.support import corpus_file

RATE = 16000


def read(name: str) -> np.ndarray:
    from server.audio import PcmFile
    return PcmFile(corpus_file(name))[:].astype(np.float32) / 32768.0


def test_a_pause_between_words_starts_a_new_stretch():
    """Words closer than pause_s are one stretch; a longer gap starts another."""
    words = [(0.0, 0.4), (0.5, 0.9), (0.95, 1.3), (2.0, 2.4), (2.5, 2.8)]
    assert stretches(words, VoiceOptions(pause_s=0.3)) == [(0.0, 1.3), (2.0, 2.8)]


def test_a_long_stretch_is_cut_into_equal_parts_no_longer_than_the_maximum():
    """10 s of words without a pause, at most 3.2 s a part: four parts of 2.5 s that cover it exactly."""
    words = [(k * 0.5, k * 0.5 + 0.45) for k in range(20)]
    parts = stretches(words, VoiceOptions(max_stretch_s=3.2))
    assert len(parts) == 4 and parts[0][0] == 0.0 and parts[-1][1] == 9.95
    assert all(e - s <= 3.2 for s, e in parts)
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))


def test_word_times_are_used_when_there_are_any_else_segment_times():
    """Segments with words give the words' spans; segments without give their own."""
    with_words = [{"start": 0.0, "end": 3.0, "text": "a b", "words": [{"start": 0.2, "end": 0.6, "word": "a"},
                                                                       {"start": 2.0, "end": 2.9, "word": "b"}]}]
    assert speech_spans(with_words) == [(0.2, 0.6), (2.0, 2.9)]
    assert speech_spans([{"start": 1.0, "end": 4.0, "text": "a b"}]) == [(1.0, 4.0)]
    assert speech_spans([{"start": 1.0, "end": 1.0, "text": ""}]) == []


@pytest.mark.parametrize("first,end", [(0, 10), (50, 210), (0, 160), (100, 500), (1990, 2000), (0, 1)])
def test_windows_cover_the_stretch_and_stay_in_the_audio(first, end):
    """Every frame of the stretch is in some window; windows are 160 frames and inside the 2000 frames."""
    starts = windows(first, end, 160, 2000)
    covered = set()
    for w in starts:
        assert 0 <= w and w + 160 <= 2000
        covered |= set(range(w, w + 160))
    assert set(range(first, end)) <= covered
    assert len(starts) == max(1, -(-(end - first) // 160))


def test_the_worker_flag_turns_voices_on_and_is_off_by_default():
    """``--diarize`` is off unless given."""
    assert settings_from(build_parser().parse_args([]), {})["diarize"] is False
    assert settings_from(build_parser().parse_args(["--diarize"]), {})["diarize"] is True


def test_real_voices_of_one_person_are_alike_and_of_two_people_are_not(voice_embedder):
    """Stretches of two LJ Speech sentences (one woman) and of the 2008 radio address (a man): every pair of
    the woman's stretches is more alike than any pair across the two people, the woman's pairs lie well above
    the similarity the server merges at, and the pairs across lie below it."""
    from server.speakers import LabelOptions

    def voices(name: str, start: float, end: float) -> np.ndarray:
        audio = read(name)
        out = voice_embedder.voices(audio, [{"start": start, "end": end, "text": "x"}])
        assert len(out) == -(-(end - start) // 3.2)  # cut into parts of at most 3.2 s
        assert all(0 <= v["start"] < v["end"] <= len(audio) / RATE for v in out)
        vectors = np.array([v["vector"] for v in out])
        assert vectors.shape[1] == 256 and np.all(np.isfinite(vectors))
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
        return vectors

    woman = np.vstack([voices("ljspeech_LJ001-0001.wav", 0.3, 9.3), voices("ljspeech_LJ001-0003.wav", 0.3, 9.3)])
    man = voices("bush_radio_address_2008-11-01.wav", 10.0, 19.0)
    same = (woman @ woman.T)[np.triu_indices(len(woman), 1)]
    across = (woman @ man.T).ravel()
    threshold = LabelOptions().same_speaker_similarity
    assert same.min() > across.max()
    assert same.min() > threshold + 0.15 and across.max() < threshold


def test_a_slice_without_text_has_no_voices(voice_embedder):
    """No words, no stretches: nothing to embed (silence costs nothing)."""
    assert voice_embedder.voices(np.zeros(RATE * 3, np.float32), []) == []
