"""The events a record's state changes publish (taskq/store.py), read from the task's channel."""

from __future__ import annotations

import json
import time

import pytest

from taskq import records
from taskq.store import _carried_record

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
