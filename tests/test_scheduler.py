"""The scheduler alone: no sockets, no sleeping; time is a number the tests step."""

import pytest

from server.scheduler import Requirement, Scheduler, SliceKey, Task, WorkerInfo, hand_out_order
from server.states import SLICE_MOVES, IllegalTransition, SliceStatus

T0 = 1000.0


def make(n_slices=3, seconds=20.0, **kw):
    s = Scheduler(**kw)
    for i in range(n_slices):
        s.submit(SliceKey("job", i), seconds)
    return s


def test_every_illegal_move_raises():
    """Only the moves in SLICE_MOVES are possible; any other raises."""
    for start in SliceStatus:
        for to in SliceStatus:
            task = Task(SliceKey("j", 0), 1.0, status=start)
            if to in SLICE_MOVES[start]:
                task.move(to)
                assert task.status == to
            else:
                with pytest.raises(IllegalTransition):
                    task.move(to)


def test_slices_go_out_in_order_to_free_slots_only():
    """A worker with two slots gets the two oldest slices, and nothing more until one is answered."""
    s = make(4)
    s.add_worker("w", WorkerInfo("w", slots=2), T0)
    leases = s.assign(T0)
    assert [lease.key.index for lease in leases] == [0, 1]
    assert s.assign(T0) == []
    s.complete("w", leases[0].id, leases[0].key, T0 + 1)
    assert [lease.key.index for lease in s.assign(T0 + 1)] == [2]


def test_work_is_spread_one_slice_per_worker_per_round():
    """Two idle workers with two slots each both get work before either gets a second slice."""
    s = make(2)
    s.add_worker("a", WorkerInfo("a", slots=2), T0)
    s.add_worker("b", WorkerInfo("b", slots=2), T0)
    assert sorted(lease.worker_id for lease in s.assign(T0)) == ["a", "b"]


def test_a_fast_worker_takes_more():
    """Once speeds are measured, the faster worker is served first; over a run it finishes more slices."""
    s = make(10, seconds=10.0)
    s.add_worker("slow", WorkerInfo("slow"), T0)
    s.add_worker("fast", WorkerInfo("fast"), T0)
    now = T0
    out = {lease.worker_id: lease for lease in s.assign(now)}
    finish_at = {"slow": now + 10.0, "fast": now + 1.0}  # slow does 1x real time, fast 10x
    while s.tasks:
        wid = min(out, key=lambda w: finish_at[w])
        now = finish_at[wid]
        lease = out.pop(wid)
        assert s.complete(wid, lease.id, lease.key, now).status == SliceStatus.DONE
        for new in s.assign(now):
            out[new.worker_id] = new
            finish_at[new.worker_id] = now + (10.0 if new.worker_id == "slow" else 1.0)
    assert s.workers["fast"].slices_done >= 8
    assert s.workers["fast"].speed == pytest.approx(10.0)


def test_disconnect_requeues_at_once_and_at_the_head():
    """A worker that leaves loses its slices to the front of the queue immediately."""
    s = make(3)
    s.add_worker("a", WorkerInfo("a"), T0)
    lease = s.assign(T0)[0]
    outcomes = s.remove_worker("a", T0 + 1)
    assert [(o.key, o.status) for o in outcomes] == [(lease.key, SliceStatus.QUEUED)]
    assert list(s.queue)[0] == lease.key
    s.add_worker("b", WorkerInfo("b"), T0 + 2)
    assert s.assign(T0 + 2)[0].key == lease.key


def test_result_from_a_worker_that_does_not_hold_the_lease_is_refused():
    """Forged results: wrong worker, unknown lease, or a lease presented for another slice."""
    s = make(2)
    s.add_worker("a", WorkerInfo("a"), T0)
    s.add_worker("b", WorkerInfo("b"), T0)
    la, lb = s.assign(T0)
    assert s.complete(lb.worker_id, la.id, la.key, T0).key is None  # someone else's lease
    assert s.complete(la.worker_id, "nope", la.key, T0).key is None  # made-up lease
    assert s.complete(la.worker_id, la.id, lb.key, T0).key is None  # right lease, other slice
    assert s.tasks[la.key].status == SliceStatus.LEASED
    assert s.complete(la.worker_id, la.id, la.key, T0).status == SliceStatus.DONE


