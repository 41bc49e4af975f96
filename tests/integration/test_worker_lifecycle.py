"""A worker's processes ending: SIGTERM lets running tasks finish (warm shutdown), and a pool
process that dies mid-task gives its task back to run again (task_reject_on_worker_lost)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from taskq.broker import recovery
from taskq.worker import ROOT_ADVICE

pytestmark = pytest.mark.integration


def _runs(marker_dir: Path) -> list[int]:
    """The process id of each run of a `marked` task, in the order they began."""
    if not marker_dir.exists():
        return []
    names = sorted(marker_dir.iterdir(), key=lambda path: int(path.name.split("-")[1]))
    return [int(path.name.split("-")[2]) for path in names]


def _wait_runs(marker_dir: Path, count: int, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while len(runs := _runs(marker_dir)) < count:
        assert time.monotonic() < deadline, f"{len(runs)} runs of {count}"
        time.sleep(0.02)  # polling for the work to begin
    return runs


@pytest.mark.brokers("embedded", "rabbitmq")
def test_sigterm_lets_the_running_task_finish_and_leaves_the_queued_one_queued(
        deployment, tmp_path):
    # Given a one-process worker running a task of 1.5 s of CPU, and another task queued
    worker = deployment.start_worker("--concurrency", "1", "--type", "marked")
    running = deployment.submit("marked", marker_dir=str(tmp_path / "running"), ms=1500)
    _wait_runs(tmp_path / "running", 1)
    queued = deployment.submit("marked", marker_dir=str(tmp_path / "queued"))
    # When the worker gets SIGTERM mid-run
    worker.send_signal(signal.SIGTERM)
    stopped_by = time.time()
    # Then it exits 0 once the running task has finished, with its result kept
    assert worker.wait(60) == 0, deployment.worker_logs()
    done = deployment.runtime.store.get(running.id)
    assert done.state == "SUCCESS", deployment.worker_logs()
    assert done.finished_at > stopped_by
    assert len(_runs(tmp_path / "running")) == 1
    # And the queued task was not started, and runs on the next worker
    assert deployment.runtime.store.get(queued.id).state == "QUEUED"
    assert _runs(tmp_path / "queued") == []
    deployment.start_worker("--concurrency", "1", "--type", "marked")
    assert deployment.wait(queued.id, timeout=30).state == "SUCCESS"


@pytest.mark.brokers("embedded", "rabbitmq")
def test_a_pool_process_killed_mid_task_gives_the_task_back_and_it_runs_again(
        deployment, tmp_path):
    # Given a one-process worker running a task of 1.5 s of CPU
    worker = deployment.start_worker("--concurrency", "1", "--type", "marked")
    task = deployment.submit("marked", marker_dir=str(tmp_path / "runs"), ms=1500)
    [first] = _wait_runs(tmp_path / "runs", 1)
    # When the pool process running it is killed (the worker's main process lives on)
    os.kill(first, signal.SIGKILL)
    # Then the task runs again, in the process that replaced it, and succeeds
    done = deployment.wait(task.id, timeout=60)
    assert done.state == "SUCCESS", done.error
    runs = _runs(tmp_path / "runs")
    assert len(runs) == 2 and runs[1] != first
    assert done.result == {"pid": runs[1]}
    assert worker.poll() is None


@pytest.mark.brokers
def test_a_warm_shutdown_keeps_the_running_task_so_a_waiting_worker_does_not_run_it_again(
        deployment, tmp_path):
    # Given worker A running a task longer than a Redis lease plus a scan, taken while A was
    # idle (on RabbitMQ: pushed to A's standby subscription)
    a = deployment.start_worker("--concurrency", "1", "--type", "marked")
    runs = tmp_path / "runs"
    long_ms = (recovery.LEASE + 3 * recovery.RENEW_EVERY) * 1000
    task = deployment.submit("marked", marker_dir=str(runs), ms=long_ms)
    [first] = _wait_runs(runs, 1)
    # And worker B, idle, reading the same queues
    b = deployment.start_worker("--concurrency", "1", "--type", "marked")
    # When A gets SIGTERM mid-run (warm shutdown)
    a.send_signal(signal.SIGTERM)
    # Then A finishes the task and exits 0, and the task ran once, in A
    assert a.wait(120) == 0, deployment.worker_logs()
    done = deployment.runtime.store.get(task.id)
    assert done.state == "SUCCESS", deployment.worker_logs()
    assert f".{a.pid}@" in done.worker
    # And nothing of it is left for B to run: not in a queue, not held by anyone
    assert _runs(runs) == [first], deployment.worker_logs()
    assert _nothing_left(deployment)
    assert b.poll() is None


def _nothing_left(deployment) -> bool:
    """No message of this deployment waiting in a queue, nor (Redis brokers) held unacked."""
    from taskq.broker.queues import queue_stats

    if any(q.depth for q in queue_stats(deployment.runtime)):
        return False
    if deployment.broker == "rabbitmq":
        return True
    prefix = deployment.runtime.settings.key_prefix
    with deployment.runtime.celery.connection_for_read() as connection:
        channel = connection.default_channel
        held = channel.client.hgetall(channel.unacked_key)
    return not [raw for raw in held.values() if recovery._routing_key(raw).startswith(prefix)]
def test_a_worker_run_as_root_gives_taskq_s_advice_not_celery_s_uid_warning(deployment):
    # Given a worker started (these tests run as root on CI's machine)
    deployment.start_worker("--type", "data")
    deployment.stop_workers()
    log = deployment.worker_logs()
    # Then, as root, the log has taskq's one line of advice and not Celery's warning,
    # which names a --uid option taskq worker does not have; otherwise neither
    assert (ROOT_ADVICE in log) == (os.geteuid() == 0), log
    assert "--uid" not in log and "superuser" not in log
