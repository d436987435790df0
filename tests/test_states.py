"""The job state model: where each state may go, and loud refusals."""

from __future__ import annotations

import pytest

from worker.states import (
    ACTIVE_STATES,
    FINAL_STATES,
    TRANSITIONS,
    InvalidTransition,
    JobStatus,
    move,
)


@pytest.mark.parametrize("final", sorted(FINAL_STATES))
def test_a_running_job_may_end_each_way(final: JobStatus) -> None:
    assert move(JobStatus.RUNNING, final) is final


@pytest.mark.parametrize("final", sorted(FINAL_STATES))
@pytest.mark.parametrize("new", list(JobStatus))
def test_a_final_state_never_moves(final: JobStatus, new: JobStatus) -> None:
    with pytest.raises(InvalidTransition, match=f"from {final.value} to {new.value}"):
        move(final, new)


def test_running_does_not_move_to_running() -> None:
    with pytest.raises(InvalidTransition):
        move(JobStatus.RUNNING, JobStatus.RUNNING)


def test_the_groups_cover_every_state_once() -> None:
    assert set(JobStatus) == ACTIVE_STATES | FINAL_STATES
    assert not ACTIVE_STATES & FINAL_STATES
    assert set(TRANSITIONS) == set(JobStatus)
    assert all(state.is_final == (state in FINAL_STATES) for state in JobStatus)
