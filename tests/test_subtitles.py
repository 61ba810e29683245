"""Subtitles (server/subtitles.py): cues people can read, from segments with or without word times."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from server.subtitles import Cue, CueOptions, cues, to_srt, to_vtt, wrap

OPTS = CueOptions()


def check_cues(found: list[Cue], opts: CueOptions = OPTS, eps: float = 1e-6, duration_s: float = 1e9) -> None:
    """Every rule of a readable cue (README: "Subtitles"), for each cue and its successor; the last cue may
    not outlast the recording (``duration_s``)."""
    for n, cue in enumerate(found):
        nxt = found[n + 1] if n + 1 < len(found) else None
        assert 1 <= len(cue.lines) <= opts.max_lines, cue
        assert all(0 < len(line) <= opts.max_line_chars for line in cue.lines), cue
        duration = cue.end - cue.start
        assert -eps <= duration <= opts.max_cue_s + eps, cue
        if nxt is not None:
            assert cue.end <= nxt.start + eps and cue.start <= nxt.start + eps, (cue, nxt)
        # at least 1 s, unless the next cue starts sooner (then it lasts until that one starts)
        assert duration >= opts.min_cue_s - eps or (nxt is not None and abs(cue.end - nxt.start) <= eps), cue
        # no faster than 20 characters a second, unless it already stays up as long as it may
        limit = min(nxt.start if nxt else duration_s, cue.start + opts.max_cue_s)
        if len(cue.text) / max(duration, 1e-9) > opts.max_chars_per_s + eps:
            assert cue.end >= limit - eps, (cue, nxt)


def words(text: str, start: float, per_word: float = 0.3, gap: float = 0.05) -> list[dict]:
    out, t = [], start
    for w in text.split():
        out.append({"start": round(t, 3), "end": round(t + per_word, 3), "word": w, "probability": 0.9})
        t += per_word + gap
    return out


def segment(text: str, start: float, per_word: float = 0.3, gap: float = 0.05, with_words: bool = True) -> dict:
    ws = words(text, start, per_word, gap)
    return {"start": start, "end": ws[-1]["end"], "text": text, "words": ws if with_words else []}


def test_a_long_segment_is_cut_at_its_sentence_ends_into_two_line_cues():
    """A 233-character segment (the issue's worst cue) becomes cues of at most 2 × 42 characters, cut after
    full stops where one is in reach, every word kept in order."""
    text = ("So we went down to the harbour early. The boats were already out, and the nets were drying on "
            "the wall. Nobody spoke to us; we sat and waited. When the first boat came in, the whole town seemed "
            "to wake at once.")
    found = cues([segment(text, 10.0)])
    check_cues(found)
    assert " ".join(c.text for c in found) == text
    assert len(found) >= 3
    ends = [c.text[-1] for c in found]
    assert ends.count(".") + ends.count(";") + ends.count(",") >= len(found) - 1, [c.text for c in found]
    assert found[0].text == "So we went down to the harbour early.", found[0]


def test_a_short_cue_stays_up_a_second_unless_the_next_starts_sooner():
    """A 0.34 s "Thanks." alone before a long pause stays up 1 s; followed at once by more speech, it is
    joined to it rather than flashed."""
    alone = cues([segment("Thanks.", 5.0, per_word=0.34), segment("Right then, shall we start?", 9.0)])
    check_cues(alone)
    assert alone[0].text == "Thanks." and alone[0].end - alone[0].start == 1.0
    joined = cues([segment("Thanks.", 5.0, per_word=0.34), segment("Right then, shall we start?", 5.4)])
    check_cues(joined)
    assert joined[0].text.startswith("Thanks. Right")


def test_fast_speech_stays_up_into_the_pause_after_it():
    """Sixty characters said in 2 s (30 per second) followed by a pause stay up 3 s (20 per second)."""
    text = "Quickly now, everybody out of the building and onto the lawn."
    fast = segment(text, 0.0, per_word=2.0 / 12 - 0.01, gap=0.01)
    found = cues([fast, segment("Good.", 10.0)])
    check_cues(found)
    assert found[0].end - found[0].start == len(found[0].text) / 20


def test_a_long_pause_always_ends_a_cue_and_no_cue_lasts_over_seven_seconds():
    """Words 2 s apart never share a cue; slow speech is cut before 7 s."""
    found = cues([segment("one two", 0.0), segment("three", 3.0)])
    assert [c.text for c in found] == ["one two", "three"]
    slow = cues([segment("a very slow speaker saying words one by one", 0.0, per_word=1.0, gap=0.2)])
    check_cues(slow)
    assert len(slow) >= 2


def test_segments_without_word_times_share_their_time_out():
    """A segment without words (an engine that times only segments) is still cut into readable cues inside
    its own time span."""
    text = "This engine gives one time for the whole sentence, however long the sentence happens to be, " \
           "which it often is when people talk freely and without stopping for breath."
    found = cues([{"start": 2.0, "end": 12.0, "text": text, "words": []}])
    check_cues(found)
    assert found[0].start == 2.0 and found[-1].end <= 12.0 + 1e-9
    assert " ".join(c.text for c in found) == text


def test_a_corrected_segment_keeps_its_word_times_when_it_keeps_its_word_count():
    """A correction that fixes a word's spelling keeps the words' own times; one that changes the count
    shares the time out."""
    seg = segment("the president frequencies", 0.0)
    seg["text"] = "the resonant frequencies"
    assert cues([seg])[0].text == "the resonant frequencies"
    assert cues([seg])[0].start == 0.0


def test_words_timed_in_pieces_are_one_word_of_the_text():
    """Whisper times "self-government" as "self" and "-government": the text's word gets the first piece's
    start and the last piece's end; timed words that spell something else are not forced onto the text."""
    from server.subtitles import token_times
    words = [{"start": 1.0, "end": 1.2, "word": "for"}, {"start": 1.2, "end": 1.5, "word": "self"},
             {"start": 1.5, "end": 2.0, "word": "-government."}]
    assert token_times(["for", "self-government."], words) == [(1.0, 1.2), (1.2, 2.0)]
    assert token_times(["four", "cells", "governed"], words) == [(1.0, 1.2), (1.2, 1.5), (1.5, 2.0)]
    assert token_times(["four", "governments"], words) is None


def test_failed_slices_are_one_cue_that_names_the_span_and_fits():
    """A failed slice is one cue at its start, with its span and reason cut to fit two lines."""
    item = {"start": 28.6, "end": 57.6, "failed": True, "span": "0:28.6–0:57.6",
            "error": "the engine crashed with a very long message that does not fit on a line " * 4}
    found = cues([segment("before it", 20.0), item, segment("after it", 58.0)])
    check_cues(found)
    assert found[1].lines[0] == "[0:28.6–0:57.6 could not be transcribed:" and found[1].start == 28.6


def test_wrap_balances_two_lines_and_prefers_punctuation():
    assert wrap("a short line".split()) == ("a short line",)
    two = wrap("I went to the market, and then I walked all the way home again".split())
    assert two == ("I went to the market,", "and then I walked all the way home again")
    assert wrap(("word " * 30).split()) is None


def test_srt_and_vtt_text():
    found = [Cue(1.0, 2.5, ("Hello there.",)), Cue(3.0, 4.0, ("Two", "lines"))]
    assert to_srt(found) == "1\n00:00:01,000 --> 00:00:02,500\nHello there.\n\n2\n00:00:03,000 --> " \
                            "00:00:04,000\nTwo\nlines\n"
    assert to_vtt(found).startswith("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello there.\n\n")


WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz.,?'", min_size=1, max_size=14).filter(str.strip)
LONG = st.text(alphabet="abcdefghij/:.", min_size=43, max_size=100)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.lists(st.one_of(WORD, LONG), min_size=1, max_size=40), st.floats(0, 4),
                          st.floats(0.01, 1.5), st.floats(0, 0.6), st.booleans(), st.booleans()),
                max_size=12))
