"""The captions bench's arithmetic (bench/live_captions.py) on page states made up here: when a word reached the
page's microphone, when it was first shown. The bench itself runs Chromium and real workers at the speed of
speech (``python -m bench live --quick`` checks it end to end in a few minutes); these check what it counts."""

import pytest

from bench.live_captions import first_shown, spoken_at, words_of


def test_words_are_compared_without_case_or_punctuation():
    assert words_of("A gold ring, will PLEASE most  any girl.") == ["a", "gold", "ring", "will", "please", "most",
                                                                   "any", "girl"]
    assert words_of("The neighbor's house — gone.") == ["the", "neighbor's", "house", "gone"]


def test_a_moment_of_the_recording_maps_to_when_its_chunk_reached_the_page():
    """The chunk that holds 0.6 s of audio arrived when the recorded length reached 0.75 s, at 1750 ms: that
    moment was captured 150 ms before."""
    clock = [[1000.0, 0.0], [1500.0, 0.5], [1750.0, 0.75], [2000.0, 1.0]]
    assert spoken_at(clock, 0.6) == pytest.approx(1600.0)
    assert spoken_at(clock, 0.5) == pytest.approx(1500.0)
    assert spoken_at(clock, 1.5) is None, "never recorded"


def test_a_word_counts_as_shown_only_once_it_is_spoken_and_in_order():
    """Each reference word's first state holding it, aligned to the reference spoken by then: a word the page
    shows before it was spoken (the same word earlier) does not count for the later one; a wrong word is not
    shown; a word shown tentatively, gone, then shown again keeps its first time."""
    reference = ["the", "cat", "saw", "the", "dog"]
    spoken = [100.0, 1000.0, 2000.0, 3000.0, 4000.0]
    states = [{"t": 150.0, "all": "the"}, {"t": 1200.0, "all": "the cat sew"}, {"t": 2200.0, "all": "the cat saw"},
              {"t": 3400.0, "all": "the cat saw the"}, {"t": 4500.0, "all": "the"},
              {"t": 5000.0, "all": "the cat saw the dog"}]
    assert first_shown(states, "all", reference, spoken) == [150.0, 1200.0, 2200.0, 3400.0, 5000.0]
