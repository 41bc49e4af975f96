"""The starvation guard: under a steady load of normal tasks, a low task runs once it has
waited max_wait (as if it were normal); without the guard it waits as long as the load lasts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from taskq import bulk, submit, topology
from taskq.broker import starvation
from taskq.request import SubmitRequest

pytestmark = pytest.mark.integration

MAX_WAIT = 2.0  # seconds
TASK_MS = 30  # one task's time
BACKLOG = 100  # normal tasks queued before the low one: 3 s of work for one process
FEED_EVERY = 0.02  # then one more normal task every 20 ms, more than the worker runs
LOOKED_FOR = MAX_WAIT + 2.0  # how long the test watches the low task


def _guard_low(deployment, seconds: float | None) -> None:
    path = Path(deployment.env["TASKQ_CONFIG"])
    raw = yaml.safe_load(path.read_text())
    if seconds is not None:
        raw["queues"]["max_wait"] = {"low": seconds}
    path.write_text(yaml.safe_dump(raw))


def _queue(deployment, priority: str, count: int) -> list[str]:
    settings = deployment.runtime.settings
    records = [submit.prepare(settings, SubmitRequest(type="spin", priority=priority,
                                                      params={"ms": TASK_MS}))
               for _ in range(count)]
    return [record.id for record in bulk.submit_all(deployment.runtime, records)]


@contextmanager
def steady_normal_load(deployment) -> Iterator[None]:
    """A backlog of normal tasks, and more of them every FEED_EVERY while the block runs."""
    _queue(deployment, "normal", BACKLOG)
    stop = threading.Event()

    def feed() -> None:
        while not stop.wait(FEED_EVERY):  # the load's own pace, not a stand-in for work
            _queue(deployment, "normal", 1)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        yield
    finally:
        stop.set()
        feeder.join(10)


def _started_after(deployment, task_id: str, limit: float) -> float | None:
    """Seconds from submit to start of `task_id`, watched for at most `limit` seconds."""
    store = deployment.runtime.store
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        record = store.get(task_id)
        if record.started_at is not None:
            return record.started_at - record.submitted_at
        time.sleep(0.05)  # polling the record
    return None


@pytest.mark.brokers("embedded", "rabbitmq")
def test_a_low_task_runs_within_max_wait_under_a_steady_normal_load(deployment):
    # Given a one-process worker, low tasks guarded after 2 s, and a steady normal load
    _guard_low(deployment, MAX_WAIT)
    deployment.start_worker("--concurrency", "1", "--type", "spin")
    with steady_normal_load(deployment):
        # When a low task is queued
        [low] = _queue(deployment, "low", 1)
        waited = _started_after(deployment, low, LOOKED_FOR)

    # Then it started after about max_wait (plus one task, and the guard's look every
    # 0.25 s; generous, the machine is shared), not before
    assert waited is not None, "the low task never started"
    assert MAX_WAIT - 0.1 <= waited <= MAX_WAIT + 1.5, waited


def test_without_the_guard_a_low_task_waits_while_normal_work_keeps_coming(deployment):
    # Given a one-process worker, no guard, and a steady normal load
    _guard_low(deployment, None)
    deployment.start_worker("--concurrency", "1", "--type", "spin")
    with steady_normal_load(deployment):
        # When a low task is queued
        [low] = _queue(deployment, "low", 1)

        # Then it has not started by the time the guard would have run it, and more
        waited = _started_after(deployment, low, LOOKED_FOR)
    assert waited is None, waited


def test_a_delayed_task_counts_as_waiting_only_from_its_eta(deployment):
    # Given low tasks guarded after 0.5 s, a low task delayed by a minute, and no worker
    _guard_low(deployment, 0.5)
    settings = deployment.runtime.settings
    deployment.submit("spin", priority="low", delay=60, ms=TASK_MS)
    guard = starvation.AgingGuard(settings, deployment.runtime.store)
    low = topology.queue_name(settings, "spin", "low")
    queues = [SimpleNamespace(name=name) for name in topology.all_queues(settings)]

    # When the guard looks after more than max_wait
    time.sleep(starvation.CHECK_EVERY + 0.6)  # the waiting time under test
    guard.order(queues)

    # Then the delayed task has not waited (it is not due), so its queue keeps its rank
    assert low not in guard._aged
    # And once a task delayed by 0.2 s has waited over max_wait since its ETA, its queue is
    # read a priority up
    deployment.submit("spin", priority="low", delay=0.2, ms=TASK_MS)
    time.sleep(starvation.CHECK_EVERY + 0.2 + 0.6)
    ordered = [q.name for q in guard.order(queues)]
    assert low in guard._aged
    assert ordered.index(low) < ordered.index(topology.queue_name(settings, "spin", "normal"))
