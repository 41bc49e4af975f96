"""Global rate limits per task type: one GCRA bucket per type in the records' Redis, shared by
every worker on every host, with time from the Redis server (never from a host's clock).

A worker takes a message as usual (taskq/broker/fetch/), then asks the type's bucket for a
token in one script call. Without one, the message goes back to the head of its queue before it
reaches a process, and the worker skips that type's queues until the bucket says a token is
due; its other types go on as before. Priority within a type stays strict: the type is skipped
or asked as a whole, highest queue first.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taskq import topology
from taskq.config.schema import per_second

if TYPE_CHECKING:
    import redis

    from taskq.config import Settings, TaskType
    from taskq.runtime import Runtime

WINDOW = 10  # seconds over which the current rate is measured
ON_ERROR_WAIT = 1.0  # seconds a type is skipped when its bucket cannot be read

log = logging.getLogger(__name__)


# GCRA: the bucket is the theoretical arrival time (TAT) of the next task. A task may start
# when now >= TAT - (burst - 1) * interval; it moves TAT on by one interval. Admissions are
# also kept for WINDOW seconds (the current rate) and refusals counted (held back).
# KEYS: tat, admitted (zset), stats (hash). ARGV: interval, burst, a unique member.
# Returns {1, '0'} or {0, seconds until a token is due} (strings: Lua numbers lose digits).
_TAKE = f"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local due = tat - (burst - 1) * interval
if now < due then
  redis.call('HINCRBY', KEYS[3], 'held_back', 1)
  return {{0, string.format('%.6f', due - now)}}
end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX',
           math.ceil((tat - now) * 1000) + 1000)
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - {WINDOW})
redis.call('PEXPIRE', KEYS[2], {WINDOW * 1000 + 1000})
return {{1, '0'}}
"""

# The state of a bucket now: {admitted in the last WINDOW s, tat or '', now, held back}.
_READ = f"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local admitted = redis.call('ZCOUNT', KEYS[2], now - {WINDOW}, '+inf')
return {{admitted, redis.call('GET', KEYS[1]) or '', string.format('%.6f', now),
        redis.call('HGET', KEYS[3], 'held_back') or '0'}}
"""


@dataclass(frozen=True)
class Limit:
    """A type's limit: at most `rate` tasks a second, `burst` of them at once."""

    type_name: str
    text: str
    rate: float
    burst: int

    @property
    def interval(self) -> float:
        return 1.0 / self.rate


def limits_of(settings: Settings) -> dict[str, Limit]:
    """The limit of every type that has one."""
    return {name: _limit(task_type) for name, task_type in settings.task_types.items()
            if task_type.rate_limit}


def _limit(task_type: TaskType) -> Limit:
    text = task_type.rate_limit or ""
    return Limit(task_type.name, text, per_second(text), task_type.rate_burst)


def bucket_keys(prefix: str, type_name: str) -> list[str]:
    base = f"{prefix}:rate:{type_name}"
    return [f"{base}:tat", f"{base}:admitted", f"{base}:stats"]


def take(client: redis.Redis, prefix: str, limit: Limit) -> float:
    """Take a token for one task of `limit`'s type: 0 when taken, else the seconds until
    one is due."""
    found = client.eval(_TAKE, 3, *bucket_keys(prefix, limit.type_name),  # type: ignore[no-untyped-call]
                        repr(limit.interval), limit.burst, uuid.uuid4().hex)
    return 0.0 if int(found[0]) else float(found[1])


@dataclass(frozen=True)
class Usage:
    """How a type's limit is used now."""

    limit: Limit
    current: float  # tasks a second over the last WINDOW seconds
    limited: bool  # no token now: its tasks wait in their queues
    held_back: int  # times a task was taken over the limit and put back, since the start


def usage(client: redis.Redis, prefix: str, limit: Limit) -> Usage:
    admitted, tat, now, held = client.eval(  # type: ignore[no-untyped-call]
        _READ, 3, *bucket_keys(prefix, limit.type_name))
    due = float(tat) - (limit.burst - 1) * limit.interval if tat else 0.0
    return Usage(limit, int(admitted) / WINDOW, float(now) < due, int(held))


def limit_json(limit: Limit) -> dict[str, Any]:
    return {"limit": limit.text, "per_second": limit.rate, "burst": limit.burst}


def usage_json(found: Usage) -> dict[str, Any]:
    return {**limit_json(found.limit), "current_per_second": found.current,
            "limited": found.limited, "held_back": found.held_back}


class RateGate:
    """A worker's view of the limits: which of its queues to skip now, and whether a task
    taken may run (a token) or goes back to its queue."""

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.client = client
        self.prefix = settings.key_prefix
        self.limits = limits_of(settings)
        self._by_task = {topology.task_name(name): limit for name, limit in self.limits.items()}
        self._by_queue = {topology.queue_name(settings, name, priority): name
                          for name in self.limits for priority in settings.priorities}
        self._closed: dict[str, float] = {}  # type -> monotonic time its token is due

    def open(self, queues: Sequence[Any]) -> list[Any]:
        """`queues` (kombu Queues) but those of a type waiting for its next token."""
        if not self._closed:
            return list(queues)
        now = time.monotonic()
        for name, until in list(self._closed.items()):
            if until <= now:
                del self._closed[name]
        return [q for q in queues if self._by_queue.get(q.name) not in self._closed]

    def next_open(self) -> float | None:
        """Seconds until the first skipped type may be asked again; None if none is."""
        if not self._closed:
            return None
        return max(0.0, min(self._closed.values()) - time.monotonic())

    def admit(self, message: Any) -> bool:
        """Whether the task of `message` may run now (its type's token taken)."""
        headers = message.headers if isinstance(message.headers, dict) else {}
        limit = self._by_task.get(str(headers.get("task")))  # an odd message: not limited
        if limit is None:
            return True
        try:
            wait = take(self.client, self.prefix, limit)
        except Exception:  # noqa: BLE001 - the records' Redis is down: hold the type a while
            log.warning("rate limit of %s not readable; its tasks wait", limit.type_name,
                        exc_info=True)
            wait = ON_ERROR_WAIT
        if wait > 0:
            self._closed[limit.type_name] = time.monotonic() + wait
        return wait <= 0


def gate_for(app: Any) -> RateGate | None:
    """The gate of a worker's app, or None when no type has a limit."""
    settings: Settings | None = getattr(app, "taskq_settings", None)
    runtime = getattr(app, "taskq_runtime", None)
    if settings is None or runtime is None or not limits_of(settings):
        return None
    return RateGate(settings, runtime.store.client)


def read_usage(runtime: Runtime) -> Mapping[str, Usage]:
    """Every limited type's usage now (BrokerUnavailable when the records' Redis is down)."""
    store = runtime.store
    with store.reachable():
        return {name: usage(store.client, runtime.settings.key_prefix, limit)
                for name, limit in limits_of(runtime.settings).items()}
