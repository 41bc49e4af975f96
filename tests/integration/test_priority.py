"""Strict priority on every broker: a high task overtakes a backlog of low ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from taskq.request import SubmitRequest

pytestmark = pytest.mark.integration

BACKLOG = 2000
LOW_MS = 10
CONCURRENCY = 2


def _started_at(deployment, ids):
    store = deployment.runtime.store
    pipe = store.client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hget(store.key(task_id), "started_at")
    return [float(at) for at in pipe.execute() if at is not None]


def _wait_until_busy(deployment, ids, started=20, timeout=60.0):
    deadline = time.monotonic() + timeout
    while len(_started_at(deployment, ids[:100])) < started:
        assert time.monotonic() < deadline, deployment.worker_logs()
        time.sleep(0.05)  # polling for readiness


@contextmanager
def received_events(deployment) -> Iterator[dict[str, float]]:
    """Task id -> when the worker took it from the broker (its `task-received` event)."""
    app = deployment.runtime.celery
    received: dict[str, float] = {}
    listening = threading.Event()

    def on_received(event):
        received[event["uuid"]] = event["timestamp"]
        listening.set()

    with app.connection_for_read() as conn:
        receiver = app.events.Receiver(conn, handlers={"task-received": on_received})
        thread = threading.Thread(target=receiver.capture,
                                  kwargs={"limit": None, "wakeup": False}, daemon=True)
        thread.start()
        assert listening.wait(30), "no task-received event from the worker"
        try:
            yield received
        finally:
            receiver.should_stop = True
            thread.join(10)


@pytest.mark.brokers
def test_high_task_is_taken_before_any_more_of_a_2000_low_backlog(deployment):
    # Given 2,000 low tasks of 10 ms of CPU queued, and a worker with 2 processes busy on them
    lows = [deployment.submit("spin", "low", ms=LOW_MS).id for _ in range(BACKLOG)]
    worker = deployment.start_worker("--concurrency", str(CONCURRENCY), "--events")
    _wait_until_busy(deployment, lows)
    with received_events(deployment) as received:
        # When a high task of another type is submitted
        high = deployment.submit("data", "high", data=[1, 2, 3])
        # (its message is in the broker once submit returns; submitted_at is stamped
        # before the record and the message are written)
        enqueued = time.time()
        done = deployment.wait(high.id, timeout=30)
    # Then it is the next task the worker takes from the broker: no low one is taken
    # between the moment it is queued and it
    assert done.state == "SUCCESS"
    taken_before = [t for t in lows if enqueued < received.get(t, 0) < received[high.id]]
    started = [at for at in _started_at(deployment, lows) if enqueued < at < done.started_at]
    waited_ms = (done.started_at - enqueued) * 1000
    print(f"[{deployment.broker}] low tasks taken before the high one: {len(taken_before)}, "
          f"started while it waited: {len(started)}; it started after {waited_ms:.1f} ms")
    # (a worker has one fetch in flight at a time: a low task the broker handed out just
    # before the high one arrived may be read, and reported, a moment after it; so at most
    # one; a broker serving the queues in turn takes several)
    assert len(taken_before) <= 1
    # and no low task starts while it waits: one taken a moment before it was queued gives
    # its process back when about to start. (A low task may still start in the other
    # process at the very moment the high one starts: each time is stamped just before the
    # start is written, so the two can cross; at most one.)
    assert len(started) <= 1
    # (the rest of the backlog is not this test's subject: stop at once, queues are deleted)
    deployment.kill_worker(worker)


@pytest.mark.brokers
def test_a_low_task_gives_its_process_to_a_higher_one_queued_and_not_started(deployment):
    # Given a high task recorded as queued a moment ago whose message the worker cannot
    # take (it never reached the broker: as if it were still on its way, or just taken by
    # another worker), then two low tasks queued
    from taskq.store import YIELD_WINDOW
    from taskq.submit import prepare

    runtime = deployment.runtime
    high = prepare(runtime.settings, SubmitRequest(type="data", priority="high",
                                                   params={"data": [1]}))
    runtime.store.create(high)
    first, second = (deployment.submit("data", "low", data=[n]) for n in (1, 2))
    # When a worker with one process takes the low ones
    deployment.start_worker("--concurrency", "1", "--type", "data")
    done = [deployment.wait(record.id, timeout=30) for record in (first, second)]
    # Then they run, but only once the high one is older than the yield window (a high
    # task whose message never comes holds them back that long, no longer)
    assert [record.state for record in done] == ["SUCCESS", "SUCCESS"]
    assert done[0].started_at >= high.submitted_at + YIELD_WINDOW
    # and the first keeps its place at the head of its queue while it gives way
    assert done[0].started_at < done[1].started_at
    # and giving way is not reported as a fault
    logs = deployment.worker_logs()
    assert "Traceback" not in logs and "rejected" not in logs, logs