def test_late_result_after_the_lease_was_taken_back_is_refused():
    """A worker that lost its lease (expiry) cannot answer for the slice any more."""
    s = make(1, lease_timeout_s=30)
    s.add_worker("a", WorkerInfo("a"), T0)
    lease = s.assign(T0)[0]
    assert [o.status for o in s.reap(T0 + 31)] == [SliceStatus.QUEUED]
    assert s.complete("a", lease.id, lease.key, T0 + 32).key is None


def test_heartbeat_keeps_a_lease_alive_and_silence_expires_it():
    """Leases live as long as heartbeats come; reaping is a function of now."""
    s = make(1, lease_timeout_s=30)
    s.add_worker("a", WorkerInfo("a"), T0)
    s.assign(T0)
    for t in range(20, 200, 20):
        assert s.heartbeat("a", T0 + t)
        assert s.reap(T0 + t + 1) == []
    assert [o.status for o in s.reap(T0 + 180 + 31)] == [SliceStatus.QUEUED]


def test_slice_timeout_bounds_a_lease_even_with_heartbeats():
    """A worker that heartbeats but never answers loses the slice after slice_timeout_s."""
    s = make(1, lease_timeout_s=30, slice_timeout_s=100)
    s.add_worker("a", WorkerInfo("a"), T0)
    s.assign(T0)
    for t in range(10, 100, 10):
        s.heartbeat("a", T0 + t)
    assert s.reap(T0 + 99) == []
    assert [o.status for o in s.reap(T0 + 100)] == [SliceStatus.QUEUED]


def test_errors_retry_on_other_workers_then_fail_with_reason():
    """A slice that keeps failing is tried max_attempts times, then marked failed with the reasons."""
    s = make(1, max_attempts=3)
    s.add_worker("a", WorkerInfo("a"), T0)
    statuses = []
    for attempt in range(3):
        lease = s.assign(T0 + attempt)[0]
        statuses.append(s.fail("a", lease.id, lease.key, f"boom {attempt}", T0 + attempt))
    assert [o.status for o in statuses] == [SliceStatus.QUEUED, SliceStatus.QUEUED, SliceStatus.FAILED]
    assert "boom 2" in statuses[-1].reason and "3 attempts" in statuses[-1].reason
    assert s.assign(T0 + 10) == [] and not s.tasks


def test_straggler_gets_a_duplicate_and_the_first_result_wins():
    """With the queue empty, a slice out far longer than predicted is duplicated to an idle worker; the first
    result is kept and the other lease is called back."""
    s = Scheduler(straggler_factor=3.0, straggler_min_s=5.0)
    for i in range(2):
        s.submit(SliceKey("j", i), 10.0)
    s.add_worker("slow", WorkerInfo("slow"), T0)
    s.add_worker("fast", WorkerInfo("fast"), T0)
    first = {lease.worker_id: lease for lease in s.assign(T0)}
    s.complete("fast", first["fast"].id, first["fast"].key, T0 + 1)  # fast: 10x real time
    s.workers["slow"].audio_s, s.workers["slow"].busy_s = 10.0, 1.0  # slow measured 10x earlier, then stalls
    assert s.assign(T0 + 2) == []  # out 2 s, 1 s predicted: not yet (straggler_min_s)
    dup = s.assign(T0 + 6)
    assert [(d.worker_id, d.key, d.duplicate) for d in dup] == [("fast", first["slow"].key, True)]
    assert s.assign(T0 + 20) == []  # never a third copy
    outcome = s.complete("fast", dup[0].id, dup[0].key, T0 + 7)
    assert outcome.status == SliceStatus.DONE
    assert [c.id for c in outcome.cancelled] == [first["slow"].id]
    assert s.complete("slow", first["slow"].id, first["slow"].key, T0 + 8).key is None  # second result dropped


