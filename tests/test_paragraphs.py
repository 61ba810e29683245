"""Paragraphs (server/paragraphs.py): where a transcript breaks, for the page and the .txt."""

from hypothesis import given
from hypothesis import strategies as st

from server.paragraphs import ParagraphOptions, breaks, group


def seg(start, end, text="words here.", speaker=None):
    item = {"start": start, "end": end, "text": text}
    if speaker is not None:
        item["speaker"] = speaker
    return item


def test_a_pause_of_a_second_and_a_half_starts_a_paragraph():
    """1.4 s of silence keeps the paragraph; 1.5 s starts a new one."""
    items = [seg(0, 3), seg(4.4, 7), seg(8.5, 10)]
    assert breaks(items) == [0, 2]


def test_a_change_of_speaker_starts_a_paragraph_once_speakers_are_known():
    """Without speakers nothing breaks between close segments; with them, each change does."""
    assert breaks([seg(0, 2), seg(2.1, 4), seg(4.1, 6)]) == [0]
    assert breaks([seg(0, 2, speaker="A"), seg(2.1, 4, speaker="A"), seg(4.1, 6, speaker="B")]) == [0, 2]


def test_a_long_stretch_breaks_at_a_sentence_end_after_45_s_and_anywhere_after_75_s():
    """Continuous speech: after 45 s the next sentence end closes the paragraph; with no sentence end at all
    it closes at 75 s."""
    sentences = [seg(t, t + 4.9, "and so on.") for t in range(0, 120, 5)]
    assert breaks(sentences) == [0, 9, 18]  # 45 s in at item 9, and item 8 ended a sentence
    run_on = [seg(t, t + 4.9, "and so on") for t in range(0, 200, 5)]
    assert breaks(run_on) == [0, 15, 30]


def test_nothing_and_one_item():
    assert breaks([]) == [] and group([]) == []
    assert group([seg(0, 1)]) == [[0]]


@given(st.lists(st.tuples(st.floats(0, 30), st.floats(0, 10), st.sampled_from(["a.", "b", ""]),
                          st.sampled_from([None, "A", "B"])), max_size=40))
def test_every_item_is_in_exactly_one_paragraph_in_order(raw):
    """Whatever the times, the paragraphs cover the items once, in order, and none is longer than max_s plus
    its last item's length."""
    items, t = [], 0.0
    for gap, length, text, speaker in raw:
        t += gap
        items.append(seg(t, t + length, text, speaker))
        t += length
    paras = group(items)
    assert [i for p in paras for i in p] == list(range(len(items)))
    opts = ParagraphOptions()
    for p in paras:
        assert items[p[-1]]["start"] - items[p[0]]["start"] < opts.max_s + 1e-9


def test_an_unlabelled_item_does_not_carry_one_speaker_into_another():
    """Items with no speaker (a worker without --diarize, a slice not labelled yet) sit in the paragraph they
    fall in, but the next labelled item is compared with the paragraph's last known speaker: A, ?, B breaks
    before B; A, ?, A does not; ?, A, B breaks before B."""
    assert breaks([seg(0, 2, speaker="A"), seg(2.1, 4), seg(4.1, 6, speaker="B")]) == [0, 2]
    assert breaks([seg(0, 2, speaker="A"), seg(2.1, 4), seg(4.1, 6, speaker="A")]) == [0]
    assert breaks([seg(0, 2), seg(2.1, 4, speaker="A"), seg(4.1, 6), seg(6.1, 8, speaker="B")]) == [0, 3]


@given(st.lists(st.tuples(st.floats(0, 2), st.sampled_from([None, None, "A", "B", "C"])), max_size=40))
def test_no_paragraph_holds_two_known_speakers(raw):
    """Whatever the labels and pauses, each paragraph's labelled items all have one speaker."""
    items, t = [], 0.0
    for gap, speaker in raw:
        items.append(seg(t + gap, t + gap + 1, "words", speaker))
        t += gap + 1
    for p in group(items):
        assert len({items[i]["speaker"] for i in p if "speaker" in items[i]}) <= 1
