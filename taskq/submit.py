"""Submitting a task: validate, record it, then publish it to its queue."""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING

from taskq import params as param_schema
from taskq import records, topology
from taskq.config import Settings, resolve_priority, resolve_type
from taskq.errors import Conflict, InvalidParameters, UsageError
from taskq.records import TaskRecord
from taskq.request import MAX_DELAY, SubmitRequest
from taskq.store import dependencies, keys

if TYPE_CHECKING:
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).


def prepare(settings: Settings, request: SubmitRequest) -> TaskRecord:
    """Validate a request completely and build its record; touches no server."""
    task_type = resolve_type(settings, request.type)
    priority = resolve_priority(settings, request.priority)
    if not 0 <= request.delay <= MAX_DELAY:
        raise InvalidParameters([f"delay: must be between 0 and {MAX_DELAY:.0f} seconds"])
    clean = param_schema.validate(task_type, request.params)
    if request.key is not None and (bad := keys.problems(request.key)):
        raise InvalidParameters(bad)
    now = time.time()
    record = TaskRecord(
        id=records.new_id(), type=task_type.name, priority=priority,
        queue=topology.queue_name(settings, task_type.name, priority),
        state=records.SCHEDULED if request.delay else records.QUEUED, params=clean,
        submitted_at=now, eta=now + request.delay if request.delay else None,
        key=request.key,
    )
    dependencies.apply(record, request)
    return record


def submit(runtime: Runtime, request: SubmitRequest, retry_of: str | None = None,
           task_id: str | None = None) -> TaskRecord:
    """Record then publish; if publishing fails the record is removed, so none claims QUEUED.
    `task_id`: the caller's id (Celery's send_task(task_id=...)), refused if already used."""
    from taskq.broker import released
    from taskq.broker.publish import send_one

    record = prepare(runtime.settings, request)
    record.retry_of = retry_of
    if task_id is not None:
        record.id = _unused_id(runtime, task_id)
    keys.send_once(runtime, [record], dependencies.sending(runtime, partial(send_one, runtime),
                                                         released.release))
    return record


MAX_ID_LENGTH = 200
CLAIM_TTL = 60  # seconds a claimed id's stub lives if the submit dies before its record

# Claim a caller's task id: refused (0) if a record holds it, else a stub with the id (the
# record written next replaces it), in one step so two submits of one id cannot both pass.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


def _unused_id(runtime: Runtime, task_id: str) -> str:
    """`task_id`, claimed, if no record holds it: a second task with it would overwrite the
    first's record."""
    if not isinstance(task_id, str) or not 0 < len(task_id) <= MAX_ID_LENGTH \
            or not task_id.isprintable() or task_id.strip() != task_id:
        raise UsageError(f"task id {task_id!r}: must be text of 1 to {MAX_ID_LENGTH} "
                         "printable characters, without leading or trailing spaces")
    store = runtime.store
    with store.reachable():
        claimed = store.client.eval(_CLAIM, 1, store.key(task_id), task_id, CLAIM_TTL)
    if not claimed:
        raise Conflict(f"task id {task_id!r} is already used by another task; "
                       "a task id names one task only")
    return task_id
