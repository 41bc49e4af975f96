"""Time limits end a task's record in FAILURE, whichever limit stops it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_a_task_past_its_soft_time_limit_fails_with_the_limit_named(deployment):
    deployment.start_worker("--type", "bounded")
    record = deployment.submit("bounded", ms=5000)
    done = deployment.wait(record.id, timeout=30)
    assert done.state == "FAILURE"
    assert done.exc_type == "SoftTimeLimitExceeded"


def test_a_task_past_its_hard_time_limit_is_killed_and_fails(deployment):
    # Given a task that ignores its soft limit, so the hard limit kills its process
    deployment.start_worker("--type", "stubborn")
    record = deployment.submit("stubborn", ms=10_000)
    # Then its record ends FAILURE with Celery's error naming the 2 s limit, and the worker
    # goes on serving
    done = deployment.wait(record.id, timeout=30)
    assert done.state == "FAILURE"
    assert done.exc_type == "TimeLimitExceeded"
    assert done.error == "TimeLimitExceeded(2,)"
    after = deployment.submit("stubborn", ms=10)
    assert deployment.wait(after.id, timeout=30).state == "SUCCESS"
