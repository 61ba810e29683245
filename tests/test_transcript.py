"""Reassembly: slices back in order, times back on the recording's timeline, subtitles well formed."""

import json
import random
import re
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from server import speakers
from server.records import JobRecord, SliceRecord
from server.transcript import join_text, shift_segments, timed_segments, to_original_time, to_srt, to_txt, to_vtt
from server.views import paragraph_view


def test_time_in_a_slice_maps_through_its_pieces():
    """A slice made of pieces 10–12 s and 20–25 s: 1 s in is 11 s, 3 s in is 21 s, past the end clamps."""
    pieces = [(10.0, 12.0), (20.0, 25.0)]
    assert to_original_time(0.0, pieces) == 10.0
    assert to_original_time(1.0, pieces) == 11.0
    assert to_original_time(3.0, pieces) == 21.0
    assert to_original_time(99.0, pieces) == 25.0


def make_job(order, n=None):
    """n slices of which those in ``order`` arrive, in that order; slice i says 'word{i}'."""
    n = len(order) if n is None else n
    slices = [SliceRecord(index=i, start=10.0 * i, end=10.0 * i + 8, pieces=[(10.0 * i, 10.0 * i + 8)])
              for i in range(n)]
    for i in order:
        s = slices[i]
        s.status, s.text = "done", f"word{i}"
        s.segments = shift_segments([{"start": 0.5, "end": 7.0, "text": f" word{i}"}], s.pieces)
    return JobRecord(id="j", name="x.wav", source="upload", created_at=0, duration=10.0 * n, slices=slices)


def test_out_of_order_arrivals_join_in_order():
    """Whatever order slices finish in, the text and the segments come out in recording order."""
    order = list(range(12))
    random.Random(5).shuffle(order)
    job = make_job(order)
    assert join_text(job.slices) == " ".join(f"word{i}" for i in range(12))
    starts = [seg["start"] for seg in timed_segments(job)]
    assert starts == sorted(starts)


def test_times_are_monotonic_and_within_the_recording():
    """Segment times never go backwards and never pass the recording's end, even from a sloppy worker."""
    pieces = [(0.0, 4.0), (6.0, 9.0)]
    sloppy = [{"start": 2.0, "end": 1.0, "text": "a"}, {"start": 1.5, "end": 3.0, "text": "b"},
              {"start": 5.0, "end": 50.0, "text": "c"}, {"start": 0, "end": 0, "text": "  "}]
    segments = shift_segments(sloppy, pieces)
    assert [s["text"] for s in segments] == ["a", "b", "c"]
    for s in segments:
        assert 0.0 <= s["start"] <= s["end"] <= 9.0
    assert [s["start"] for s in segments] == sorted(s["start"] for s in segments)


def test_empty_and_failed_slices_are_visible_not_silent():
    """No slices → empty text; a failed slice leaves a marker with its time span, never a silent gap."""
    assert join_text([]) == ""
    job = make_job([0, 2], n=3)
    job.slices[1].status, job.slices[1].error = "failed", "engine crashed"
    text = join_text(job.slices)
    assert text.startswith("word0 [0:10.0–0:18.0 could not be transcribed: engine crashed]")
    assert text.endswith("word2")


def test_srt_and_vtt_are_well_formed():
    """Numbered SRT cues with comma milliseconds; WEBVTT header and dot milliseconds."""
    job = make_job([1, 0])
    srt = to_srt(job)
    assert re.match(r"1\n00:00:00,500 --> 00:00:07,000\nword0\n\n2\n00:00:10,500 --> 00:00:17,000\nword1\n$", srt)
    vtt = to_vtt(job)
    assert vtt.startswith("WEBVTT\n\n00:00:00.500 --> 00:00:07.000\nword0\n")


def test_words_map_through_the_pieces_with_their_probability():
    """A segment's words move to the recording's timeline through the slice's pieces, as its own times do,
    stripped of Whisper's leading space, with their probability and the segment's avg_logprob kept."""
    pieces = [(10.0, 12.0), (20.0, 25.0)]
    worker = [{"start": 0.5, "end": 3.5, "text": " Hello there.", "avg_logprob": -0.25,
               "words": [{"start": 0.5, "end": 1.0, "word": " Hello", "probability": 0.9},
                         {"start": 2.5, "end": 3.5, "word": " there.", "probability": 0.75}]}]
    [segment] = shift_segments(worker, pieces)
    assert segment == {"start": 10.5, "end": 21.5, "text": "Hello there.", "avg_logprob": -0.25,
                       "words": [{"start": 10.5, "end": 11.0, "word": "Hello", "probability": 0.9},
                                 {"start": 20.5, "end": 21.5, "word": "there.", "probability": 0.75}]}


