"""Acting on one task: cancel it (in any open state, with or without workers) or retry it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from taskq import records
from taskq.errors import Conflict, UnknownTask
from taskq.request import SubmitRequest
from taskq.store import delayed

if TYPE_CHECKING:
    from taskq.records import TaskRecord
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

WAITING = (records.WAITING, records.QUEUED, records.SCHEDULED, records.RETRY)
TERMINATE_TIMEOUT = 2.0  # seconds to wait for the running worker to confirm the kill


def cancel(runtime: Runtime, task_id: str, terminate: bool = False) -> TaskRecord:
    """Mark a waiting task (or with `terminate` a running one) REVOKED and return its record.

    The record is the authority: a worker that later receives the message sees REVOKED
    and skips it (tasks.py), even if it started after the cancel. A running task is
    killed by a revoke broadcast to the worker running it.
    """
    store = runtime.store
    allowed = WAITING + ((records.STARTED,) if terminate else ())
    outcome, previous = store.transition(task_id, records.REVOKED, final=True,
                                         only_from=allowed, finished_at=time.time(),
                                         error="cancelled", next_attempt_at=None)
    if outcome == 0:
        raise UnknownTask(task_id)
    if outcome == -1:
        raise Conflict(f"task {task_id} has already finished ({previous}); nothing changed")
    if outcome == -2:
        raise Conflict(f"task {task_id} is running ({previous}); use --terminate to stop it")
    if previous in (records.SCHEDULED, records.RETRY):
        # out of the due set (a mover that took it first drops it)
        delayed.remove(store, task_id)
    record = store.get(task_id)
    if previous == records.STARTED:
        _terminate(runtime, record)
    return record


def _terminate(runtime: Runtime, record: TaskRecord) -> None:
    # Celery kills the pool process running the task and acks its message.
    destination = [record.worker] if record.worker else None
    runtime.celery.control.revoke(record.id, terminate=True, signal="SIGTERM",
                                  destination=destination, reply=True, limit=1,
                                  timeout=TERMINATE_TIMEOUT)


def retry(runtime: Runtime, task_id: str) -> TaskRecord:
    """Submit a dead letter again (same type, priority, parameters) as a new, linked task.

    Taking the id off the dead-letter set is the claim, so two concurrent retries of one
    task cannot both submit it.
    """
    from taskq.submit import submit

    store = runtime.store
    old = store.get(task_id)
    if old.state != records.FAILURE:
        raise Conflict(f"task {task_id} is {old.state}; only failed tasks can be retried")
    with store.reachable():
        claimed = store.client.zrem(store.dlq_key(old.type), task_id)
    if not claimed:
        where = f"as {old.retried_as}" if old.retried_as else "or purged"
        raise Conflict(f"task {task_id} was already retried {where}")
    try:
        new = submit(runtime, SubmitRequest(type=old.type, priority=old.priority,
                                            params=old.params, delay=0), retry_of=old.id)
    except BaseException:
        with store.reachable():
            store.client.zadd(store.dlq_key(old.type), {task_id: old.finished_at or time.time()})
        raise
    with store.reachable():
        store.client.hset(store.key(task_id), "retried_as", new.id)
    return new
