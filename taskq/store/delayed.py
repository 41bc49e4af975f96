"""Delayed tasks and retries in the record store's Redis, not in a worker: a sorted set of
task ids by due time, written with their records (at submit; by a failed attempt's RETRY
write, taskq/store/__init__.py), taken out exactly once when due (taskq/broker/mover.py).

`<prefix>:due` holds the ids of SCHEDULED tasks scored by their eta and of RETRY tasks scored
by their next_attempt_at; the record holds what publishing needs (type, queue, parameters,
and the attempt that failed: `fence`, so the message published says which attempt is next).
`<prefix>:due:moving` holds the ids a mover has taken and not yet published, scored by when
its claim lapses: a mover that dies between the two leaves its claim to lapse, and the next
mover takes the task over and publishes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from taskq import records

if TYPE_CHECKING:
    from taskq.records import TaskRecord
    from taskq.store import TaskStore

# Seconds a mover's claim on the tasks it took lasts: far longer than publishing one take
# (TAKE_SIZE messages, on one producer: well under a second) lasts, so a claim lapses only
# when its mover died or lost the broker; and short, since a dead mover's tasks wait that long.
# A publish that outlasts it (a stalled broker) has its tasks published again by another
# mover: at least once, as everywhere; publish() skips a task already started, the worker
# drops a copy of a task that ended, and run leases keep two copies from running at once.
CLAIM_LEASE = 15.0
TAKE_SIZE = 500  # tasks one take moves at most

# Take the due tasks: first those whose claim lapsed (their mover died before publishing
# them), then those due by now; each is claimed (in the moving set for ARGV[3] s) and its
# record goes from SCHEDULED (or RETRY) to QUEUED (index sets moved, event published) in this same
# atomic step, so however many movers run it, each due task is taken by one. A task cancelled
# (or otherwise moved on) while it waited is dropped, not taken. A lapsed claim is taken again
# only while its record is QUEUED (not yet started by a worker).
# Now is the Redis server's clock (TIME) unless ARGV[1] gives it, so movers on hosts whose
# clocks differ agree on what is due and on when a claim lapsed.
# KEYS: due set, moving set, events channel. ARGV: now or '', most to take, claim seconds, key
# prefix. Returns the ids taken.
_TAKE = """
local now, most, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4]
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
local claim = now + tonumber(ARGV[3])
local taken = {}
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, most)
for _, id in ipairs(lapsed) do
  if redis.call('HGET', prefix .. ':task:' .. id, 'state') == 'QUEUED' then
    redis.call('ZADD', KEYS[2], claim, id)
    taken[#taken + 1] = id
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
if #taken >= most then return taken end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, most - #taken)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local key = prefix .. ':task:' .. id
  local rec = redis.call('HMGET', key, 'state', 'type', 'priority', 'submitted_at')
  if rec[1] == 'SCHEDULED' or rec[1] == 'RETRY' then
    redis.call('HSET', key, 'state', 'QUEUED')
    local tail = ':' .. rec[2] .. ':' .. rec[3]
    redis.call('ZREM', prefix .. ':idx:' .. rec[1] .. tail, id)
    redis.call('ZADD', prefix .. ':idx:QUEUED' .. tail, rec[4] or now, id)
    local event = cjson.encode({id = id, state = 'QUEUED', at = now})
    redis.call('PUBLISH', KEYS[3], event)
    redis.call('PUBLISH', KEYS[3] .. ':' .. id, event)
    redis.call('ZADD', KEYS[2], claim, id)
    taken[#taken + 1] = id
  end
end
return taken
"""


# Seconds until the earliest entry of the due set falls due, by the Redis server's clock ('' if
# the set is empty). KEYS: due set.
_NEXT_DUE = """
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return '' end
local time = redis.call('TIME')
return tostring(tonumber(first[2]) - tonumber(time[1]) - tonumber(time[2]) / 1000000)
"""


def due_key(prefix: str) -> str:
    """The ids of SCHEDULED tasks, scored by their eta."""
    return f"{prefix}:due"


def moving_key(prefix: str) -> str:
    """The ids a mover has taken and not yet published, scored by when its claim lapses."""
    return f"{prefix}:due:moving"


def add(store: TaskStore, batch: Sequence[TaskRecord], pipe: Any) -> None:
    """Enter delayed tasks in the due set, in `pipe` (with their records)."""
    entries = {record.id: record.eta for record in batch if record.eta is not None}
    if entries:
        pipe.zadd(due_key(store.prefix), entries)


def retries_of(store: TaskStore, task_ids: Sequence[str]) -> list[int]:
    """For each task, the attempts already made as its next message must say (Celery's
    `retries`): the attempt that failed (the record's fence), 0 for a delayed task."""
    pipe = store.client.pipeline(transaction=False)
    for task_id in task_ids:
        pipe.hget(store.key(task_id), "fence")
    with store.reachable():
        found = pipe.execute()
    return [records.read_count(fence) for fence in found]


def remove(store: TaskStore, task_id: str) -> None:
    """Take a cancelled task out of the due set (a mover that took it first dropped it)."""
    with store.reachable():
        store.client.zrem(due_key(store.prefix), task_id)


def take(store: TaskStore, now: float | None = None, most: int = TAKE_SIZE,
         lease: float = CLAIM_LEASE) -> list[str]:
    """Claim the tasks due by `now` (the Redis server's clock when None), and those whose
    mover died, their records now QUEUED; the caller publishes them, then release()s them."""
    script = store.client.register_script(_TAKE)
    with store.reachable():
        taken = script(keys=[due_key(store.prefix), moving_key(store.prefix),
                             store.events_channel],
                       args=["" if now is None else repr(now), most, repr(lease), store.prefix])
    return [t.decode() if isinstance(t, bytes) else str(t) for t in taken]


def next_due_in(store: TaskStore) -> float | None:
    """Seconds until the earliest task in the due set falls due (None: it is empty), so a
    mover looks again then, not up to a look's interval late (a retry's backoff is timed)."""
    with store.reachable():
        left = store.client.eval(_NEXT_DUE, 1, due_key(store.prefix))
    return float(left) if left else None


def release(store: TaskStore, task_ids: Sequence[str]) -> None:
    """Drop the claims of tasks now published."""
    if task_ids:
        with store.reachable():
            store.client.zrem(moving_key(store.prefix), *task_ids)
