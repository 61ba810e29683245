"""Stitching neighbouring slices on word times: every word once, in order, whatever order slices settle in."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from server import stitch
from server.records import SliceRecord


def word(text, start, end, p=0.9):
    return {"start": start, "end": end, "word": text, "probability": p}


def spoken(n, gap_after=()):
    """n words of 0.3 s with 0.1 s between them; a pause of 0.5 s after each index in ``gap_after``."""
    words, t = [], 0.0
    for k in range(n):
        words.append(word(f"w{k}", round(t, 3), round(t + 0.3, 3)))
        t += 0.4 + (0.5 if k in gap_after else 0.0)
    return words


def hear(words, lo, hi, jitter, rng):
    """What a worker returns for audio spanning [lo, hi): the words whose true middle lies there, moved by an
    alignment error of up to ``jitter`` seconds (one drift for the decode, as Whisper's alignment errs, plus
    a little per word; the words stay in order, as an alignment keeps them)."""
    out = []
    drift = rng.uniform(-jitter, jitter)
    for w in words:
        if lo <= stitch.midpoint(w) < hi:
            shift = drift + rng.uniform(-0.04, 0.04)
            out.append(word(w["word"], max(0.0, w["start"] + shift), max(0.0, w["end"] + shift)))
    return out


def run_job(words, cut_after, guard_s, jitter, seed):
    """Slices cut in the pauses after ``cut_after``, each heard with ``guard_s`` on each side, settled in a
    shuffled order; returns the words each kept, in slice order."""
    rng = random.Random(seed)
    bounds = [0.0] + [(words[k]["end"] + words[k + 1]["start"]) / 2 for k in cut_after] + [words[-1]["end"] + 1]
    slices = [SliceRecord(index=i, start=bounds[i], end=bounds[i + 1], pieces=[(bounds[i], bounds[i + 1])])
              for i in range(len(bounds) - 1)]
    heard = [hear(words, s.start - guard_s, s.end + guard_s, jitter, rng) for s in slices]
    order = list(range(len(slices)))
    rng.shuffle(order)
    for i in order:
        segments = [{"start": w["start"], "end": w["end"], "text": w["word"], "words": [w], "avg_logprob": -0.2}
                    for w in heard[i]]
        first = max(0, i - 2)
        settled = stitch.settle(slices[first:i + 3], i - first, segments)
        slices[i].status, slices[i].text, slices[i].segments, slices[i].heard = \
            "done", settled.text, settled.segments, settled.heard
    return [[w for seg in s.segments for w in seg["words"]] for s in slices]


def test_words_on_both_sides_of_a_cut_are_kept_once():
    """Two slices cut in a short pause, each hearing 3 s of the other as a guard band, with alignment errors
    of up to 0.3 s (enough to put the words next to the cut on the wrong side): every word once, in order,
    starts never decreasing, in either settling order."""
    words = spoken(30, gap_after={14})
    for seed in range(40):
        kept = run_job(words, [14], guard_s=3.0, jitter=0.3, seed=seed)
        flat = [w for part in kept for w in part]
        assert [w["word"].lower() for w in flat] == [w["word"] for w in words], seed
        starts = [w["start"] for w in flat]
        assert starts == sorted(starts), seed
        assert all(w["end"] >= w["start"] for w in flat)


def test_a_word_both_neighbours_place_on_the_other_side_is_not_lost():
    """The first slice settled puts the word by the cut after it (its region: dropped); the second puts it
    before (also not its region): the second sees that the first did not keep it and keeps it."""
    left = SliceRecord(index=0, start=0.0, end=2.0, pieces=[(0.0, 2.0)])
    right = SliceRecord(index=1, start=2.0, end=4.0, pieces=[(2.0, 4.0)])
    a, b, c = word("a", 1.0, 1.4), word("b", 1.8, 2.1), word("c", 2.5, 2.9)
    left_seg = [{"start": 1.0, "end": 2.4, "text": "a b c", "avg_logprob": -0.1,
                 "words": [a, word("b", 1.95, 2.2), c]}]
    first = stitch.settle([left, right], 0, left_seg)
    assert [w["word"] for w in first.segments[0]["words"]] == ["a"]
    left.status, left.segments, left.heard = "done", first.segments, first.heard
    right_seg = [{"start": 1.8, "end": 2.9, "text": "b c", "avg_logprob": -0.1, "words": [b, c]}]
    second = stitch.settle([left, right], 1, right_seg)
    assert [w["word"] for seg in second.segments for w in seg["words"]] == ["b", "c"]


def test_a_word_both_neighbours_keep_is_not_doubled():
    """Both slices put the word by the cut in their own region: the one settled second drops its copy."""
    left = SliceRecord(index=0, start=0.0, end=2.0, pieces=[(0.0, 2.0)])
    right = SliceRecord(index=1, start=2.0, end=4.0, pieces=[(2.0, 4.0)])
    first = stitch.settle([left, right], 1, [{"start": 1.9, "end": 3.0, "text": "b c", "avg_logprob": -0.1,
                                               "words": [word("b", 2.0, 2.3), word("c", 2.5, 2.9)]}])
    right.status, right.segments, right.heard = "done", first.segments, first.heard
    second = stitch.settle([left, right], 0, [{"start": 1.0, "end": 2.0, "text": "a b", "avg_logprob": -0.1,
                                                "words": [word("a", 1.0, 1.4), word("b", 1.6, 1.9)]}])
    assert [w["word"] for seg in second.segments for w in seg["words"]] == ["a"]
    assert first.text == "b c"


@settings(max_examples=150, deadline=None)
@given(n=st.integers(6, 60), cuts=st.data(), guard_s=st.floats(1.6, 6.0), jitter=st.floats(0.0, 0.35),
       seed=st.integers(0, 10_000))
def test_any_cuts_any_order_every_word_once(n, cuts, guard_s, jitter, seed):
    """Any number of cuts in pauses, guard bands overlapping the neighbours, alignment errors up to 0.35 s,
    any settling order: the job's words are the spoken words, each once, in order, starts never
    decreasing."""
    gaps = sorted(cuts.draw(st.sets(st.integers(0, n - 2), max_size=max(1, n // 4))))
    words = spoken(n, gap_after=set(gaps))
    kept = run_job(words, gaps, guard_s, jitter, seed)
    flat = [w for part in kept for w in part]
    assert [w["word"].lower() for w in flat] == [w["word"] for w in words]
    starts = [w["start"] for w in flat]
    assert starts == sorted(starts)


def test_kept_words_stay_in_the_workers_segments_with_the_contracts_shape():
    """The words kept of each of the worker's segments form one stored segment (its span, text, avg_logprob,
    and words with only the contract's keys); a segment with no word kept is gone."""
    this = SliceRecord(index=0, start=0.0, end=2.0, pieces=[(0.0, 2.0)])
    after = SliceRecord(index=1, start=2.6, end=5.0, pieces=[(2.6, 5.0)])
    segments = [{"start": 0.0, "end": 0.7, "text": "Hello there.", "avg_logprob": -0.3,
                 "words": [word("Hello", 0.0, 0.3), word("there.", 0.4, 0.7)]},
                {"start": 1.0, "end": 1.5, "text": "Next one", "avg_logprob": -0.5,
                 "words": [word("Next", 1.0, 1.2), word("one", 1.3, 1.5)]},
                {"start": 2.8, "end": 3.5, "text": "guard band", "avg_logprob": -0.2,
                 "words": [word("guard", 2.8, 3.0), word("band", 3.1, 3.5)]}]
    settled = stitch.settle([this, after], 0, segments)
    assert [s["text"] for s in settled.segments] == ["Hello there.", "Next one"]
    assert settled.segments[0]["start"] == 0.0 and settled.segments[0]["end"] == 0.7
    assert [s["avg_logprob"] for s in settled.segments] == [-0.3, -0.5]
    assert set(settled.segments[0]["words"][0]) == {"start", "end", "word", "probability"}
    assert len(settled.heard) == 6 and settled.text == "Hello there. Next one"