def test_malformed_words_are_left_out_not_fatal():
    """Words that are not objects, have no text, or carry times that are not finite numbers are dropped; the
    rest of the segment is kept; times never go backwards; a probability outside [0, 1] is clamped; a
    non-finite avg_logprob becomes null."""
    pieces = [(0.0, 10.0)]
    words = ["x", {"word": "", "start": 1, "end": 2}, {"word": "a", "start": float("nan"), "end": 2},
             {"word": "b", "start": 3.0, "end": 3.5, "probability": 7}, {"word": "c", "start": 2.0, "end": 1.0},
             {"word": "d", "start": True, "end": 4.0}, {"word": " e ", "start": 4.0, "end": 4.5}]
    [segment] = shift_segments([{"start": 0, "end": 5, "text": "b c e", "avg_logprob": float("-inf"),
                                 "words": words}], pieces)
    assert [w["word"] for w in segment["words"]] == ["b", "c", "e"]
    assert segment["words"][0]["probability"] == 1.0 and segment["avg_logprob"] is None
    starts = [w["start"] for w in segment["words"]]
    assert starts == sorted(starts) and all(w["end"] >= w["start"] for w in segment["words"])
    assert shift_segments([{"start": 0, "end": 1, "text": "x", "words": "nope"}], pieces)[0]["words"] == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["start", "end", "word", "probability"]),
                                st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                                          st.text(max_size=5), st.none(), st.booleans()), max_size=4),
                max_size=8))
def test_any_words_come_out_well_formed(words):
    """Whatever a worker sends as words, the stored ones are JSON-safe: finite times inside the slice's pieces,
    starts never decreasing, ends not before starts, non-empty stripped words, probabilities in [0, 1]."""
    pieces = [(5.0, 7.0), (9.0, 12.0)]
    [segment] = shift_segments([{"start": 0.0, "end": 5.0, "text": "t", "words": words}], pieces)
    json.dumps(segment, allow_nan=False)
    last = 5.0
    for w in segment["words"]:
        assert 5.0 <= last <= w["start"] <= w["end"] <= 12.0
        assert w["word"] == w["word"].strip() and w["word"] and 0.0 <= w["probability"] <= 1.0
        last = w["start"]


def test_exported_segments_always_carry_words():
    """Every segment of the JSON export has ``words`` and ``avg_logprob``, even one stored before words were
    kept, and a failed slice's marker."""
    job = make_job([0], n=2)
    job.slices[0].segments = [{"start": 0.5, "end": 7.0, "text": "word0"}]  # as stored by an older server
    job.slices[1].status = "failed"
    for segment in timed_segments(job):
        assert segment["words"] == [] and segment["avg_logprob"] is None



def test_words_without_a_speaker_never_put_the_next_speakers_words_under_the_last_name():
    """Three close slices: one of speaker 1, one without voice labels (its worker sent none), one of speaker 2:
    the .txt and the job view's paragraphs name each paragraph after its own speaker, and speaker 2's words are
    never under "Speaker 1"."""
    def done(i, start, end, text):
        return SliceRecord(index=i, start=start, end=end, pieces=[(start, end)], status="done", text=text,
                           segments=[{"start": start, "end": end, "text": text, "words": [], "avg_logprob": None}])

    state = {**speakers.initial_state(None), "turns": [[0.0, 2.0, 1], [6.9, 10.0, 2]], "next_id": 3,
             "final": True}
    job = JobRecord("j", "call.wav", "upload", 0.0, status="done", duration=10.0, speakers=state,
                    slices=[done(0, 0.5, 2.0, "Hello there."), done(1, 2.5, 6.5, "Unlabelled words."),
                            done(2, 7.0, 9.0, "Second person speaking.")])
    text = to_txt(job)
    assert text == "Speaker 1: Hello there. Unlabelled words.\n\nSpeaker 2: Second person speaking.\n", text
    labelled = [replace(s, segments=speakers.labelled_segments(s.segments, state)) for s in job.slices]
    assert [p["speaker"] for p in paragraph_view(labelled)] == ["Speaker 1", "Speaker 2"]
