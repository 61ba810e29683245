"""A job's status follows from how many of its slices are in each status (``states.job_status``), and only by
the moves ``JOB_MOVES`` allows."""

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from server.states import JOB_MOVES, JobStatus, SliceStatus, check_job_move, job_status

Q, L, D, F = SliceStatus.QUEUED, SliceStatus.LEASED, SliceStatus.DONE, SliceStatus.FAILED


def test_a_job_runs_once_a_slice_is_out_and_finishes_when_every_slice_has():
    assert job_status(JobStatus.QUEUED, Counter([Q, Q]), recording=False) == JobStatus.QUEUED
    assert job_status(JobStatus.QUEUED, Counter([L, Q]), recording=False) == JobStatus.RUNNING
    assert job_status(JobStatus.RUNNING, Counter([D, L]), recording=False) == JobStatus.RUNNING
    assert job_status(JobStatus.RUNNING, Counter([D, F]), recording=False) == JobStatus.DONE
    assert job_status(JobStatus.RUNNING, Counter([F, F]), recording=False) == JobStatus.FAILED
    assert job_status(JobStatus.QUEUED, Counter([]), recording=False) == JobStatus.QUEUED


def test_a_live_recording_never_finishes_while_it_records():
    assert job_status(JobStatus.RUNNING, Counter([D, D]), recording=True) == JobStatus.RUNNING
    assert job_status(JobStatus.RUNNING, Counter([D, D]), recording=False) == JobStatus.DONE


def test_a_finished_job_runs_again_while_a_slice_is_transcribed_again_and_stays_as_it_finished():
    assert job_status(JobStatus.DONE, Counter([D, Q]), recording=False) == JobStatus.RUNNING
    assert job_status(JobStatus.DONE, Counter([D, L]), recording=False) == JobStatus.RUNNING
    # A finished job keeps its status when its slices finish again, even if the retry failed.
    assert job_status(JobStatus.DONE, Counter([F, D]), recording=False) == JobStatus.DONE


@given(st.sampled_from(list(JobStatus)), st.lists(st.sampled_from(list(SliceStatus)), max_size=6), st.booleans())
def test_every_status_worked_out_is_a_move_the_table_allows(current, slices, recording):
    new = job_status(current, Counter(slices), recording)
    check_job_move(current, new)  # raises IllegalTransition otherwise
    assert new == current or new in JOB_MOVES[current]
