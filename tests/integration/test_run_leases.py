"""The run lease of a running attempt, in the record store: the STARTED claim takes it, a
second holder of the same attempt is refused while it lives, and the attempt's end frees it."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from taskq import records
from taskq.broker import running
from taskq.request import SubmitRequest
from taskq.store import claim, holding
from taskq.submit import prepare

pytestmark = pytest.mark.integration


def _queued(deployment) -> str:
    runtime = deployment.runtime
    record = prepare(runtime.settings, SubmitRequest(type="data", params={"data": [1]}))
    runtime.store.create(record)
    return record.id


def _start(store, task_id: str, attempt: int, who: str) -> int:
    return store.transition(task_id, records.STARTED, attempts=attempt,
                            started_at=time.time(), fence=claim(attempt, who))[0]


def test_a_second_holder_of_a_running_attempt_is_refused_until_the_run_ends(deployment):
    store = deployment.runtime.store
    # Given a task whose attempt 1 was claimed by holder A
    task_id = _queued(deployment)
    assert _start(store, task_id, 1, "a/1") == 1
    # When holder B claims the same attempt, Then it is refused: the attempt runs elsewhere
    assert _start(store, task_id, 1, "b/2") == -5
    # And A's claim sent again (a retried call) is accepted
    assert _start(store, task_id, 1, "a/1") == 1
    # When A's run ends, Then the lease is gone and B's claim finds the task final
    assert store.update(task_id, records.SUCCESS, final=True, fence=holding(1))
    assert store.client.exists(store.run_key(task_id)) == 0
    assert _start(store, task_id, 1, "b/2") == -1


def test_a_lease_that_ran_out_lets_the_next_holder_run_the_attempt(deployment):
    store = deployment.runtime.store
    # Given a task whose attempt 1 was claimed by A, whose worker stopped renewing its lease
    task_id = _queued(deployment)
    assert _start(store, task_id, 1, "a/1") == 1
    store.client.delete(store.run_key(task_id))  # (as when it runs out)
    # When B claims it, Then B runs it and holds the lease
    assert _start(store, task_id, 1, "b/2") == 1
    assert store.client.get(store.run_key(task_id)) == b"1:b/2"


def test_a_retry_ends_the_attempt_s_lease_and_the_next_attempt_takes_its_own(deployment):
    store = deployment.runtime.store
    # Given attempt 1 claimed by A, which fails and will be retried
    task_id = _queued(deployment)
    assert _start(store, task_id, 1, "a/1") == 1
    store.record_attempt_error(task_id, 1, "boom", "TransientError", time.time() + 1)
    # Then its lease is gone, and attempt 2 runs wherever it is delivered
    assert store.client.exists(store.run_key(task_id)) == 0
    assert _start(store, task_id, 2, "b/2") == 1


def test_a_worker_renews_only_the_leases_its_running_tasks_hold(deployment):
    store = deployment.runtime.store
    # Given two tasks claimed by processes 1 and 2 of worker w, and a third by another worker
    ids = [_queued(deployment) for _ in range(3)]
    for task_id, who in zip(ids, ("w/1", "w/2", "x/1"), strict=True):
        assert _start(store, task_id, 1, who) == 1
        store.client.pexpire(store.run_key(task_id), 1000)
    # When w renews the leases of its running requests (the third is not its own)
    requests = [SimpleNamespace(id=task_id, worker_pid=pid, request_dict={"retries": 0})
                for task_id, pid in zip(ids, (1, 2, 1), strict=True)]
    assert running.renew(store, "w", requests) == 2
    # Then its two leases last the full lease again, the other's does not
    ttls = [store.client.pttl(store.run_key(task_id)) for task_id in ids]
    assert ttls[0] > 5000 and ttls[1] > 5000 and ttls[2] <= 1000