def test_every_cue_obeys_the_rules_whatever_the_segments(raw):
    """Random segments (any pauses, word lengths up to URLs, fast and slow speech, with and without word
    times, failed slices between them): every cue obeys every rule, and every word is in a cue once, in
    order."""
    items, t, spoken = [], 0.0, []
    for tokens, pause, per_word, gap, with_words, failed in raw:
        t += pause
        if failed:
            items.append({"start": t, "end": t + 20, "failed": True, "span": "x", "error": " ".join(tokens)})
            t += 20
            continue
        seg = segment(" ".join(tokens), t, per_word, gap, with_words)
        items.append(seg)
        spoken.extend(tokens)
        t = seg["end"]
    found = cues(items, duration_s=t + 1)
    check_cues(found, duration_s=t + 1)
    said = " ".join(c.text for c in found if not c.lines[0].startswith("[") or "could not" not in c.text)
    assert re.sub(r"\s", "", said) == "".join(spoken)


def text_lines(body: str) -> list[str]:
    """The lines of an .srt or .vtt that are neither the header, a cue number, a timing line nor blank."""
    return [line for line in body.split("\n") if line and line != "WEBVTT" and not line.isdigit()
            and not re.fullmatch(r"[\d:.,]+ --> [\d:.,]+", line)]


