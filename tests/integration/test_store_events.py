"""The events a record's state changes publish (taskq/store.py), read from the task's channel."""

from __future__ import annotations

import json
import time

import pytest

from taskq import records
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
