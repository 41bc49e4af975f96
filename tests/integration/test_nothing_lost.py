"""Nothing lost: a worker killed mid-run, and delays longer than a Redis lease."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from listening import listening
from relay import Relay

from taskq.broker import recovery

pytestmark = pytest.mark.integration

FINAL = {"SUCCESS", "FAILURE", "REVOKED"}


class StateEvents(list):
    """(task id, state) of every state event the records published, in order."""

    def wait_for(self, predicate, timeout: float = 30.0) -> None:
        """Block until `predicate(self)` holds: the events it needs have arrived."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            assert time.monotonic() < deadline, f"events still missing: {self[-20:]}"
            time.sleep(0.02)  # polling for events on their way


@contextmanager
def state_events(deployment) -> Iterator[StateEvents]:
    """Every (task id, state) the records publish from the start of the block (subscribed
    before it starts) to its end; `wait_for` what the test needs before leaving it."""
    store = deployment.runtime.store
    pubsub = store.client.pubsub()
    pubsub.subscribe(store.events_channel)
    confirmed = pubsub.get_message(timeout=10)
    assert confirmed is not None and confirmed["type"] == "subscribe", confirmed
    events = StateEvents()

    def record(message):
        event = json.loads(message["data"])
        events.append((event["id"], event["state"]))

    try:
        with listening(pubsub, record):
            yield events
    finally:
        pubsub.close()


def _wait_started(deployment, task_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while deployment.runtime.store.get(task_id).state != "STARTED":
        assert time.monotonic() < deadline, deployment.worker_logs()
        time.sleep(0.02)  # polling for readiness


def _wait_final(deployment, ids, count, timeout=60.0):
    deadline = time.monotonic() + timeout
    store = deployment.runtime.store
    while True:
        pipe = store.client.pipeline(transaction=False)
        for task_id in ids:
            pipe.hget(store.key(task_id), "state")
        done = sum(1 for state in pipe.execute() if state and state.decode() in FINAL)
        if done >= count:
            return
        assert time.monotonic() < deadline, f"{done} of {count} final\n{deployment.worker_logs()}"
        time.sleep(0.1)  # polling for progress


@pytest.mark.brokers
def test_a_worker_killed_mid_run_loses_no_task_and_its_task_ends_once_elsewhere(deployment):
    with state_events(deployment) as events:
        # Given worker A running a 4 s task, and 300 short tasks queued
        a = deployment.start_worker("--concurrency", "2")
        long_task = deployment.submit("spin", "high", ms=4000)
        _wait_started(deployment, long_task.id)
        shorts = [deployment.submit("spin", "low", ms=5).id for _ in range(300)]
        # And worker B sharing the work
        b = deployment.start_worker("--concurrency", "2")
        _wait_final(deployment, shorts, 10)
        # When A is killed with SIGKILL, main process and pool, in the middle of the long task
        assert deployment.runtime.store.get(long_task.id).state == "STARTED"
        deployment.kill_worker(a)
        # Then every task ends, the long one on B
        _wait_final(deployment, [long_task.id, *shorts], 301, timeout=90)
        events.wait_for(lambda seen: {task for task, state in seen if state in FINAL}
                        >= {long_task.id, *shorts})
    record = deployment.runtime.store.get(long_task.id)
    assert record.state == "SUCCESS"
    assert f".{b.pid}@" in record.worker
    # And each task reached a final state exactly once (repeated work is counted, not lost)
    finals = Counter(task_id for task_id, state in events if state in FINAL)
    starts = Counter(task_id for task_id, state in events if state == "STARTED")
    assert set(finals) == {long_task.id, *shorts}
    assert set(finals.values()) == {1}
    assert {events_state for _, events_state in events if events_state in FINAL} == {"SUCCESS"}
    repeated = sum(n - 1 for n in starts.values())
    print(f"[{deployment.broker}] 301 tasks, 0 lost, {repeated} run again after the kill")
    assert starts[long_task.id] == 2


@pytest.mark.brokers("embedded", "redis")
def test_a_task_delayed_longer_than_the_lease_runs_exactly_once(deployment):
    # Given two workers on a Redis broker, whose held messages are leased for LEASE seconds
    deployment.start_worker("--concurrency", "1")
    deployment.start_worker("--concurrency", "1")
    with state_events(deployment) as events:
        # When a task is delayed past the lease (it waits in the due set, not in a worker)
        record = deployment.submit("data", delay=recovery.LEASE + 2 * recovery.RENEW_EVERY,
                                   data=[1, 2])
        done = deployment.wait(record.id, timeout=60)
        events.wait_for(lambda seen: (record.id, "SUCCESS") in seen)
    # Then it was moved to its queue when due and ran once
    assert done.state == "SUCCESS"
    assert done.started_at >= record.eta - 0.05
    assert [state for _, state in events] == ["QUEUED", "STARTED", "SUCCESS"]



@pytest.mark.brokers("redis")
def test_a_task_running_across_a_reconnect_runs_once(deployment, tmp_path):
    # Given worker A, whose connection to the Redis broker goes through a relay, running a task
    # longer than a lease plus a scan, and worker B waiting on the same queues
    url = deployment.env["TASKQ_BROKER_URL"]
    host, port = url.split("//")[1].split("/")[0].split(":")
    with Relay((host, int(port))) as relay:
        direct = dict(deployment.env)
        deployment.env["TASKQ_BROKER_URL"] = url.replace(f"{host}:{port}",
                                                         f"127.0.0.1:{relay.port}")
        a = deployment.start_worker("--concurrency", "1", "--type", "marked")
        runs = tmp_path / "runs"
        long_ms = (recovery.LEASE + 3 * recovery.RENEW_EVERY) * 1000
        task = deployment.submit("marked", marker_dir=str(runs), ms=long_ms)
        _wait_started(deployment, task.id)
        deployment.env.clear()
        deployment.env.update(direct)
        deployment.start_worker("--concurrency", "1", "--type", "marked")
        # When A's broker connections are reset mid-run (A reconnects)
        relay.reset_all()
        # Then the task runs once, in A, and succeeds
        done = deployment.wait(task.id, timeout=120)
        assert done.state == "SUCCESS", deployment.worker_logs()
        assert f".{a.pid}@" in done.worker, deployment.worker_logs()
        assert len(list(runs.iterdir())) == 1, deployment.worker_logs()
        assert "Connection to broker lost" in deployment.worker_logs()
        deployment.stop_workers()  # before the relay goes