def test_typed_markup_and_arrows_are_text_in_vtt_and_srt():
    """A correction "Tom & Jerry <b>say</b> 1 --> 2": the .vtt shows it as text (&, < and > escaped, so no tag
    and no "-->" that would cut the cue), the .srt has no "-->" outside its timing lines."""
    found = cues([segment("Tom & Jerry <b>say</b> 1 --> 2", 0.0)])
    vtt, srt = to_vtt(found), to_srt(found)
    assert "Tom &amp; Jerry &lt;b&gt;say&lt;/b&gt; 1 --&gt; 2" in " ".join(text_lines(vtt)), vtt
    assert "Tom & Jerry <b>say</b> 1 -> 2" in " ".join(text_lines(srt)), srt
    for body in (vtt, srt):
        assert not any("-->" in line for line in text_lines(body)), body
    assert not any("<" in line or ">" in line for line in text_lines(vtt))


def test_a_long_speaker_name_is_shortened_to_fit_the_line():
    """A 60-character name opens its turn shortened with an ellipsis, so no .srt line is over 42 characters."""
    name = "Dr. Maximiliana Wolfeschlegelsteinhausenberger-Featherstones"
    assert len(name) == 60
    items = [{**segment("Good morning everyone and welcome to the meeting.", 0.0), "speaker": name},
             {**segment("Thank you.", 4.0), "speaker": "Bo"}]
    found = cues(items, name_changes=True)
    check_cues(found)
    srt = to_srt(found)
    assert max(len(line) for line in text_lines(srt)) <= OPTS.max_line_chars, srt
    assert found[0].lines[0].startswith("Dr. Maximiliana") and found[0].lines[0].endswith("…:")
    assert found[-1].lines[0].startswith("Bo: ")


NAME = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zl", "Zp"]), min_size=1,
               max_size=60).map(lambda s: " ".join(s.split())).filter(bool)
TYPED = st.lists(st.sampled_from(["<b>", "</i>", "&", "&amp;", "-->", "--->", "<v", "a", "word.", ">"]) | WORD,
                 min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TYPED, st.floats(0, 3), NAME | st.none()), min_size=1, max_size=8))
def test_any_text_and_any_speaker_name_make_cues_that_obey_the_rules(raw):
    """Typed text (markup, arrows, ampersands) and speakers' names of 1–60 characters, the names opening each
    turn: every cue obeys every rule (the name's label counted in its line), and neither file holds "-->" outside
    a timing line nor, in the .vtt, a "<" or ">" that is not a voice tag."""
    items, t = [], 0.0
    for tokens, pause, speaker in raw:
        t += pause
        seg = {**segment(" ".join(tokens), t), "speaker": speaker}
        items.append(seg)
        t = seg["end"]
    found = cues(items, duration_s=t + 1, name_changes=True)
    check_cues(found, duration_s=t + 1)
    srt, vtt = to_srt(found), to_vtt(found)
    assert not any("-->" in line for body in (srt, vtt) for line in text_lines(body))
    assert not any(re.search("[<>]", re.sub(r"^<v [^<>]*>", "", line)) for line in text_lines(vtt))
