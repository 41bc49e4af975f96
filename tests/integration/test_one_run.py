"""One running attempt per task: a second delivery of an attempt whose worker lives (a lost
RabbitMQ connection, a Redis broker cut off past its lease) waits, and is dropped once the
first run ends; a task that yielded to higher tasks taken elsewhere yields once, not in a loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from relay import Relay
from test_priority import worker_events

from taskq.broker import recovery
from taskq.request import SubmitRequest
from taskq.submit import prepare

pytestmark = pytest.mark.integration

WAITS = "this delivery waits until that run ends"  # the worker's log when a delivery waits


@contextmanager
def relayed_broker(deployment) -> Iterator[Relay]:
    """A relay in front of the deployment's broker, for workers started `through` it."""
    deployment.runtime.store  # noqa: B018 - the test's own runtime goes direct
    server = urlsplit(deployment.env["TASKQ_BROKER_URL"])
    with Relay((server.hostname, server.port)) as relay:
        yield relay


def start_worker_through(deployment, relay: Relay, *args: str):
    """A worker that reaches the broker through `relay` (and the records directly)."""
    direct = dict(deployment.env)
    url = direct["TASKQ_BROKER_URL"]
    deployment.env["TASKQ_BROKER_URL"] = url.replace(
        urlsplit(url).netloc.rpartition("@")[2], relay.address, 1)
    try:
        return deployment.start_worker(*args)
    finally:
        deployment.env.clear()
        deployment.env.update(direct)


def _wait_started(deployment, task_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while deployment.runtime.store.get(task_id).state != "STARTED":
        assert time.monotonic() < deadline, deployment.worker_logs()
        time.sleep(0.02)  # polling for readiness


@pytest.mark.brokers("rabbitmq")
def test_a_task_whose_worker_loses_its_rabbitmq_connection_mid_run_runs_once(
        deployment, tmp_path):
    runs = tmp_path / "runs"
    with relayed_broker(deployment) as relay:
        # Given worker A, reaching RabbitMQ through a relay, running a task of 4 s
        a = start_worker_through(deployment, relay, "--concurrency", "1", "--type", "marked")
        task = deployment.submit("marked", marker_dir=str(runs), ms=4000)
        _wait_started(deployment, task.id)
        # And worker B waiting on the same queue
        deployment.start_worker("--concurrency", "1", "--type", "marked")
        # When A's connection is reset mid-run (RabbitMQ requeues the message; A reconnects
        # and goes on running the task)
        relay.reset_all()
        # Then the task runs once, in A, and succeeds
        done = deployment.wait(task.id, timeout=60)
        assert done.state == "SUCCESS", deployment.worker_logs()
        assert f".{a.pid}@" in done.worker, deployment.worker_logs()
        assert len(list(runs.iterdir())) == 1, deployment.worker_logs()
        # And the message redelivered meanwhile waited instead of running, and is gone
        assert WAITS in deployment.worker_logs()
        _wait_for(lambda: _nothing_held(deployment), 30, deployment.worker_logs)
        deployment.stop_workers()  # (before the relay goes)


@pytest.mark.brokers("redis")
def test_a_task_whose_worker_is_cut_off_from_its_redis_broker_past_the_lease_runs_once(
        deployment, tmp_path):
    # (The task outlasts the broker's lease, 10 s, and the scan that restores it.)
    runs = tmp_path / "runs"
    long_ms = (recovery.LEASE + 3 * recovery.RENEW_EVERY) * 1000
    with relayed_broker(deployment) as relay:
        # Given worker A, reaching its Redis broker through a relay (its records directly),
        # running a task that outlasts the broker's lease
        a = start_worker_through(deployment, relay, "--concurrency", "1", "--type", "marked")
        task = deployment.submit("marked", marker_dir=str(runs), ms=long_ms)
        _wait_started(deployment, task.id)
        # And worker B waiting on the same queue
        deployment.start_worker("--concurrency", "1", "--type", "marked")
        # When A's broker traffic is black-holed past the lease (B restores the message)
        relay.black_hole()
        # Then the task runs once, in A, and succeeds
        done = deployment.wait(task.id, timeout=120)
        assert done.state == "SUCCESS", deployment.worker_logs()
        assert f".{a.pid}@" in done.worker, deployment.worker_logs()
        assert len(list(runs.iterdir())) == 1, deployment.worker_logs()
        # And B, which restored the message, held it instead of running it, then dropped it
        logs = deployment.worker_logs()
        assert "restored 1 message(s)" in logs and WAITS in logs, logs
        relay.restore()
        _wait_for(lambda: _nothing_held(deployment), 30, deployment.worker_logs)
        deployment.stop_workers()  # (before the relay goes)


@pytest.mark.brokers
def test_a_low_task_yields_once_to_a_stream_of_high_tasks_other_workers_take(deployment):
    # Given a worker with one process reading the data type's high and low queues
    runtime = deployment.runtime
    worker = deployment.start_worker("--concurrency", "1", "--type", "data", "--events")
    stop = threading.Event()

    def stream() -> None:
        # high tasks recorded as queued every 50 ms whose messages this worker never sees
        # (as when another worker takes each at once, before its STARTED write)
        while not stop.wait(0.05):
            runtime.store.create(prepare(runtime.settings, SubmitRequest(
                type="data", priority="high", params={"data": [1]})))

    streaming = threading.Thread(target=stream, daemon=True)
    with worker_events(deployment) as events:
        streaming.start()
        try:
            time.sleep(0.2)  # the stream has begun (a recent high task is always recorded)
            # When a low task is submitted while the stream goes on
            low = deployment.submit("data", "low", data=[2])
            done = deployment.wait(low.id, timeout=8)
        finally:
            stop.set()
            streaming.join(5)
        _wait_for(lambda: ("task-succeeded", low.id) in {e[:2] for e in events}, 10,
                  deployment.worker_logs)
    # Then it runs, while the stream still goes on, after exactly one yield
    assert done.state == "SUCCESS"
    yields = [e for e in events if e[:2] == ("task-rejected", low.id)]
    assert len(yields) == 1, events
    deployment.kill_worker(worker)


def _nothing_held(deployment) -> bool:
    """No message in the deployment's queues, nor held unacknowledged on a Redis broker."""
    from taskq.broker.queues import queue_stats

    if any(q.depth for q in queue_stats(deployment.runtime)):
        return False
    if deployment.broker == "rabbitmq":
        return True
    prefix = f'"{deployment.runtime.settings.key_prefix}.'.encode()
    client = deployment.runtime.store.client
    return not any(prefix in raw for _, raw in client.hscan_iter("unacked"))


def _wait_for(predicate, timeout, describe):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, describe()
        time.sleep(0.1)  # polling for the broker's queues to settle