def test_losing_one_of_two_leases_keeps_the_slice_running():
    """If the duplicate's worker leaves, the original lease still runs; nothing is requeued twice."""
    s = Scheduler(straggler_factor=1.0, straggler_min_s=1.0)
    s.submit(SliceKey("j", 0), 10.0)
    s.add_worker("a", WorkerInfo("a"), T0)
    s.add_worker("b", WorkerInfo("b"), T0)
    lease = s.assign(T0)[0]
    s.workers[lease.worker_id].audio_s, s.workers[lease.worker_id].busy_s = 10.0, 1.0
    dup = s.assign(T0 + 5)[0]
    outcomes = s.remove_worker(dup.worker_id, T0 + 6)
    assert [o.status for o in outcomes] == [SliceStatus.LEASED]
    assert list(s.queue) == []


def test_worker_limits_and_requirements_are_honoured():
    """A slice longer than a worker's max_slice_s, or of a job asking for another engine, is not sent to it."""
    s = Scheduler()
    s.submit(SliceKey("long", 0), 50.0)
    s.submit(SliceKey("whisper-only", 0), 10.0, Requirement(engine="whisper-family"))
    s.submit(SliceKey("sphinx-only", 0), 10.0, Requirement(engine="sphinx"))
    s.add_worker("fw", WorkerInfo("fw", engine="faster-whisper", slots=3, max_slice_s=30), T0)
    assert [lease.key.job_id for lease in s.assign(T0)] == ["whisper-only"]
    assert not s.can_serve(Requirement(engine="sphinx"), 10.0)
    s.add_worker("sx", WorkerInfo("sx", engine="sphinx", slots=3, max_slice_s=600), T0)
    assert sorted(lease.key.job_id for lease in s.assign(T0)) == ["long", "sphinx-only"]


def test_forget_job_returns_leases_to_call_back():
    """Deleting a job drops its queued slices and hands back the leases out on it."""
    s = make(3)
    s.add_worker("a", WorkerInfo("a"), T0)
    lease = s.assign(T0)[0]
    assert [called.id for called in s.forget_job("job")] == [lease.id]
    assert not s.queue and not s.tasks and not s.workers["a"].leases


def test_every_slice_done_exactly_once_under_churn():
    """Random joins, leaves, errors and expiries: every slice ends done or failed exactly once."""
    import random
    rng = random.Random(7)
    s = Scheduler(lease_timeout_s=5, max_attempts=50)
    n = 200
    for i in range(n):
        s.submit(SliceKey("j", i), 5.0)
    done: list[SliceKey] = []
    now = T0
    workers = 0
    held = {}
    while s.tasks:
        now += 1
        action = rng.random()
        if action < 0.05 or not s.workers:
            workers += 1
            s.add_worker(f"w{workers}", WorkerInfo(f"w{workers}", slots=rng.randint(1, 3)), now)
        elif action < 0.08:
            wid = rng.choice(list(s.workers))
            s.remove_worker(wid, now)
        for lease in s.assign(now):
            held[lease.id] = lease
        for lid, lease in list(held.items()):
            if lid not in s.leases:
                del held[lid]
                continue
            r = rng.random()
            if r < 0.5:
                outcome = s.complete(lease.worker_id, lid, lease.key, now)
                if outcome.key is not None:
                    done.append(outcome.key)
            elif r < 0.55:
                s.fail(lease.worker_id, lid, lease.key, "err", now)
            elif r < 0.9:
                s.heartbeat(lease.worker_id, now)
        s.reap(now)
    assert sorted(done) == sorted(set(done)) and len(done) == n


def test_the_last_round_goes_out_longest_first():
    """A new job's slices are queued in recording order except the last round (one per idle slot), which goes
    longest first; with one slot or none nothing is reordered."""
    seconds = [20.0, 25.0, 12.0, 27.0, 9.0, 22.0]
    assert hand_out_order(seconds, 3) == [0, 1, 2, 3, 5, 4]
    assert hand_out_order(seconds, 1) == list(range(6))
    assert hand_out_order(seconds, 0) == list(range(6))
    assert hand_out_order(seconds, 10) == [3, 1, 5, 0, 2, 4]
    assert sorted(hand_out_order(seconds, 4)) == list(range(6))


