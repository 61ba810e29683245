"""Tentative text's pure rules (server/tentative.py): when a request is due, which answer is shown, which words
are stable, which worker decodes. Time and audio positions are numbers the tests step; nothing sleeps."""

from __future__ import annotations

import numpy as np
import pytest

from server.scheduler import Requirement, Scheduler, SliceKey, WorkerInfo
from server.tentative import Partial, Tentative, TentativeOptions, pick_worker, speech_end, stable_words

RATE = 16000
S = RATE  # samples in a second
OPTS = TentativeOptions()


def asked(t: Tentative, now: float, audio_s: float, speech_s: float | None = None, worker: str = "w"):
    """Offer the open part [open_start, audio_s) with speech up to ``speech_s`` (default: all of it); send the
    request if one is due. Returns it (or None)."""
    speech_to = None if speech_s is None and audio_s == 0 else int((audio_s if speech_s is None else speech_s) * S)
    request = t.due(now, t.open_start, int(audio_s * S), speech_to)
    if request is not None:
        t.sent(request, worker, now, speech_to)
    return request


def test_requests_go_about_once_a_second_while_new_speech_arrives():
    """Nothing before the open part holds speech (or min_audio_s of audio); then a request for the whole open
    part, none again within every_s, and the next one once a second has passed."""
    t = Tentative(OPTS)
    assert t.due(0.0, 0, 4 * S, None) is None, "silence only"
    assert t.due(0.0, 0, S // 4, S // 8) is None, "less than min_audio_s"
    first = asked(t, 0.0, 1.5)
    assert (first.start, first.end, first.prefix) == (0, 1.5 * S, "")
    assert asked(t, 0.5, 2.0) is None, "within every_s"
    second = asked(t, 1.0, 2.5)
    assert (second.start, second.end) == (0, 2.5 * S) and second.id != first.id


def test_slow_decodes_space_the_requests_out():
    """When a decode took 1.5 s on its worker, the next request waits 3 s (max_busy_share 0.5), so tentative
    work takes at most half the worker's time; a quick decode leaves every_s as it is."""
    t = Tentative(OPTS)
    slow = asked(t, 0.0, 2.0)
    t.answered("w", slow.id, "A gold", elapsed_s=1.5)
    assert asked(t, 2.9, 4.0) is None and asked(t, 3.0, 4.1) is not None
    quick = Tentative(OPTS)
    first = asked(quick, 0.0, 2.0)
    quick.answered("w", first.id, "A gold", elapsed_s=0.3)
    assert asked(quick, 1.0, 3.0) is not None


def test_no_request_while_no_new_speech_since_the_shown_answer():
    """Once an answer covers all the speech there is, a pause brings no request (the text would not change);
    new speech does."""
    t = Tentative(OPTS)
    request = asked(t, 0.0, 2.0)
    assert t.answered("w", request.id, "A gold ring") and t.partial == Partial(0.0, 2.0, "A gold ring")
    assert asked(t, 1.0, 3.0, speech_s=2.0) is None and asked(t, 2.0, 4.0, speech_s=2.0) is None
    assert asked(t, 3.0, 5.0, speech_s=4.6) is not None


def test_a_request_still_out_that_covers_the_speech_holds_back_the_next():
    """While a request covering all the speech is out, nothing more is asked; once it is unanswered for
    answer_timeout_s it is forgotten and a new one goes (its worker may have died)."""
    t = Tentative(TentativeOptions(answer_timeout_s=3.0))
    asked(t, 0.0, 2.0, speech_s=1.8)
    assert asked(t, 1.0, 3.0, speech_s=1.8) is None
    assert asked(t, 2.9, 3.0, speech_s=1.8) is None
    assert asked(t, 3.0, 3.2, speech_s=1.8) is not None


def test_answers_are_shown_only_when_current():
    """An answer is shown only from the worker that was asked, for the open part as it still is, and if it
    covers more audio than the answer shown; an unchanged text only extends what the partial covers, with
    nothing to push."""
    t = Tentative(OPTS)
    old = asked(t, 0.0, 2.0, worker="a")
    new = asked(t, 1.0, 3.0, worker="b")
    assert not t.answered("a", "no-such-request", "x")
    assert not t.answered("b", old.id, "stolen"), "another worker's request"
    assert t.answered("b", new.id, "A gold ring will") and t.partial == Partial(0.0, 3.0, "A gold ring will")
    assert not t.answered("a", old.id, "A gold"), "overtaken by a newer answer"
    assert t.partial == Partial(0.0, 3.0, "A gold ring will")
    again = asked(t, 2.0, 4.0)
    assert not t.answered("w", again.id, "A gold ring will"), "unchanged text: nothing to push"
    assert t.partial == Partial(0.0, 4.0, "A gold ring will")
    empty = asked(t, 3.0, 5.0)
    assert t.answered("w", empty.id, " ") and t.partial is None, "no words: no partial, and the pages are told"


def test_a_closed_slice_makes_the_tentative_text_go_and_its_requests_stale():
    """When the open part moves (a slice closed), the partial is gone, the requests out are returned to be
    called back, their late answers are not shown, and a request for the new open part may go at once."""
    t = Tentative(OPTS)
    first = asked(t, 0.0, 2.0, worker="a")
    t.answered("a", first.id, "A gold ring")
    out = asked(t, 1.0, 3.0, worker="b")
    assert t.moved(int(3.2 * S)) == [("b", out.id)]
    assert t.partial is None
    assert not t.answered("b", out.id, "A gold ring will please")
    assert t.due(1.1, 0, 4 * S, 4 * S) is None, "asked about an open part that is not the current one"
    fresh = asked(t, 1.1, 5.0)
    assert fresh.start == int(3.2 * S) and fresh.prefix == ""
    assert t.answered("w", fresh.id, "The long journey") and t.partial == Partial(3.2, 5.0, "The long journey")


def test_stable_words_are_sent_as_the_prefix():
    """Words two answers in a row agree on (case and punctuation aside), never the last word of either, are
    the prefix of the next request; a disagreement early shortens it."""
    assert stable_words(["A", "gold", "ring", "will"], ["a", "gold", "ring,", "will", "please"]) == \
        ["a", "gold", "ring,"]
    assert stable_words(["A", "gold"], ["A", "gold", "ring"]) == ["A"]
    assert stable_words(["A", "cold", "ring", "will"], ["A", "gold", "ring", "will", "please"]) == ["A"]
    assert stable_words([], ["A", "gold"]) == []
    t = Tentative(OPTS)
    prefixes = []
    for now, (audio_s, text) in enumerate([(2.0, "A gold ring."), (3.0, "A gold ring will please"),
                                           (4.0, "A gold ring will please most any"), (5.0, "")]):
        request = asked(t, float(now), audio_s)
        prefixes.append(request.prefix)
        t.answered("w", request.id, text)
    assert prefixes == ["", "", "A gold", "A gold ring will"]


def test_the_newest_audio_only_when_the_open_part_outgrows_the_worker():
    """An open part longer than the worker takes is asked for from its newest max_audio_s, without a prefix."""
    t = Tentative(OPTS)
    for now, text in enumerate(["one two three", "one two three four"]):
        request = asked(t, float(now), 10.0 + now)
        t.answered("w", request.id, text)
    request = t.due(5.0, 0, 40 * S, 40 * S, max_audio_s=30.0)
    assert (request.start, request.end, request.prefix) == (10 * S, 40 * S, "")


def test_off_and_finished_mean_no_requests():
    """every_s = 0 turns tentative text off; after finish() there is none, no request goes, answers are not
    shown and the requests out are returned."""
    off = Tentative(TentativeOptions(every_s=0))
    assert off.due(0.0, 0, 3 * S, 3 * S) is None
    t = Tentative(OPTS)
    request = asked(t, 0.0, 2.0)
    assert t.finish() == [("w", request.id)]
    assert t.partial is None and t.due(5.0, 0, 6 * S, 6 * S) is None
    assert not t.answered("w", request.id, "late")
    with pytest.raises(ValueError):
        TentativeOptions(answer_timeout_s=0)


def test_speech_end_is_the_last_loud_frame_of_the_open_part():
    """The end of the last frame at or above the threshold after the open frame; None for silence."""
    levels = np.array([-20, -20, -70, -70, -25, -70, -70], np.float32)
    assert speech_end(levels, 0, -45.0, 320) == 5 * 320
    assert speech_end(levels, 5, -45.0, 320) is None
    assert speech_end(levels[:2], 0, -45.0, 320) == 2 * 320


# --- who decodes -----------------------------------------------------------------------------------------------


def workers(*specs: tuple[str, dict]) -> Scheduler:
    s = Scheduler()
    for name, info in specs:
        s.add_worker(name, WorkerInfo(name, **{"tentative": True, **info}), 0.0)
    return s


def test_a_queued_slice_always_takes_the_free_slot_first():
    """A worker whose free slot a queued slice could use gets no tentative work; once the slice is handed out
    and no slot is left, no worker is picked and nothing waits."""
    s = workers(("w", {}))
    s.submit(SliceKey("job", 0), 8.0)
    assert pick_worker(s, Requirement(), 0.0) is None
    assert [lease.worker_id for lease in s.assign(0.0)] == ["w"]
    assert pick_worker(s, Requirement(), 0.0) is None, "its only slot holds the slice"


def test_idle_workers_first_then_busy_ones_with_a_free_slot():
    """An idle worker is preferred to one decoding a slice, a faster one to a slower; the worker holding the
    recording's previous request comes first (the new one replaces it there)."""
    s = workers(("busy", {"slots": 2}), ("idle", {}), ("fast", {}))
    s.submit(SliceKey("job", 0), 8.0)
    s.assign(0.0)
    s.workers["fast"].audio_s, s.workers["fast"].busy_s = 10.0, 1.0
    holder = next(w for w, st in s.workers.items() if st.leases)
    assert pick_worker(s, Requirement(), 0.0) == "fast"
    assert pick_worker(s, Requirement(), 0.0, prefer=holder) == holder
    s.workers["fast"].info.slots = 0
    s.workers["idle"].info.slots = 0
    assert pick_worker(s, Requirement(), 0.0) == holder, "the only free slot left is beside a slice"


def test_only_workers_that_can_and_may():
    """Workers that do not announce tentative decoding, that the job's requirement refuses, or that have been
    silent for a lease timeout are never picked."""
    s = workers(("plain", {"tentative": False}), ("google", {"engine": "google"}), ("quiet", {}))
    assert pick_worker(s, Requirement("whisper-family"), 0.0) == "quiet"
    assert pick_worker(s, Requirement("whisper-family"), s.lease_timeout_s + 1) is None
    assert pick_worker(s, Requirement("google"), 0.0) == "google"
