"""What a worker may hold (taskq/broker/holding.py): plain functions, no server."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from celery.worker import state

from taskq.broker.holding import HOLD_AHEAD, handing_over, held_before_due, room


def test_a_worker_takes_a_message_only_for_a_free_process():
    assert room(processes=2, reserved=2, waiting=0) == 0
    assert room(processes=2, reserved=1, waiting=0) == 1


def test_delayed_and_rate_limited_messages_count_toward_what_a_worker_holds():
    # Given a free process, the worker still stops at its processes plus HOLD_AHEAD held
    assert room(processes=1, reserved=0, waiting=HOLD_AHEAD) == 1
    assert room(processes=1, reserved=0, waiting=HOLD_AHEAD + 1) == 0
    assert room(processes=2, reserved=1, waiting=HOLD_AHEAD + 1) == 0


def test_a_message_taken_before_its_eta_was_held_and_one_taken_after_was_not():
    eta = datetime(2026, 1, 1, tzinfo=UTC)
    assert held_before_due(eta, eta.timestamp() - 1)
    assert not held_before_due(eta, eta.timestamp() + 1)
    assert held_before_due("2026-01-01T00:00:00+00:00", eta.timestamp() - 1)
    assert held_before_due("2026-01-01T00:00:00", eta.timestamp() - 1)  # naive: UTC


def test_a_message_without_an_eta_or_a_take_time_was_not_held():
    assert not held_before_due(None, 1.0)
    assert not held_before_due("2026-01-01T00:00:00+00:00", None)


class Taken:
    """A request the worker took from `queue` `ago` seconds ago."""

    def __init__(self, queue, ago):
        self.delivery_info = {"routing_key": queue}
        self.message = SimpleNamespace(taskq_taken_at=time.time() - ago)


@pytest.fixture
def take():
    """Enter requests in the worker's own books (Celery's state, weak sets: the test keeps
    them alive), emptied after the test."""
    kept = []

    def taken(queue, ago=0.0):
        kept.append(Taken(queue, ago))
        state.reserved_requests.add(kept[-1])
        return kept[-1]

    yield taken
    state.reserved_requests.clear()
    state.active_requests.clear()


def test_a_task_no_process_has_accepted_yet_is_being_handed_over(take):
    # Given a worker that took a high task and a low one, and a process accepted the low one
    take("t.high")
    state.active_requests.add(take("t.low"))
    # Then only the high one is being handed over
    assert handing_over(within=1.0) == ["t.high"]


def test_a_task_taken_longer_ago_than_the_window_no_longer_counts(take):
    # Given a task taken 5 s ago that no process has accepted (a pool that never will)
    take("t.high", ago=5)
    # Then the fetch is not held back by it
    assert handing_over(within=1.0) == []