def test_a_slice_that_failed_on_a_worker_goes_to_another_one():
    """After an error, the slice goes to a different worker even if the failing one is free and first in line;
    with no other worker it is retried on the same one."""
    s = make(1, max_attempts=3)
    s.add_worker("bad", WorkerInfo("bad"), T0)
    lease = s.assign(T0)[0]
    s.add_worker("good", WorkerInfo("good"), T0)
    s.fail("bad", lease.id, lease.key, "boom", T0 + 1)
    again = s.assign(T0 + 1)
    assert [(a.worker_id, a.key) for a in again] == [("good", lease.key)]
    s.remove_worker("good", T0 + 2)
    assert [a.worker_id for a in s.assign(T0 + 2)] == ["bad"]


def test_a_worker_with_no_measured_speed_is_judged_by_the_others():
    """A slice held by a worker that never finished anything is duplicated once it is out far longer than the
    slowest measured worker would need."""
    s = Scheduler(straggler_factor=3.0, straggler_min_s=2.0)
    s.submit(SliceKey("j", 0), 10.0)
    s.add_worker("new", WorkerInfo("new"), T0)
    lease = s.assign(T0)[0]
    s.add_worker("old", WorkerInfo("old"), T0)
    s.workers["old"].audio_s, s.workers["old"].busy_s = 10.0, 2.0  # 5x real time: 2 s expected, 6 s allowed
    assert s.assign(T0 + 5) == []
    assert [(d.worker_id, d.key) for d in s.assign(T0 + 6)] == [("old", lease.key)]


def test_a_silent_worker_gets_no_new_work_until_it_speaks():
    """After its lease expired for lack of heartbeats, a still-connected worker is passed over; a heartbeat
    brings it back."""
    s = make(2, lease_timeout_s=30)
    s.add_worker("quiet", WorkerInfo("quiet"), T0)
    first = s.assign(T0)[0]
    assert [o.key for o in s.reap(T0 + 31)] == [first.key]
    assert s.assign(T0 + 31) == []
    s.heartbeat("quiet", T0 + 32)
    assert [lease.key for lease in s.assign(T0 + 32)] == [first.key]


def test_idle_slots_and_longest_slice_count_only_workers_a_job_may_use():
    """free_slots and longest_slice_s look only at workers whose engine and model the requirement accepts."""
    s = Scheduler()
    assert s.longest_slice_s() is None and s.free_slots() == 0
    s.add_worker("fw", WorkerInfo("fw", engine="faster-whisper", model="tiny.en", slots=2, max_slice_s=30),
                 T0)
    s.add_worker("g", WorkerInfo("g", engine="google", model="en-US", slots=3, max_slice_s=25), T0)
    assert s.free_slots() == 5 and s.longest_slice_s() == 30
    assert s.free_slots(Requirement(engine="google")) == 3 and s.longest_slice_s(Requirement("google")) == 25
    assert s.free_slots(Requirement("whisper-family", "tiny.en")) == 2
    assert s.longest_slice_s(Requirement("sphinx")) is None and s.free_slots(Requirement("sphinx")) == 0
    s.submit(SliceKey("j", 0), 20.0, Requirement("google"))
    s.assign(T0)
    assert s.free_slots(Requirement("google")) == 2


