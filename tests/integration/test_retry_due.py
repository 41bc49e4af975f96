"""Retries wait out their backoff in the due set, not in a worker (taskq/store/delayed.py): a worker
whose tasks all wait to retry still takes new work at once."""

from __future__ import annotations

import time

import pytest

from taskq import records, topology
from taskq.broker.queues import queue_stats
from taskq.store import claim, delayed

pytestmark = pytest.mark.integration

RETRYING = 10
BACKOFF = 30.0  # the "patient" type's backoff: far longer than the test
PROMPT = 10.0  # seconds within which work is taken "at once" on a loaded machine


def _states(deployment, ids: list[str]) -> list[str]:
    return [record.state if record else "" for record in deployment.runtime.store.get_many(ids)]


def _scheduled(deployment, queue: str) -> int:
    return sum(q.scheduled for q in queue_stats(deployment.runtime) if q.name == queue)


@pytest.mark.brokers("embedded", "rabbitmq")
def test_a_worker_whose_tasks_wait_to_retry_runs_a_new_high_task_at_once(deployment,
                                                                          tmp_path):
    # Given a one-process worker, and 10 tasks that each fail once and retry after 30 s
    deployment.start_worker("--concurrency", "1", "--type", "patient,spin")
    retrying = [deployment.submit("patient", "low", marker_dir=str(tmp_path / f"t{n}")).id
                for n in range(RETRYING)]
    # Then every first attempt runs at once and waits to retry: the worker holds none of
    # them (Celery's ETA retries would fill it with 5 and leave the rest queued)
    deadline = time.monotonic() + PROMPT
    while (states := _states(deployment, retrying)) != [records.RETRY] * RETRYING:
        assert time.monotonic() < deadline, (states, deployment.worker_logs())
        time.sleep(0.05)  # polling the records
    queue = topology.queue_name(deployment.runtime.settings, "patient", "low")
    assert _scheduled(deployment, queue) == RETRYING
    # When a high task is submitted
    high = deployment.submit("spin", "high", ms=10)
    # Then it runs at once, not after the first retry falls due
    done = deployment.wait(high.id, timeout=BACKOFF + 30)
    assert done.state == "SUCCESS", done.error
    print(f"[{deployment.broker}] high task done {done.finished_at - high.submitted_at:.3f} s "
          f"after its submit, {RETRYING} retries waiting")
    assert done.finished_at - high.submitted_at < PROMPT, deployment.worker_logs()
    # When the retrying tasks are cancelled
    for task_id in retrying:
        result = deployment.cli("cancel", task_id)
        assert result.returncode == 0, result.stderr
    # Then they leave the due set: none is scheduled any more, none will run again
    store = deployment.runtime.store
    assert store.client.zcard(delayed.due_key(store.prefix)) == 0
    assert _scheduled(deployment, queue) == 0
    assert _states(deployment, retrying) == [records.REVOKED] * RETRYING


def test_a_retry_moved_to_its_queue_claims_the_next_attempt_and_refuses_the_failed_one(
        deployment):
    # Given a task whose attempt 1 started and failed transiently, its retry due now
    store = deployment.runtime.store
    task_id = deployment.submit("spin", "low", ms=10).id  # (no worker: nothing runs it)
    assert store.transition(task_id, records.STARTED, attempts=1, fence=claim(1))[0] == 1
    store.record_attempt_error(task_id, 1, "try again", "TransientError", time.time())
    assert store.client.zscore(delayed.due_key(store.prefix), task_id) is not None
    # When a mover takes it
    assert delayed.take(store) == [task_id]
    # Then its record is QUEUED and its message says one attempt was made
    assert store.get(task_id).state == records.QUEUED
    assert delayed.retries_of(store, [task_id]) == [1]
    # And a stale copy of attempt 1 is refused, while attempt 2 starts
    assert store.transition(task_id, records.STARTED, fence=claim(1))[0] == -4
    assert store.transition(task_id, records.STARTED, attempts=2, fence=claim(2))[0] == 1
