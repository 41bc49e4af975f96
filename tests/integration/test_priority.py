"""Strict priority on every broker: a high task overtakes a backlog of low ones."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from listening import listening

from taskq.request import SubmitRequest
from taskq.urls import redis_client

pytestmark = pytest.mark.integration

BACKLOG = 2000
LOW_MS = 10
CONCURRENCY = 2
# High tasks sent one after another: a low one is being taken at the moment a high one is
# queued in about 1 of 10 (Redis) to 1 of 2 (RabbitMQ) of them; 30 make sure the test
# meets that case on every broker.
HIGHS = 30
# Redis pushes client-side caching invalidations to a connection subscribed to this channel.
INVALIDATIONS = "__redis__:invalidate"
# Seconds a worker's started_at stamp may precede its STARTED write (a loaded machine)
STAMP_BEFORE_WRITE = 0.1


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
def worker_events(deployment) -> Iterator[list[tuple[str, str, float]]]:
    """(event type, task id, when) of every task event the worker sends while the block runs:
    `task-received` when it took the task from the broker, `task-rejected` when it gave it
    back (a yield)."""
    app = deployment.runtime.celery
    seen: list[tuple[str, str, float]] = []
    heard = threading.Event()

    def on_event(event):
        if event["type"].startswith("task-"):
            seen.append((event["type"], event["uuid"], event["timestamp"]))
        heard.set()

    with app.connection_for_read() as conn:
        receiver = app.events.Receiver(conn, handlers={"*": on_event})
        thread = threading.Thread(target=receiver.capture,
                                  kwargs={"limit": None, "wakeup": False}, daemon=True)
        thread.start()
        assert heard.wait(30), "no event from the worker"
        try:
            yield seen
        finally:
            receiver.should_stop = True
            thread.join(10)


@contextmanager
def write_order(deployment) -> Iterator[list[tuple[str, str]]]:
    """Every write to this deployment's records while the block runs, in the order Redis
    made them: ("written", id) for any change to a record, its creation included (Redis's
    client-side caching invalidations, in broadcast mode for the records' key prefix), and
    (state, id) for the state event a transition publishes in the same step. Both arrive on
    one connection, so their order is the server's, not the clocks' of several processes."""
    store = deployment.runtime.store
    client = redis_client(deployment.runtime.backend_url, protocol=2)
    listener = client.pubsub()
    listener.connection = client.connection_pool.get_connection()
    listener.connection.send_command("CLIENT", "ID")
    listener_id = listener.connection.read_response()
    listener.subscribe(store.events_channel, INVALIDATIONS)
    for _ in range(2):
        assert listener.get_message(timeout=10)["type"] == "subscribe"
    tracker = client.connection_pool.get_connection()
    tracker.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", listener_id, "BCAST",
                         "PREFIX", store.key(""))
    assert tracker.read_response() == b"OK"
    seen: list[tuple[str, str]] = []

    def record(message):
        if message["channel"] == INVALIDATIONS.encode():
            seen.extend(("written", key.decode().rpartition(":")[2])
                        for key in message["data"] or ())
        else:
            event = json.loads(message["data"])
            seen.append((event["state"], event["id"]))

    try:
        with listening(listener, record):
            yield seen
    finally:
        tracker.disconnect()
        listener.close()
        client.close()


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)  # polling for an event on its way


def _position(seen, entry):
    found = [index for index, item in enumerate(seen) if item == entry]
    assert found, f"{entry} never seen"
    return found[0]


@pytest.mark.brokers
def test_high_task_is_taken_before_any_more_of_a_2000_low_backlog(deployment):
    # Given 2,000 low tasks of 10 ms of CPU queued, and a worker with 2 processes busy on them
    lows = [deployment.submit("spin", "low", ms=LOW_MS).id for _ in range(BACKLOG)]
    low_ids = set(lows)
    worker = deployment.start_worker("--concurrency", str(CONCURRENCY), "--events")
    _wait_until_busy(deployment, lows)
    highs = []
    with worker_events(deployment) as events, write_order(deployment) as writes:
        # When high tasks of another type are submitted, one at a time, each once the one
        # before has finished (several, so that some arrive while a low one is being taken)
        for _ in range(HIGHS):
            high = deployment.submit("data", "high", data=[1, 2, 3])
            in_broker = time.time()  # submit returned: the message was handed to the broker
            done = deployment.wait(high.id, timeout=30)
            assert done.state == "SUCCESS"
            highs.append((high.id, in_broker))
        # (each was sent before the record went final, but may still be on its way here)
        _wait_for(lambda: ("task-received", high.id) in {e[:2] for e in events})
        _wait_for(lambda: ("STARTED", high.id) in writes)
    deployment.kill_worker(worker)  # the rest of the backlog is not this test's subject
    in_flight = gave_way = most = 0
    for high_id, in_broker in highs:
        # Then no low task starts between the moment the high one is recorded and its start,
        # in the order Redis wrote them (a low one taken a moment before gives way instead)
        recorded = _position(writes, ("written", high_id))
        started = _position(writes, ("STARTED", high_id))
        jumped = [task for state, task in writes[recorded:started]
                  if state == "STARTED" and task in low_ids]
        assert jumped == [], f"low tasks started while {high_id} waited: {jumped}"
        # And once its message is in the broker, the next task the worker takes is the high
        # one. The one exception: the fetch in flight at that moment, which took a low one
        # just before (on RabbitMQ also while the broker had not yet routed the high one: a
        # publish returns before it is routed) and whose task-received event is sent a
        # moment later. Such a task cannot start ahead of the high one (the check above):
        # about to start while the high one waits, it gives way.
        taken = [(task, at) for kind, task, at in events if kind == "task-received"]
        high_taken = min(at for task, at in taken if task == high_id)
        rejected = {task for kind, task, _ in events if kind == "task-rejected"}
        late = [task for task, at in taken if task in low_ids and in_broker < at < high_taken]
        in_flight += len(late)
        most = max(most, len(late))
        gave_way += len(rejected & set(late))
        if deployment.broker != "rabbitmq":
            # (Redis: the message is in its queue when submit returns, and a worker has one
            # pop in flight at a time, which takes the highest waiting message first)
            assert len(late) <= 1, f"low tasks taken ahead of {high_id}: {late}"
    print(f"[{deployment.broker}] {HIGHS} high tasks; low ones started while one waited: 0; "
          f"taken by a fetch in flight: {in_flight} (at most {most} at once), of which gave way: "
          f"{gave_way}")


@pytest.mark.brokers
def test_a_low_task_gives_its_process_to_a_higher_one_queued_and_not_started(deployment):
    # Given an idle worker with one process
    from taskq.store import YIELD_WINDOW
    from taskq.submit import prepare

    deployment.start_worker("--concurrency", "1", "--type", "data")
    # And a high task recorded as queued whose message the worker cannot take (it never
    # reached the broker: as if it were still on its way, or just taken by another worker)
    runtime = deployment.runtime
    high = prepare(runtime.settings, SubmitRequest(type="data", priority="high",
                                                   params={"data": [1]}))
    runtime.store.create(high)
    # When two low tasks are queued, which the worker takes at once
    first, second = (deployment.submit("data", "low", data=[n]) for n in (1, 2))
    done = [deployment.wait(record.id, timeout=30) for record in (first, second)]
    # Then they run, but only once the high one is older than the yield window (a high
    # task whose message never comes holds them back that long, no longer). (started_at
    # is stamped by the worker just before its STARTED write, which the Redis server
    # judges against the window: the stamp may come a moment before the window's end.)
    assert [record.state for record in done] == ["SUCCESS", "SUCCESS"]
    assert done[0].started_at >= high.submitted_at + YIELD_WINDOW - STAMP_BEFORE_WRITE
    # and the first keeps its place at the head of its queue while it gives way
    assert done[0].started_at < done[1].started_at
    # and giving way is not reported as a fault
    logs = deployment.worker_logs()
    assert "Traceback" not in logs and "rejected" not in logs, logs
