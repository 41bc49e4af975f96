"""The events a record's state changes publish (taskq/store/__init__.py), read from the
task's channel."""

from __future__ import annotations

import json
import threading
import time

import pytest

from taskq import control, records
from taskq.store import YIELD_WINDOW, _carried_record

pytestmark = pytest.mark.integration


def test_a_final_state_event_carries_the_whole_record_and_others_do_not(deployment):
    # Given a queued task (no worker) and a subscriber on its channel
    record = deployment.submit("data", data=[1, 2])
    store = deployment.runtime.store
    pubsub = store.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(store.task_channel(record.id))
    try:
        # When it starts and then succeeds
        store.update(record.id, records.STARTED, started_at=time.time())
        store.update(record.id, records.SUCCESS, final=True, result={"mean": 1.5},
                     finished_at=time.time())
        started, finished = (_next_event(pubsub) for _ in range(2))
    finally:
        pubsub.close()
    # Then only the final event carries the record, the same one a read returns
    assert json.loads(started["data"])["state"] == records.STARTED
    assert "record" not in json.loads(started["data"])
    carried = _carried_record(finished)
    assert carried is not None
    assert carried == store.get(record.id)
    assert carried.result == {"mean": 1.5}


def _next_event(pubsub):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=1.0)
        if message is not None:
            return message
    raise AssertionError("no event within 5 s")


def test_a_start_yields_to_a_higher_task_queued_in_the_last_second_and_writes_nothing(
        deployment):
    # Given a queued low task and a high task queued after it (no worker)
    store = deployment.runtime.store
    low = deployment.submit("data", "low", data=[1])
    high = deployment.submit("data", "high", data=[2])
    high_cell = store.cell_key(records.QUEUED, high.type, high.priority)
    # When the low one is about to start, told to yield to the high queue's waiting tasks
    outcome, previous = store.transition(low.id, records.STARTED, started_at=time.time(),
                                         yield_to=[high_cell])
    # Then it yields: its record is as it was, still queued
    assert (outcome, previous) == (-3, records.QUEUED)
    assert store.get(low.id) == low
    # and once the high one has started, the low one starts
    store.update(high.id, records.STARTED, started_at=time.time())
    assert store.transition(low.id, records.STARTED, yield_to=[high_cell]) == (
        1, records.QUEUED)


def test_a_start_does_not_yield_to_a_higher_task_queued_before_the_yield_window(deployment):
    # Given a high task whose record says it was queued longer ago than the yield window
    # (its message gone, as after a purge)
    store = deployment.runtime.store
    low = deployment.submit("data", "low", data=[1])
    high = deployment.submit("data", "high", data=[2])
    cell = store.cell_key(records.QUEUED, high.type, high.priority)
    store.client.zadd(cell, {high.id: time.time() - YIELD_WINDOW - 1})
    # When the low one starts, told to yield to that queue's waiting tasks
    outcome, _ = store.transition(low.id, records.STARTED, yield_to=[cell])
    # Then it starts: a stale record does not hold lower work back
    assert outcome == 1
    assert store.get(low.id).state == records.STARTED


def _finished(deployment, state: str) -> str:
    """A task in the final `state`, ended the way it is in real use."""
    record = deployment.submit("data", data=[1])
    store = deployment.runtime.store
    if state == records.REVOKED:
        control.cancel(deployment.runtime, record.id)
    else:
        store.update(record.id, records.STARTED, started_at=time.time(), attempts=1,
                     worker="w1")
        store.update(record.id, state, final=True, finished_at=time.time(),
                     result={"n": 1} if state == records.SUCCESS else None,
                     error=None if state == records.SUCCESS else "boom")
    return record.id


def _everything_about(store, task_id: str) -> dict:
    """The record, the index sets and dead letters holding the id, and the counters."""
    client = store.client
    holding = sorted(key for key in client.scan_iter(match=f"{store.prefix}:*", count=1000)
                     if client.type(key) == b"zset" and client.zscore(key, task_id) is not None)
    return {"record": client.hgetall(store.key(task_id)), "sets": holding,
            "stats": client.hgetall(store.stats_key)}


@pytest.mark.parametrize("final", [records.SUCCESS, records.FAILURE, records.REVOKED])
def test_a_final_state_is_never_overwritten_by_a_late_write(deployment, final):
    # Given a task in a final state
    task_id = _finished(deployment, final)
    store = deployment.runtime.store
    before = _everything_about(store, task_id)
    # When late writes arrive, as a worker makes them: a start, a retry, a success, a failure
    late = [
        store.transition(task_id, records.STARTED, started_at=time.time(), attempts=2,
                         worker="w2", next_attempt_at=None, ride_out=True)[0],
        store.transition(task_id, records.RETRY, error="later", next_attempt_at=time.time())[0],
        store.transition(task_id, records.SUCCESS, final=True, ride_out=True,
                         result={"n": 2}, finished_at=time.time())[0],
        store.transition(task_id, records.FAILURE, final=True, ride_out=True,
                         error="later", finished_at=time.time())[0],
    ]
    # Then each is refused as coming after a final state, and nothing about the task changed:
    # its record, the index sets and dead letters it is in, the counters
    assert late == [-1, -1, -1, -1]
    assert _everything_about(store, task_id) == before
    assert store.get(task_id).state == final


