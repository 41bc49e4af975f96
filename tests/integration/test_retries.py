"""Retries against a real SMTP server: transient replies retried with growing delays,
permanent ones failed at once with the server's reply kept."""

from __future__ import annotations

import time

import pytest

from taskq import topology
from taskq.records import TaskRecord

pytestmark = pytest.mark.integration

# How late a due retry may start on a loaded machine; less than the 0.5 s between the
# delays of a doubling policy and a linear or doubled one.
LATE = 0.4


@pytest.mark.brokers
def test_email_answered_451_three_times_is_retried_with_doubling_delays_and_arrives_once(
        deployment, smtp_server):
    # Given an SMTP server that answers 451 three times, then 250, and the test config's
    # policy for email: backoff 0.5 s, doubling, no jitter
    smtp_server.script(*["451 4.3.0 try again later"] * 3)
    policy = deployment.runtime.settings.task_types["email_sending"].retry
    assert (policy.backoff, policy.jitter, policy.max_retries) == (0.5, False, 3)
    deployment.start_worker("--type", "email")
    # When an email is submitted
    record = deployment.submit("email", to="a@example.com", subject="retry me")
    done = deployment.wait(record.id, timeout=60)
    # Then it succeeds on the fourth attempt, and the message arrived exactly once
    assert done.state == "SUCCESS", done.traceback
    assert done.attempts == 4
    assert [m.message["Subject"] for m in smtp_server.messages] == ["retry me"]
    assert smtp_server.attempts["data"] == 4
    # And each failed attempt is recorded with the server's reply
    errors = done.attempt_errors
    assert [e["attempt"] for e in errors] == [1, 2, 3]
    assert all("451" in e["error"] and "try again later" in e["error"] for e in errors)
    assert all(e["exc_type"] == "TransientError" for e in errors)
    # And retry n came backoff x 2^(n-1) after the failure before it (0.5, 1, 2 s): never
    # sooner, and later only by the time it takes to start a due task
    failed_at = [e["at"] for e in errors]
    gaps = [b - a for a, b in zip(failed_at, [*failed_at[1:], done.started_at], strict=True)]
    expected = [policy.backoff * 2 ** (n - 1) for n in (1, 2, 3)]
    print(f"[{deployment.broker}] gaps {[round(g, 3) for g in gaps]}, expected {expected}")
    for gap, wanted in zip(gaps, expected, strict=True):
        assert wanted - 0.02 <= gap <= wanted + LATE, (gaps, expected)


def test_email_answered_550_fails_at_once_without_retries(deployment, smtp_server):
    smtp_server.refuse("550 5.1.1 no such user")
    deployment.start_worker("--type", "email")
    record = deployment.submit("email", to="nobody@example.com")
    done = deployment.wait(record.id, timeout=60)
    assert done.state == "FAILURE"
    assert done.attempts == 1
    assert "550" in done.error and "no such user" in done.error
    assert done.exc_type == "PermanentError"
    assert smtp_server.messages == []


@pytest.mark.brokers
def test_transient_errors_stop_after_max_retries_with_every_attempt_recorded(
        deployment, tmp_path):
    # Given a job that fails transiently 10 times, and a policy of 3 retries
    deployment.start_worker("--type", "flaky")
    record = deployment.submit("flaky", marker_dir=str(tmp_path / "runs"), failures=10)
    done = deployment.wait(record.id, timeout=60)
    # Then it ran 4 times (1 + 3 retries) and ended FAILURE with the last error kept
    assert done.state == "FAILURE"
    assert done.attempts == 4
    assert len(list((tmp_path / "runs").iterdir())) == 4
    assert [e["attempt"] for e in done.attempt_errors] == [1, 2, 3, 4]
    assert "run 4 of 10" in done.error
    assert "TransientError" in done.traceback


