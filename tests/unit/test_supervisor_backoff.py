"""How long `taskq up` waits before restarting something that keeps dying."""

from __future__ import annotations

from taskq.supervisor import backoff


def test_restart_backoff_doubles_from_one_second_up_to_thirty():
    assert [backoff(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_restart_backoff_stays_bounded_after_many_deaths():
    assert backoff(10_000) == 30.0
