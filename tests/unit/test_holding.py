"""What a worker may hold (taskq/holding.py): plain functions, no server."""

from __future__ import annotations

from datetime import UTC, datetime

from taskq.holding import HOLD_AHEAD, held_before_due, room


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
