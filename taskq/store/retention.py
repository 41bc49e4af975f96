"""Keeps the record indexes bounded: drops index entries whose record has expired."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from taskq import records

if TYPE_CHECKING:
    from taskq.config import Settings
    from taskq.store import TaskStore

# A record lives until record_ttl seconds after its final state, however long it waited
# (store.py: an open record has no expiry). Index entries are scored by submit time (dead
# letters by failure time), so an entry older than record_ttl may still have its record (a
# task that waited, or ran, long): only entries whose record is gone are dropped. `taskq list`
# also skips (and drops) any entry whose record has expired.
CHECK_PER_SET = 1000  # entries older than the cutoff checked per index set and trim

# KEYS: index sets. ARGV: cutoff (entries scored below it are checked), record key prefix
# (the id follows), entries to check per set, the id index (taskq/store/__init__.py: an id dropped
# from the index by time leaves it too). Returns how many entries were removed.
_TRIM = """
local removed = 0
for k = 1, #KEYS do
  local offset, left = 0, tonumber(ARGV[3])
  while left > 0 do
    local ids = redis.call('ZRANGEBYSCORE', KEYS[k], '-inf', '(' .. ARGV[1], 'LIMIT', offset,
                           math.min(left, 200))
    if #ids == 0 then break end
    left = left - #ids
    local gone = {}
    for _, id in ipairs(ids) do
      if redis.call('EXISTS', ARGV[2] .. id) == 0 then gone[#gone + 1] = id end
    end
    if #gone > 0 then
      removed = removed + redis.call('ZREM', KEYS[k], unpack(gone))
      if k == 1 then redis.call('ZREM', ARGV[4], unpack(gone)) end
    end
    offset = offset + #ids - #gone
  end
end
return removed
"""


def trim(store: TaskStore, settings: Settings, now: float | None = None) -> int:
    """Remove index entries older than record_ttl whose record is gone; how many."""
    cutoff = (now or time.time()) - settings.record_ttl
    keys = [store.index_key]
    for type_name in settings.task_types:
        keys.append(store.dlq_key(type_name))
        keys += [store.cell_key(state, type_name, priority)
                 for priority in settings.priorities for state in records.STATES]
    with store.reachable():
        return int(store.client.eval(_TRIM, len(keys), *keys, cutoff, store.key(""),
                                     CHECK_PER_SET, store.ids_key))
