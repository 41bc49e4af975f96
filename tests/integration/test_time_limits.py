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


def test_a_retry_killed_by_its_hard_time_limit_is_recorded_as_that_attempt(deployment, tmp_path):
    # Given a task that fails transiently once, then ignores its soft limit on the retry
    deployment.start_worker("--type", "stubborn_later")
    record = deployment.submit("stubborn_later", marker_dir=str(tmp_path / "runs"), ms=10_000)
    # Then its record ends FAILURE after the second attempt, which the hard limit killed
    done = deployment.wait(record.id, timeout=30)
    assert done.state == "FAILURE"
    assert done.exc_type == "TimeLimitExceeded"
    assert [(e["attempt"], e["exc_type"]) for e in done.attempt_errors] == [
        (1, "TransientError"), (2, "TimeLimitExceeded")]
