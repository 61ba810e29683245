"""The limits' bookkeeping alone (``server/limits.py``): no sockets, time passed in."""

from __future__ import annotations

import logging

from server.limits import AudioPace, ConnectionLimits, FailureThrottle, RefusalLog, TokenGate


def test_stragglers_make_room_oldest_first_and_busy_connections_never_do():
    limits = ConnectionLimits(max_total=4, max_per_client=2)
    assert limits.admit(1, "a").accepted and limits.admit(2, "a").accepted
    limits.busy(1)  # connection 1 sent its headers
    assert limits.admit(3, "a").evict == (2,)  # 2 was the only straggler
    limits.busy(3)
    refused = limits.admit(4, "a")
    assert not refused.accepted and "at most 2 connections from one address" in refused.reason
    assert limits.admit(5, "b").accepted and limits.admit(6, "b").accepted
    assert limits.admit(7, "c").evict == (5,), "the oldest straggler of anyone makes room at the total cap"
    limits.busy(6)
    limits.busy(7)
    assert not limits.admit(8, "d").accepted
    limits.closed(1)
    limits.idle(3)  # a kept-alive connection between requests is a straggler again
    assert limits.admit(9, "d").accepted and len(limits) == 4


def test_wrong_tokens_cost_nothing_at_first_then_a_doubling_wait():
    """Ten wrong guesses are free; then each address waits 1, 2, 4 ... s (at most max_wait_s) before its next
    guess is checked; another address is not affected; a success or ten quiet minutes clear it."""
    throttle = FailureThrottle(free_failures=10, first_wait_s=1.0, max_wait_s=60.0, forget_after_s=600.0)
    for _ in range(10):
        assert throttle.wait_s("a", 100.0) == 0
        throttle.failed("a", 100.0)
    assert throttle.wait_s("a", 100.0) == 0  # the tenth failure still costs nothing
    throttle.failed("a", 100.0)
    assert throttle.wait_s("a", 100.0) == 1.0 and throttle.wait_s("a", 100.5) == 0.5
    throttle.failed("a", 101.0)
    assert throttle.wait_s("a", 101.0) == 2.0 and throttle.wait_s("b", 101.0) == 0
    for _ in range(20):
        throttle.failed("a", 200.0)
    assert throttle.wait_s("a", 200.0) == 60.0
    assert throttle.wait_s("a", 800.0) == 0  # ten quiet minutes
    throttle.succeeded("a")
    assert throttle.wait_s("a", 200.0) == 0


def test_the_throttle_remembers_a_bounded_number_of_addresses():
    throttle = FailureThrottle(free_failures=0, max_addresses=100)
    for n in range(10_000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}", 0.0)
    assert len(throttle._seen) == 100 and throttle.wait_s("10.0.39.15", 0.0) > 0  # the newest are kept


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_refusals_are_logged_once_per_interval_with_a_count():
    lines = Lines()
    logger = logging.getLogger("test-refusals")
    logger.addHandler(lines)
    refusals = RefusalLog(logger, "a worker", interval_s=60.0)
    for n in range(100):
        refusals.refused("127.0.0.1", "wrong token", 10.0 + n * 0.01)
    refusals.flush(30.0)
    assert lines.lines == ["refused a worker from 127.0.0.1: wrong token"]
    refusals.refused("127.0.0.2", "no token", 70.5)  # the interval is over: the count goes out with it
    assert lines.lines[1] == "refused 100 more: a worker, in the last 60 s (from 127.0.0.1, 127.0.0.2)"
    refusals.flush(200.0)
    assert len(lines.lines) == 2


def test_a_token_gate_counts_wrong_tokens_but_not_missing_ones():
    lines = Lines()
    logger = logging.getLogger("test-gate")
    logger.addHandler(lines)
    gate = TokenGate(FailureThrottle(free_failures=1), RefusalLog(logger, "a worker"), missing="none", wrong="bad")
    assert gate.check("secret", "secret", "a", 0.0).status == 0
    assert [gate.check(None, "secret", "a", 0.0).message for _ in range(5)] == ["none"] * 5
    assert gate.check("\ud800", "secret", "a", 0.0).message == "bad"  # a lone surrogate from JSON: no crash
    assert gate.check("guess", "secret", "a", 0.0).message == "bad"
    assert gate.check("secret", "secret", "a", 0.0).status == 429  # not even the right one, while it waits
    assert gate.check("secret", "secret", "a", 1.0).status == 0


def test_live_audio_is_paced_to_a_few_times_real_time_after_an_allowance():
    """4x real time after 30 s of audio: 30 s sent at once waits not at all, the next second's chunk waits
    0.25 s, and a sender keeping to real time never waits."""
    pace = AudioPace(speed=4.0, burst_s=30.0, now=0.0)
    assert all(pace.take(1.0, 0.0) == 0 for _ in range(30))
    assert pace.delay(0.0) == 0 and pace.take(1.0, 0.0) == 0  # the allowance ends with this one
    assert pace.take(1.0, 0.0) == 0.25 and pace.delay(0.0) == 0.5
    steady = AudioPace(speed=4.0, burst_s=0.0, now=0.0)
    assert all(steady.take(0.25, t * 0.25) == 0 for t in range(400))
