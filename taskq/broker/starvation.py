"""The starvation guard (opt-in, `queues.max_wait`): a task that has waited longer than its
priority's max_wait is taken as if it had the next priority up, so a steady load of higher
work cannot hold it back forever.

A worker asks the records' Redis, at most every CHECK_EVERY seconds, how long the oldest due
task of each guarded queue it reads has waited (the QUEUED, SCHEDULED and RETRY index sets,
scored by submit time; a delayed task counts from its ETA, a retry from its next attempt).
A queue whose oldest task waited too long is read just before the queues of the next
priority up. The task taken from it carries AGED in its headers, so that when it starts it
yields only to tasks above its new rank (taskq/broker/tasks.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from taskq import records, topology

if TYPE_CHECKING:
    from taskq.config import Settings
    from taskq.store import TaskStore

CHECK_EVERY = 0.25  # seconds between two reads of the waiting times, per worker
OLDEST_READ = 10  # oldest tasks read per index set (a delayed one may not be due yet)
WAITING = (records.QUEUED, records.SCHEDULED, records.RETRY)  # the states of a queued message
AGED = "taskq_aged"  # header of a task taken as if it had the next priority up

log = logging.getLogger(__name__)

# For each index set: the oldest OLDEST_READ members, each due at its next attempt, its ETA
# or else its submit time; returns, per set, how long the earliest due one has waited
# (seconds, '' if none is due), by the Redis server's clock. KEYS: index sets. ARGV: record
# key prefix.
_WAITED = f"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out = {{}}
for i = 1, #KEYS do
  local found = redis.call('ZRANGE', KEYS[i], 0, {OLDEST_READ - 1}, 'WITHSCORES')
  local waited = ''
  for j = 1, #found, 2 do
    local at = redis.call('HMGET', ARGV[1] .. found[j], 'next_attempt_at', 'eta')
    local due = tonumber(at[1] or '') or tonumber(at[2] or '') or tonumber(found[j + 1])
    if due <= now and (waited == '' or now - due > waited) then waited = now - due end
  end
  out[i] = waited == '' and '' or string.format('%.6f', waited)
end
return out
"""


def promoted_queue(settings: Settings, queue: str) -> str:
    """The queue one priority above `queue` (same type); `queue` itself at the top."""
    parsed = topology.parse_queue(settings, queue)
    if parsed is None:
        return queue
    index = settings.priorities.index(parsed[1])
    return topology.queue_name(settings, parsed[0], settings.priorities[max(index - 1, 0)])


class AgingGuard:
    """A worker's view of its guarded queues: which to read a priority up now."""

    def __init__(self, settings: Settings, store: TaskStore) -> None:
        self.settings = settings
        self.store = store
        self._aged: set[str] = set()
        self._checked = 0.0

    def order(self, queues: Sequence[Any]) -> list[Any]:
        """`queues` (kombu Queues, highest priority first), each aged one moved to just
        before the first queue of the next priority up."""
        self._refresh([q.name for q in queues])
        ordered = list(queues)
        for queue in [q for q in queues if q.name in self._aged]:
            above = topology.priority_rank(self.settings, queue.name) - 1
            ordered.remove(queue)
            at = next((i for i, q in enumerate(ordered)
                       if topology.priority_rank(self.settings, q.name) >= above), len(ordered))
            ordered.insert(at, queue)
        return ordered

    def mark(self, message: Any) -> None:
        """Note on a message taken from an aged queue that it was taken a priority up."""
        queue = (message.delivery_info or {}).get("routing_key")
        if queue in self._aged and isinstance(message.headers, dict):
            message.headers[AGED] = True

    def _refresh(self, names: list[str]) -> None:
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY:
            return
        self._checked = now
        limits = _guarded(self.settings, self.store, names)
        if not limits:
            self._aged = set()
            return
        keys = [key for cells in limits.values() for key in cells]
        try:
            waited = self.store.client.eval(  # type: ignore[no-untyped-call]
                _WAITED, len(keys), *keys, self.store.key(""))
        except Exception:  # noqa: BLE001 - the records' Redis is down: strict order meanwhile
            log.warning("starvation guard: waiting times not readable", exc_info=True)
            self._aged = set()
            return
        max_wait = self.settings.max_wait
        per_queue = len(WAITING)
        self._aged = {name for i, name in enumerate(limits)
                      if _longest(waited[i * per_queue:(i + 1) * per_queue])
                      > max_wait[_priority(self.settings, name)]}


def _guarded(settings: Settings, store: TaskStore, names: list[str]
             ) -> Mapping[str, list[str]]:
    """The WAITING index sets of each of `names` whose priority has a max_wait."""
    found = {}
    for name in names:
        parsed = topology.parse_queue(settings, name)
        if parsed is not None and parsed[1] in settings.max_wait:
            found[name] = [store.cell_key(state, *parsed) for state in WAITING]
    return found


def _longest(waited: Sequence[Any]) -> float:
    """The longest of the waiting times _WAITED gave ('' or nothing for none): -1 if none."""
    return max((float(w) for w in waited if w), default=-1.0)


def _priority(settings: Settings, queue: str) -> str:
    parsed = topology.parse_queue(settings, queue)
    return parsed[1] if parsed else settings.priorities[-1]


def guard_for(app: Any) -> AgingGuard | None:
    """The guard of a worker's app, or None when no priority has a max_wait."""
    settings: Settings | None = getattr(app, "taskq_settings", None)
    runtime = getattr(app, "taskq_runtime", None)
    if settings is None or runtime is None or not settings.max_wait:
        return None
    return AgingGuard(settings, runtime.store)