def test_an_engine_without_word_times_keeps_its_segments_by_time():
    """Segments without words (Sphinx, Google) cannot be stitched: those whose middle lies in the slice's
    region are kept whole, and nothing is kept as heard words."""
    this = SliceRecord(index=1, start=10.0, end=20.0, pieces=[(10.0, 20.0)])
    before = SliceRecord(index=0, start=0.0, end=9.0, pieces=[(0.0, 9.0)])
    settled = stitch.settle([before, this], 1, [{"start": 10.0, "end": 19.0, "text": "all of it", "words": [],
                                                  "avg_logprob": None}])
    assert settled.text == "all of it" and settled.heard == []


def test_a_slice_after_a_sentence_end_starts_with_a_capital():
    """Joins read cleanly: after a neighbour that ends a sentence the next slice's first word gets its
    capital; after one that does not, or when nothing is known before it, it is left as said; a stray leading
    punctuation mark is dropped; a quote before the first letter is kept."""
    assert [w["word"] for w in stitch.clean_start([word("ask", 0, 1), word("what", 1, 2)], "you.")] == \
        ["Ask", "what"]
    assert stitch.clean_start([word("ask", 0, 1)], "you,")[0]["word"] == "ask"
    assert stitch.clean_start([word("looking", 0, 1)], "Three.\u201d")[0]["word"] == "Looking"
    assert [w["word"] for w in stitch.clean_start([word(".", 0, 0.1), word("and", 0, 1)], "end")] == ["and"]
    assert stitch.clean_start([word("\u201chello", 0, 1)], "it.")[0]["word"] == "\u201cHello"
    assert stitch.clean_start([word("hello", 0, 1)], None)[0]["word"] == "hello"  # nothing known before it


def test_settled_slices_join_with_a_capital_either_order():
    """Two slices cut after "...for you.": whichever settles first, the second slice's text starts "Ask",
    from the neighbour's last word when it is done, else from the word its own guard band heard."""
    for order in ([0, 1], [1, 0]):
        left = SliceRecord(index=0, start=0.0, end=2.0, pieces=[(0.0, 2.0)])
        right = SliceRecord(index=1, start=2.2, end=4.0, pieces=[(2.2, 4.0)])
        heard = {0: [word("for", 1.0, 1.4), word("you.", 1.5, 1.9), word("ask", 2.3, 2.6)],
                 1: [word("you.", 1.5, 1.9), word("ask", 2.3, 2.6), word("not", 2.7, 3.0)]}
        slices = [left, right]
        for i in order:
            settled = stitch.settle(slices, i, [{"start": 0, "end": 4, "text": "x", "avg_logprob": -0.1,
                                                 "words": heard[i]}])
            slices[i].status, slices[i].segments, slices[i].heard, slices[i].text = \
                "done", settled.segments, settled.heard, settled.text
        assert (left.text, right.text) == ("for you.", "Ask not"), order
