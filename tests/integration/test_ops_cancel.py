"""`taskq cancel` in every state, with and without a worker, on real workers."""

from __future__ import annotations

import json
import time

import pytest

from taskq import control

pytestmark = pytest.mark.integration


def _poll(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)  # polling for readiness
    raise AssertionError("condition not met in time")


@pytest.mark.brokers()
def test_cancelled_queued_and_delayed_tasks_never_run_even_when_a_worker_starts_later(
        deployment, tmp_path):
    # Given a queued and a delayed task whose work leaves a marker file, and no worker running
    queued = deployment.submit("marked", marker_dir=str(tmp_path / "queued"))
    delayed = deployment.submit("marked", delay=1.0, marker_dir=str(tmp_path / "delayed"))
    # When both are cancelled
    for task in (queued, delayed):
        result = deployment.cli("cancel", task.id, "--json")
        # Then each is REVOKED at once
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["state"] == "REVOKED"
    # And when a worker starts later and runs a task submitted after them (due after the
    # delayed one), the work of the cancelled ones never ran: no marker file
    deployment.start_worker("--concurrency", "1")
    marker = deployment.submit("marked", delay=1.5, marker_dir=str(tmp_path / "after"))
    assert deployment.wait(marker.id, timeout=30).state == "SUCCESS"
    assert len(list((tmp_path / "after").iterdir())) == 1
    assert not (tmp_path / "queued").exists()
    assert not (tmp_path / "delayed").exists()
    # and their records still say so
    for task in (queued, delayed):
        record = deployment.runtime.store.get(task.id)
        assert record.state == "REVOKED"
        assert record.started_at is None
    # And their messages were consumed, not left in the queue
    depths = {q["name"]: q["depth"] for q in deployment.cli_json("queues", "--type", "marked")}
    assert set(depths.values()) == {0}


def test_running_task_needs_terminate_and_finished_tasks_cannot_be_cancelled(deployment):
    # Given a single-process worker running a long task
    deployment.start_worker("--concurrency", "1")
    long = deployment.submit("spin", ms=60000)
    store = deployment.runtime.store
    _poll(lambda: store.get(long.id).state == "STARTED")
    # When it is cancelled without --terminate, Then exit 8 and it keeps running
    refused = deployment.cli("cancel", long.id)
    assert refused.returncode == 8
    assert "--terminate" in refused.stderr
    assert store.get(long.id).state == "STARTED"
    # When cancelled with --terminate, Then it is REVOKED and the process is free again
    killed = deployment.cli("cancel", long.id, "--terminate", "--json")
    assert killed.returncode == 0, killed.stderr
    assert json.loads(killed.stdout)["state"] == "REVOKED"
    quick = deployment.submit("spin", ms=1)
    assert deployment.wait(quick.id, timeout=20).state == "SUCCESS"
    # And cancelling finished tasks exits 8, names the state and changes nothing
    for task, state in ((long, "REVOKED"), (quick, "SUCCESS")):
        again = deployment.cli("cancel", task.id)
        assert again.returncode == 8
        assert f"already finished ({state})" in again.stderr
        assert store.get(task.id).state == state
    assert deployment.cli("cancel", "no-such-id").returncode == 4


def test_a_task_cancelled_while_waiting_to_retry_is_not_attempted_again(deployment, tmp_path):
    # Given a task that fails transiently on every attempt, with a worker running it
    deployment.start_worker("--concurrency", "1")
    task = deployment.submit("flaky", marker_dir=str(tmp_path / "runs"), failures=100)
    store = deployment.runtime.store
    # When it is cancelled while it waits for its next attempt
    _poll(lambda: store.get(task.id).state == "RETRY", timeout=30)
    record = control.cancel(deployment.runtime, task.id)
    assert record.state == "REVOKED"
    runs = len(list((tmp_path / "runs").iterdir()))
    # Then no later attempt runs: a task submitted after its retry was due finishes first
    marker = deployment.submit("spin", delay=2.0, ms=1)
    assert deployment.wait(marker.id, timeout=30).state == "SUCCESS"
    assert len(list((tmp_path / "runs").iterdir())) == runs
    assert store.get(task.id).state == "REVOKED"
