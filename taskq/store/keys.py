"""Idempotency keys: a submit with a key its task type has seen within the type's key_window
queues nothing and returns the task the key first named (marked deduplicated). Claimed in
one Redis script call per batch, so concurrent submits of one key, from any process or host,
make one task; a submit that fails to queue its task gives its key back.

A key is claimed for CLAIM_TTL seconds, and held for the type's window once its task is
queued: a submit killed between the two leaves a claim that lapses within CLAIM_TTL (the
task, if it was queued, can then be submitted once more under its key)."""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from taskq.payload import is_text

if TYPE_CHECKING:
    from taskq.records import TaskRecord
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

MAX_KEY_LENGTH = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# How long a repeat waits for the record of the task its key names (a concurrent submit
# writes it right after its claim), and how long a claim lasts before its task is queued.
RECORD_WAIT = 5.0
CLAIM_TTL = 10

# For each key: claim it for ARGV[i] (for ARGV[n+i] seconds) unless it is held; returns
# '' where claimed, else the id that holds it.
_CLAIM = """
local n, out = #KEYS, {}
for i = 1, n do
  if redis.call('SET', KEYS[i], ARGV[i], 'NX', 'EX', ARGV[n + i]) then
    out[i] = ''
  else
    out[i] = redis.call('GET', KEYS[i])
  end
end
return out
"""
# For each key: drop it if it still names ARGV[i] and that task has no record (its submit
# did not queue it). ARGV[n+1]: the record key prefix.
_RELEASE = """
local n = #KEYS
for i = 1, n do
  if redis.call('GET', KEYS[i]) == ARGV[i]
      and redis.call('EXISTS', ARGV[n + 1] .. ARGV[i]) == 0 then
    redis.call('DEL', KEYS[i])
  end
end
return n
"""


def problems(key: Any, path: str = "key") -> list[str]:
    """What is wrong with an idempotency key: it must be 1 to 200 characters of valid
    Unicode text without control characters."""
    if key is None:
        return []
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        return [f"{path}: must be text of 1 to {MAX_KEY_LENGTH} characters"]
    if _CONTROL.search(key):
        return [f"{path}: must not contain control characters or line breaks"]
    if not is_text(key):
        return [f"{path}: must be valid Unicode text"]
    return []


def send_once(runtime: Runtime, records: Sequence[TaskRecord],
              send: Callable[[list[TaskRecord]], Any]) -> None:
    """`send` the records whose key is new (or who have none); each whose key names an
    earlier task becomes that task's record, with deduplicated=True, in place. If `send`
    fails, the keys of the tasks it did not queue are given back."""
    keyed = [record for record in records if record.key]
    if not keyed:
        send(list(records))
        return
    holders = _claim(runtime, keyed)
    fresh = [record for record in records if id(record) not in holders]
    claimed = [record for record in fresh if record.key]
    try:
        send(fresh)
    except BaseException:
        _release(runtime, claimed)
        raise
    _hold(runtime, claimed)
    _become_holders(runtime, records, holders)


def _key_name(runtime: Runtime, record: TaskRecord) -> str:
    return f"{runtime.store.prefix}:key:{record.type}:{record.key}"


def _claim(runtime: Runtime, keyed: list[TaskRecord]) -> dict[int, str]:
    """Claim each record's key; {id(record): the id holding its key} for those held
    (by an earlier task, or by one earlier in `keyed`)."""
    from taskq.store import text

    store = runtime.store
    ttl = CLAIM_TTL + len(keyed) // 1000  # a big batch takes a while to queue
    with store.reachable():
        held = store.client.eval(_CLAIM, len(keyed), *(_key_name(runtime, r) for r in keyed),
                                 *(r.id for r in keyed), *[ttl] * len(keyed))
    return {id(record): text(holder) for record, holder in zip(keyed, held, strict=True)
            if holder}


def _hold(runtime: Runtime, queued: list[TaskRecord]) -> None:
    """Keep the keys of queued tasks for their types' windows."""
    if not queued:
        return
    store = runtime.store
    pipe = store.client.pipeline(transaction=False)
    for record in queued:
        window = math.ceil(runtime.settings.task_types[record.type].key_window)
        pipe.expire(_key_name(runtime, record), window)
    with store.reachable():
        pipe.execute()


def _release(runtime: Runtime, records: list[TaskRecord]) -> None:
    if not records:
        return
    store = runtime.store
    with store.reachable():
        store.client.eval(_RELEASE, len(records), *(_key_name(runtime, r) for r in records),
                          *(r.id for r in records), store.key(""))


def _become_holders(runtime: Runtime, records: Sequence[TaskRecord],
                    holders: dict[int, str]) -> None:
    """Make each repeat the record of the task holding its key: one sent now (a repeat in
    the same batch) or an earlier one, read from the store (waiting a moment for a record a
    concurrent submit is writing)."""
    if not holders:
        return
    sent_now = {record.id: record for record in records if id(record) not in holders}
    wanted = sorted({holder for holder in holders.values() if holder not in sent_now})
    found = _read_holders(runtime, wanted)
    for record in records:
        holder = holders.get(id(record))
        if holder is not None:
            earlier = sent_now.get(holder) or found[holder]
            for name in (f.name for f in dataclasses.fields(earlier)):
                setattr(record, name, getattr(earlier, name))
            record.deduplicated = True
    from taskq.store.flow import count_deduplicated

    count_deduplicated(runtime.store, len(holders))


def _read_holders(runtime: Runtime, ids: list[str]) -> dict[str, TaskRecord]:
    from taskq.errors import Conflict

    store = runtime.store
    deadline = time.monotonic() + RECORD_WAIT
    found: dict[str, TaskRecord] = {}
    while True:
        missing = [task_id for task_id in ids if task_id not in found]
        for task_id, record in zip(missing, store.get_many(missing), strict=True):
            if record is not None:
                found[task_id] = record
        if len(found) == len(ids):
            return found
        if time.monotonic() > deadline:
            raise Conflict(f"idempotency key held by task {missing[0]}, whose submit has not "
                           f"written its record; try again within {CLAIM_TTL} s")
        time.sleep(0.05)  # a concurrent submit is writing the record
