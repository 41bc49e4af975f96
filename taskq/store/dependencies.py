"""Dependencies: a task submitted `--after` other tasks waits (WAITING) until every one of them
has ended SUCCESS, then is queued; if one ends FAILURE or REVOKED it ends REVOKED, naming it
(or, `--after-any`, is queued all the same).

No wake-up is lost: registering a waiter and a dependency's final write are each one Redis
script. The first checks each dependency's state and joins its set of waiters only while it
is open; the second (the store's state write, with store.RELEASE_WAITERS) empties that set in the
same step as the final state. A waiter whose fate is decided is pushed on one list of
released tasks, drained (taskq/broker/released.py) by whoever made the write (a worker,
`cancel`, the poison guard) and by every worker's heartbeat once a minute (a process killed
between the two). Dependencies
must exist when the task is submitted, so no cycle can be made."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from taskq import records
from taskq.errors import InvalidParameters, NotQueued, UsageError
from taskq.payload import is_text

if TYPE_CHECKING:
    from taskq.records import TaskRecord
    from taskq.request import SubmitRequest
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

MAX_AFTER = 100  # tasks one task may wait for
MAX_ID_LENGTH = 200  # as a caller's task id may be (submit.MAX_ID_LENGTH)

# Write a WAITING task's record and register it with each dependency still open, in one
# step. KEYS: the record, the dependencies' records. ARGV: key prefix, task id, '1' to run
# after any end, the record's [field, value, ...] as JSON, its index score, its index set,
# the dependencies' ids. Returns {-1, id} when a dependency has no record (nothing written),
# else {1 released now | 0 waiting, dependencies still open}.
_REGISTER = """
local p, id, n = ARGV[1], ARGV[2], #KEYS - 1
local states, failed, left = {}, nil, 0
for k = 1, n do
  states[k] = redis.call('HGET', KEYS[k + 1], 'state')
  if not states[k] or states[k] == '' then return {-1, ARGV[k + 6]} end
  if (states[k] == 'FAILURE' or states[k] == 'REVOKED') and ARGV[3] ~= '1' and not failed then
    failed = ARGV[k + 6] .. ' ended ' .. states[k]
  end
end
redis.call('HSET', KEYS[1], unpack(cjson.decode(ARGV[4])))
redis.call('PERSIST', KEYS[1])
redis.call('ZADD', p .. ':tasks', ARGV[5], id)
redis.call('ZADD', p .. ':ids', 0, id)
redis.call('ZADD', ARGV[6], ARGV[5], id)
if failed then
  redis.call('HSET', KEYS[1], 'after_failed', failed)
else
  for k = 1, n do
    local s = states[k]
    if s ~= 'SUCCESS' and s ~= 'FAILURE' and s ~= 'REVOKED' then
      redis.call('SADD', p .. ':waiters:' .. ARGV[k + 6], id)
      left = left + 1
    end
  end
end
redis.call('HSET', KEYS[1], 'after_left', left)
if failed or left == 0 then
  redis.call('RPUSH', p .. ':released', id)
  return {1, 0}
end
return {0, left}
"""


def problems(request: SubmitRequest) -> list[str]:
    """What is wrong with a request's dependencies (touches no server)."""
    if not request.after:
        return ["after_any: needs after (the tasks to wait for)"] if request.after_any else []
    found = [f"after[{n}]: must be a task id (text of 1 to {MAX_ID_LENGTH} printable "
             "characters)" for n, task_id in enumerate(request.after)
             if not _is_id(task_id)][:5]
    if len(request.after) > MAX_AFTER:
        found.append(f"after: at most {MAX_AFTER} tasks to wait for")
    if request.delay:
        found.append("delay: cannot be combined with after (a task waits for one or the other)")
    return found


def _is_id(task_id: Any) -> bool:
    return (isinstance(task_id, str) and 0 < len(task_id) <= MAX_ID_LENGTH
            and task_id.isprintable() and is_text(task_id))


def apply(record: TaskRecord, request: SubmitRequest) -> None:
    """Make a prepared record wait for the request's dependencies (InvalidParameters if they
    cannot be waited for)."""
    if bad := problems(request):
        raise InvalidParameters(bad)
    if request.after:
        record.after = list(dict.fromkeys(request.after))
        record.after_any = True if request.after_any else None
        record.state = records.WAITING


def sending(runtime: Runtime, send: Callable[[list[TaskRecord]], Any],
            release: Callable[[Runtime], None]) -> Callable[[list[TaskRecord]], None]:
    """`send` for tasks that wait for nothing; the others are registered with their
    dependencies, which are checked (and id prefixes resolved) before anything is sent, and
    those whose dependencies have already decided are released (`release`, which publishes:
    taskq/broker/released.py)."""
    def send_all(batch: list[TaskRecord]) -> None:
        waiting = [record for record in batch if record.after]
        if not waiting:
            send(batch)
            return
        for record in waiting:
            record.after = resolve(runtime, record.after or [])
        plain = [record for record in batch if not record.after]
        try:
            if plain:
                send(plain)
        except NotQueued as exc:  # the waiting tasks were not recorded either
            raise NotQueued(exc.problem, exc.queued,
                            exc.unqueued + [record.id for record in waiting]) from None
        register(runtime, waiting, release)
    return send_all


def resolve(runtime: Runtime, after: Sequence[str]) -> list[str]:
    """The whole ids of `after` (unique prefixes resolved), each with a record: UsageError
    (exit 2, HTTP 400) for one that names no task."""
    ids = list(dict.fromkeys(runtime.task_id(text) for text in after))
    store = runtime.store
    pipe = store.client.pipeline(transaction=False)
    for task_id in ids:
        pipe.exists(store.key(task_id))
    with store.reachable():
        found = pipe.execute()
    for task_id, exists in zip(ids, found, strict=True):
        if not exists:
            raise _unknown(task_id)
    return ids


def _unknown(task_id: str) -> UsageError:
    return UsageError(f"after: no task {task_id!r} (a task can only wait for one that "
                      "exists)")


def register(runtime: Runtime, waiting: Sequence[TaskRecord],
             release: Callable[[Runtime], None]) -> None:
    """Write each WAITING record and register it with its open dependencies; those already
    decided (every dependency done, or one failed) are released at once (`release`)."""
    from taskq.records import hash_pairs
    from taskq.store import text

    store = runtime.store
    script = store.client.register_script(_REGISTER)
    released: list[TaskRecord] = []
    for record in waiting:
        after = record.after or []
        with store.reachable():
            outcome, detail = script(
                keys=[store.key(record.id), *(store.key(task_id) for task_id in after)],
                args=[store.prefix, record.id, "1" if record.after_any else "",
                      _json(hash_pairs(record)), record.submitted_at or time.time(),
                      store.cell_key(records.WAITING, record.type, record.priority), *after])
        if int(outcome) == -1:  # expired since it was checked
            raise _unknown(text(detail))
        if int(outcome) == 1:
            released.append(record)
    if released:
        release(runtime)
        # What the submit shows: REVOKED and why, or QUEUED (what the release made it; a
        # worker may have started it since, which `status` tells)
        for record, now in zip(released, store.get_many([r.id for r in released]), strict=True):
            if now is not None and now.state == records.REVOKED:
                record.state, record.error = now.state, now.error
                record.finished_at = now.finished_at
            else:
                record.state = records.QUEUED


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def released_key(prefix: str) -> str:
    """The list of WAITING tasks whose dependencies have decided, to be queued or revoked."""
    return f"{prefix}:released"
