"""Held work is bounded: a worker holds no delayed task (they wait in the due set until due,
taskq/store/delayed.py), and delayed tasks falling due do not run ahead of a higher task."""

from __future__ import annotations

import time

import pytest

from taskq import bulk, submit, topology
from taskq.broker.queues import queue_stats
from taskq.request import SubmitRequest

pytestmark = pytest.mark.integration

LOWS = 100
DELAY = 6.0  # seconds: long enough to see what the worker holds before they fall due
LOW_MS = 3000  # CPU time of a low task ("one task's time"), longer than the yield window


def _queue(deployment, queue: str):
    [info] = [q for q in queue_stats(deployment.runtime) if q.name == queue]
    return info


def _started_at(deployment, ids: list[str]) -> list[float]:
    store = deployment.runtime.store
    pipe = store.client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hget(store.key(task_id), "started_at")
    return [float(at) for at in pipe.execute() if at is not None]


@pytest.mark.brokers
def test_a_worker_holds_no_delayed_task_and_a_high_task_overtakes_them_once_due(
        deployment):
    # Given a one-process worker
    deployment.start_worker("--concurrency", "1", "--type", "spin")
    settings = deployment.runtime.settings
    queue = topology.queue_name(settings, "spin", "low")
    # When 100 low tasks are submitted together, each delayed by a few seconds
    lows = bulk.submit_all(deployment.runtime, [
        submit.prepare(settings, SubmitRequest(type="spin", priority="low",
                                               params={"ms": LOW_MS}, delay=DELAY))
        for _ in range(LOWS)])
    # Then the worker takes none of them before they are due: they wait in the due set
    info = _queue(deployment, queue)
    assert (info.depth, info.scheduled) == (0, LOWS)
    # When they have fallen due, and a high task is submitted 1 s later
    due = max(record.eta for record in lows)
    assert time.time() < due, "the worker took too long to start: no delay left to watch"
    while time.time() < due + 1:
        time.sleep(0.05)  # waiting for the clock, not for work
    high = deployment.submit("spin", "high", ms=10)
    # Then it starts within one low task's time: no low task starts after it was submitted
    # and before it starts but the one taken at that moment (at most)
    done = deployment.wait(high.id, timeout=60)
    assert done.state == "SUCCESS", done.error
    overtaking = [at for at in _started_at(deployment, [r.id for r in lows])
                  if high.submitted_at < at < done.started_at]
    assert len(overtaking) <= 1, (len(overtaking), deployment.worker_logs())