def test_missing_file_fails_at_once_without_retries(deployment):
    deployment.start_worker("--type", "file")
    record = deployment.submit("file", filename="nope.txt")
    done = deployment.wait(record.id, timeout=60)
    assert done.state == "FAILURE"
    assert done.attempts == 1
    assert "no such file: nope.txt" in done.error


def test_a_task_waiting_to_retry_is_in_retry_with_its_next_attempt_time_from_the_backoff(
        deployment, tmp_path):
    # Given a task that fails transiently twice, with retries after 1 s and then 2 s
    deployment.start_worker("--type", "hesitant")
    policy = deployment.runtime.settings.task_types["hesitant"].retry
    task = deployment.submit("hesitant", marker_dir=str(tmp_path / "runs"), failures=2)
    # When its record is read while it waits for each retry
    store = deployment.runtime.store
    waiting: dict[int, tuple[TaskRecord, float]] = {}
    deadline = time.monotonic() + 60
    while not (record := store.get(task.id)).final:
        if record.state == "RETRY":
            waiting.setdefault(len(record.attempt_errors), (record, time.time()))
        assert time.monotonic() < deadline, record
        time.sleep(0.02)  # polling for the states it passes through
    # Then after failure n it is RETRY with next_attempt_at set, in the future, at
    # backoff x 2^(n-1) after that failure
    assert sorted(waiting) == [1, 2]
    for failures, (seen, read_at) in waiting.items():
        failed_at = seen.attempt_errors[-1]["at"]
        assert seen.next_attempt_at == pytest.approx(
            failed_at + policy.backoff * 2 ** (failures - 1), abs=0.05)
        assert seen.next_attempt_at > read_at
    # And the last attempt began no sooner than the time announced
    assert record.state == "SUCCESS"
    assert record.started_at >= waiting[2][0].next_attempt_at - 0.02


def test_once_a_retry_has_succeeded_next_attempt_at_and_the_error_are_cleared(deployment,
                                                                           tmp_path):
    # Given a task that fails once, then succeeds
    deployment.start_worker("--type", "flaky")
    task = deployment.submit("flaky", marker_dir=str(tmp_path / "runs"), failures=1)
    # When it is done
    done = deployment.wait(task.id, timeout=30)
    # Then it took two attempts, and no next attempt is announced
    assert (done.state, done.attempts) == ("SUCCESS", 2)
    assert done.next_attempt_at is None


@pytest.mark.brokers
def test_a_stale_copy_of_a_failed_attempt_is_dropped_not_run_again(deployment, tmp_path):
    # Given a task whose first attempt failed transiently and waits 1 s to retry
    deployment.start_worker("--concurrency", "1", "--type", "hesitant")
    runs = tmp_path / "runs"
    record = deployment.submit("hesitant", marker_dir=str(runs), failures=1)
    store = deployment.runtime.store
    deadline = time.monotonic() + 30
    while store.get(record.id).state != "RETRY":
        assert time.monotonic() < deadline, deployment.worker_logs()
        time.sleep(0.02)  # polling for the first attempt to fail
    # When a copy of the first attempt's message is delivered meanwhile (as a message restored
    # after its ack was lost would be)
    deployment.runtime.celery.send_task(
        topology.task_name(record.type), kwargs=record.params, task_id=record.id,
        queue=record.queue, routing_key=record.queue, taskq_raw=True)
    # Then the retry runs and succeeds as attempt 2, and the copy never ran: two runs in all
    done = deployment.wait(record.id, timeout=30)
    assert (done.state, done.attempts) == ("SUCCESS", 2), deployment.worker_logs()
    assert len(list(runs.iterdir())) == 2, deployment.worker_logs()
    assert store.client.hget(store.key(record.id), "superseded") == b"1"
    assert f"dropped task {record.id}: attempt 1 is superseded" in deployment.worker_logs()
    # And the error of the failed attempt stays in its history, not on the successful task
    assert (done.error, done.exc_type) == (None, None)
    assert [entry["attempt"] for entry in done.attempt_errors] == [1]