def test_idle_slots_for_a_new_job_leave_out_slots_queued_slices_will_take():
    """A new job may cut finer only for slots that no slice already queued will take: queued slices some idle
    worker the job may use could take are subtracted; those no such worker takes (another engine, too long)
    are not."""
    s = Scheduler()
    s.add_worker("fw", WorkerInfo("fw", engine="faster-whisper", slots=4, max_slice_s=30), T0)
    assert s.idle_decoders_for_new_job() == 4
    s.submit(SliceKey("a", 0), 20.0)  # queued, not handed out yet: it will take one of the four
    s.submit(SliceKey("b", 0), 20.0, Requirement("sphinx"))  # nobody idle may take it
    s.submit(SliceKey("c", 0), 40.0)  # longer than fw takes
    assert s.idle_decoders_for_new_job() == 3
    assert s.idle_decoders_for_new_job(Requirement("sphinx")) == 0
    s.assign(T0)
    assert s.idle_decoders_for_new_job() == 3  # now it holds one: the same answer
    for i in range(1, 5):
        s.submit(SliceKey("a", i), 20.0)
    assert s.idle_decoders_for_new_job() == 0  # never below zero


def test_a_new_job_cuts_finer_only_for_decoders_not_for_batched_slots():
    """A CPU worker with 16 slots and 2 side-by-side decoders offers a new job 2 idle decoders (its other
    slots would only join a batch: a slice cut finer for them costs a window and saves no time), 1 once it
    holds a slice; one announcing no ``parallel`` counts every slot, as before."""
    s = Scheduler()
    s.add_worker("cpu", WorkerInfo("cpu", slots=16, parallel=2), T0)
    assert s.idle_decoders_for_new_job() == 2
    s.submit(SliceKey("a", 0), 20.0)
    s.assign(T0)
    assert s.idle_decoders_for_new_job() == 1
    s.add_worker("gpu", WorkerInfo("gpu", slots=8), T0)
    assert s.idle_decoders_for_new_job() == 9


def test_a_slice_nobody_can_take_does_not_stop_straggler_duplicates():
    """A queued slice that no connected worker may take (it asks for an engine nobody runs) does not count as
    work waiting: a straggler elsewhere is still duplicated to the idle worker (before, any queued slice
    stopped duplicates server-wide)."""
    s = Scheduler(straggler_factor=3.0, straggler_min_s=5.0)
    for i in range(2):
        s.submit(SliceKey("j", i), 10.0)
    s.submit(SliceKey("nobody", 0), 10.0, Requirement("sphinx"))
    s.add_worker("slow", WorkerInfo("slow"), T0)
    s.add_worker("fast", WorkerInfo("fast"), T0)
    first = {lease.worker_id: lease for lease in s.assign(T0)}
    s.complete("fast", first["fast"].id, first["fast"].key, T0 + 1)
    s.workers["slow"].audio_s, s.workers["slow"].busy_s = 10.0, 1.0
    assert list(s.queue) == [SliceKey("nobody", 0)]
    dup = s.assign(T0 + 6)
    assert [(d.worker_id, d.key, d.duplicate) for d in dup] == [("fast", first["slow"].key, True)]
    outcome = s.complete("fast", dup[0].id, dup[0].key, T0 + 7)  # the duplicate wins
    assert outcome.status == SliceStatus.DONE and [c.id for c in outcome.cancelled] == [first["slow"].id]
    assert list(s.queue) == [SliceKey("nobody", 0)] and s.assign(T0 + 8) == []  # still nobody for it


def test_a_released_lease_goes_back_to_the_head_of_the_queue_without_costing_a_try():
    """A lease given back (its result could not be stored, its slice could not be sent, its worker is stopping)
    puts the slice first in the queue, frees the worker's slot and leaves the slice's tries as they were, so a
    server-side failure never makes a slice fail."""
    s = make(2, max_attempts=1)
    s.add_worker("w", WorkerInfo("w"), T0)
    (lease,) = s.assign(T0)
    assert s.holds("w", lease.id, lease.key) and not s.holds("x", lease.id, lease.key)
    outcome = s.release(lease.id, "the disk is full")
    assert outcome.status == SliceStatus.QUEUED and outcome.reason == "the disk is full"
    assert list(s.queue) == [SliceKey("job", 0), SliceKey("job", 1)] and s.tasks[lease.key].attempts == 0
    assert s.workers["w"].free_slots == 1 and s.release(lease.id, "again").key is None
    (again,) = s.assign(T0 + 1)
    assert again.key == lease.key  # with max_attempts=1 a counted loss would have failed it