def test_attempt_errors_written_by_many_writers_at_once_are_all_kept_once(deployment):
    # Given a task running its first attempt (no worker: the test writes as one would)
    task_id = deployment.submit("data", data=[1]).id
    store = deployment.runtime.store
    store.update(task_id, records.STARTED, attempts=1)
    writers = 16
    start = threading.Barrier(writers)

    def fail(n: int) -> None:
        start.wait()
        store.record_attempt_error(task_id, 1, f"error {n}", "TransientError",
                                   time.time() + 1)

    # When 16 writers record a failed attempt each, at the same moment
    threads = [threading.Thread(target=fail, args=(n,)) for n in range(1, writers + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then the history holds every one of them, each once
    history = store.get(task_id).attempt_errors
    assert sorted(entry["error"] for entry in history) == sorted(
        f"error {n}" for n in range(1, writers + 1))
    # And an entry sent again (a write retried after its reply was lost) is not doubled
    again = {"attempt": 99, "error": "once", "exc_type": "E", "at": 1.5}
    for _ in range(2):
        store.update(task_id, records.RETRY, attempt_error=again)
    assert [e["attempt"] for e in store.get(task_id).attempt_errors].count(99) == 1


def test_a_stale_attempt_cannot_start_and_only_the_current_one_writes(deployment):
    from taskq.store import claim, holding

    # Given a task whose attempt 1 failed and waits to retry
    task_id = deployment.submit("data", data=[1]).id
    store = deployment.runtime.store
    assert store.transition(task_id, records.STARTED, attempts=1, fence=claim(1))[0] == 1
    store.record_attempt_error(task_id, 1, "boom", "TransientError", time.time() + 1)
    # When a stale copy of attempt 1's message is delivered, then the retry's
    stale = store.transition(task_id, records.STARTED, attempts=1, fence=claim(1))[0]
    current = store.transition(task_id, records.STARTED, attempts=2, fence=claim(2))[0]
    # Then the stale one is refused and counted, the retry starts
    assert (stale, current) == (-4, 1)
    assert store.client.hget(store.key(task_id), "superseded") == b"1"
    # And once attempt 2 runs, attempt 1 can neither start again nor write
    assert store.transition(task_id, records.STARTED, attempts=1, fence=claim(1))[0] == -4
    assert store.transition(task_id, records.SUCCESS, final=True, fence=holding(1),
                            result={"from": 1})[0] == -4
    # While attempt 2's own writes land
    assert store.update(task_id, records.SUCCESS, final=True, fence=holding(2),
                        result={"from": 2})
    done = store.get(task_id)
    assert (done.state, done.attempts, done.result) == ("SUCCESS", 2, {"from": 2})


def test_a_wait_on_a_kept_connection_reads_the_record_once_and_takes_the_final_event(
        deployment, monkeypatch):
    # Given a wait that has ended (its pub/sub connection is kept for the next wait)
    store = deployment.runtime.store
    first = deployment.submit("data", data=[1])
    store.update(first.id, records.SUCCESS, final=True, finished_at=time.time())
    assert store.wait(first.id, timeout=5).state == records.SUCCESS
    # And a task that starts and succeeds just after the next wait's first read
    second = deployment.submit("data", data=[2])
    reads: list[str] = []
    read = store.get

    def counted(task_id):
        found = read(task_id)
        reads.append(task_id)
        if len(reads) == 1:
            store.update(second.id, records.STARTED, started_at=time.time())
            store.update(second.id, records.SUCCESS, final=True, result=7,
                         finished_at=time.time())
        return found

    monkeypatch.setattr(store, "get", counted)
    # When the next wait waits for it
    done = store.wait(second.id, timeout=5)
    # Then the final record came with the event, the record read once: when the wait's
    # subscription was confirmed (not on the previous wait's unsubscribe reply, nor before)
    assert (done.state, done.result) == (records.SUCCESS, 7)
    assert reads == [second.id]


def test_a_wait_with_no_time_left_returns_a_final_task_and_times_out_on_an_open_one(
        deployment):
    from taskq.errors import WaitTimeout

    # Given a finished task and a queued one (no worker)
    store = deployment.runtime.store
    done = deployment.submit("data", data=[1])
    store.update(done.id, records.SUCCESS, final=True, result=3, finished_at=time.time())
    queued = deployment.submit("data", data=[2])
    # When each is waited for with a timeout of 0 s
    # Then the finished one's record is returned, the queued one times out in its state
    assert store.wait(done.id, timeout=0).result == 3
    with pytest.raises(WaitTimeout) as raised:
        store.wait(queued.id, timeout=0)
    assert records.QUEUED in str(raised.value)
