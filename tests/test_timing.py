"""Where a job's time goes: the server's own accounting, with time passed in."""

from server.timing import JobTiming


def test_round_trips_split_into_worker_time_and_transfer():
    """Each slice's round trip is split into what the worker reported and the rest; a batch's time is charged
    once across its slices; hand-out and merge time add up."""
    t = JobTiming()
    t.sent("a", now=10.0, spent_s=0.01)
    t.sent("b", now=10.0, spent_s=0.02)
    t.answered("a", now=14.5, elapsed_s=4.0, batch=2)
    t.answered("b", now=14.6, elapsed_s=4.0, batch=2)
    t.merge_s += 0.03
    stats = t.stats()
    assert stats["transcribe_s"] == 4.0  # two slices of one 4 s batch
    assert abs(stats["transfer_s"] - (0.5 + 0.6)) < 1e-9
    assert abs(stats["dispatch_s"] - 0.03) < 1e-9 and stats["merge_s"] == 0.03
    assert t.sent_at == {}


def test_an_unknown_or_odd_answer_never_goes_negative():
    """An answer for a lease never seen (a server restart) counts its worker time only; a worker clock that
    claims more than the round trip gives no negative transfer."""
    t = JobTiming()
    t.answered("never-sent", now=5.0, elapsed_s=2.0, batch=1)
    t.sent("x", now=5.0, spent_s=0.0)
    t.answered("x", now=6.0, elapsed_s=3.0, batch=1)
    assert t.stats()["transcribe_s"] == 5.0 and t.stats()["transfer_s"] == 0.0
