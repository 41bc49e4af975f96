"""The starvation guard's config and ordering: an aged queue is read just before the queues
of the next priority up; a wrong max_wait is a config error naming its path."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from test_config import load_with, problems_of

from taskq import topology
from taskq.broker import starvation


@dataclass
class Queue:
    name: str


def test_the_guard_is_off_unless_a_priority_has_a_max_wait(tmp_path):
    assert load_with(tmp_path, {}).max_wait == {}
    assert load_with(tmp_path, {"queues": {"max_wait": {"low": 600}}}).max_wait == {
        "low": 600.0}


@pytest.mark.parametrize(("max_wait", "problem"), [
    ({"high": 10}, "queues.max_wait.high: the highest priority has none above it"),
    ({"lowest": 10}, "queues.max_wait.lowest: unknown key (did you mean 'low'?)"),
    ({"low": 0}, "queues.max_wait.low: must be ≥ 0.1"),
    ({"low": float("nan")}, "queues.max_wait.low: must be a finite number, got nan"),
    ({"low": 10**9}, "queues.max_wait.low: must be ≤ 604800"),
    ({"low": "10m"}, "queues.max_wait.low: must be a number, got '10m'"),
])
def test_a_wrong_max_wait_is_a_config_error_naming_its_path(tmp_path, max_wait, problem):
    assert problem in problems_of(tmp_path, {"queues": {"max_wait": max_wait}})


def test_an_aged_queue_is_read_just_before_the_next_priority_up(tmp_path):
    # Given a worker reading two types at three priorities, and email's low queue aged
    settings = load_with(tmp_path, {"queues": {"max_wait": {"low": 60}}})
    names = topology.consumed_queues(settings, ["data_processing", "email_sending"],
                                     settings.priorities)
    guard = starvation.AgingGuard(settings, store=None)
    guard._checked = float("inf")  # no read of the waiting times: set by hand below
    guard._aged = {topology.queue_name(settings, "email_sending", "low")}

    # When the guard orders the queues
    ordered = [q.name.split(".", 1)[1] for q in guard.order([Queue(n) for n in names])]

    # Then that queue comes after the high ones and before the normal ones
    assert ordered == ["data_processing.high", "email_sending.high", "email_sending.low",
                       "data_processing.normal", "email_sending.normal", "data_processing.low"]


def test_a_task_taken_a_priority_up_ranks_among_that_priority(tmp_path):
    settings = load_with(tmp_path, {})
    low = topology.queue_name(settings, "email_sending", "low")
    assert starvation.promoted_queue(settings, low) == topology.queue_name(
        settings, "email_sending", "normal")
