"""Queue depths and consumers, read from the broker: the embedded broker, Redis or RabbitMQ.

Checked against kombu 5.7 (the Redis transport's priority lists: Channel._q_for_pri,
PRIORITY_STEPS); tests/unit/test_library_internals.py fails when one changes shape."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from taskq import errors, records, topology
from taskq.config import resolve_priority, resolve_type
from taskq.errors import BrokerUnavailable
from taskq.urls import mask_url, redis_client

if TYPE_CHECKING:
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

DEFAULT_TIMEOUT = 3.0


@dataclass
class QueueInfo:
    """One queue: waiting messages, consumers and the submit time of its oldest QUEUED task."""

    name: str
    type: str
    priority: str
    depth: int
    consumers: int
    oldest_waiting_at: float | None = None
    scheduled: int = 0  # delayed tasks and retries not due yet, in Redis (taskq/store/delayed.py)
    rate_limited: bool | None = None  # its type at its global rate limit now; None: no limit


class DepthReader(Protocol):
    """Reads (depth, consumers or None when the broker cannot tell) for queue names."""

    def read(self, names: list[str]) -> dict[str, tuple[int, int | None]]: ...

    def close(self) -> None: ...


class RedisDepths:
    """kombu's Redis transport keeps a queue as lists: the name for priority 0 and
    name + sep + step for the other priority steps, all under the global key prefix."""

    def __init__(self, broker_url: str, options: dict[str, Any], timeout: float) -> None:
        from kombu.transport import redis as kombu_redis

        self.client = redis_client(broker_url, timeout, timeout)
        self.prefix = options.get("global_keyprefix", "")
        self.sep = options.get("sep", kombu_redis.Channel.sep)
        self.steps = options.get("priority_steps", kombu_redis.PRIORITY_STEPS)

    def _keys(self, name: str) -> list[str]:
        return [self.prefix + (f"{name}{self.sep}{step}" if step else name)
                for step in self.steps]

    def read(self, names: list[str]) -> dict[str, tuple[int, int | None]]:
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            for key in self._keys(name):
                pipe.llen(key)
        sizes = iter(pipe.execute())
        return {name: (sum(next(sizes) for _ in self.steps), None) for name in names}

    def close(self) -> None:
        self.client.close()


class AmqpDepths:
    """RabbitMQ: a passive queue_declare answers ready messages (and consumers), per queue."""

    def __init__(self, broker_url: str, timeout: float) -> None:
        from kombu import Connection

        self.conn = Connection(broker_url, connect_timeout=timeout, transport_options={
            "read_timeout": timeout, "write_timeout": timeout})

    def read(self, names: list[str]) -> dict[str, tuple[int, int | None]]:
        from amqp.exceptions import NotFound

        out: dict[str, tuple[int, int | None]] = {}
        channel = self.conn.channel()
        for name in names:
            try:
                _, depth, consumers = channel.queue_declare(queue=name, passive=True)
                out[name] = (int(depth), int(consumers))
            except NotFound:  # never declared: no worker has consumed it yet
                out[name] = (0, 0)
                channel = self.conn.channel()  # the broker closed the channel
        channel.close()
        return out

    def close(self) -> None:
        self.conn.release()


def depth_reader(runtime: Runtime, timeout: float = DEFAULT_TIMEOUT) -> DepthReader:
    """A reader for the runtime's broker; every call on it is bounded by `timeout`."""
    url = runtime.broker_url
    if url.startswith(("amqp", "pyamqp")):
        return AmqpDepths(url, timeout)
    options = dict(runtime.celery.conf.broker_transport_options or {})
    return RedisDepths(url, options, timeout)


def transport_errors() -> tuple[type[Exception], ...]:
    """What a broker call raises when the broker is down or too slow."""
    import redis
    from amqp.exceptions import AMQPError
    from kombu.exceptions import OperationalError

    return (OSError, redis.RedisError, OperationalError, AMQPError)


def queue_stats(runtime: Runtime, reader: DepthReader | None = None,
                types: tuple[str, ...] = (), priorities: tuple[str, ...] = (),
                consumers: dict[str, int] | None = None, *, oldest: bool = True
                ) -> list[QueueInfo]:
    """Every queue (or those of the given types/priorities), highest priority first.

    `consumers` (queue -> live workers reading it, from store/workers.py) is the consumer count
    where the broker cannot tell (Redis) or does not see them (basic.get on RabbitMQ).
    `oldest=False` skips reading oldest_waiting_at (one Redis round trip), left None.
    """
    settings = runtime.settings
    pairs = [(t, p) for p, t in itertools.product(settings.priorities, settings.task_types)
             if (not types or t in types) and (not priorities or p in priorities)]
    names = [topology.queue_name(settings, t, p) for t, p in pairs]
    own = reader is None
    reader = reader or depth_reader(runtime)
    try:
        depths = reader.read(names)
    except transport_errors() as exc:
        raise _unavailable(runtime, exc) from None
    finally:
        if own:
            reader.close()
    waiting, scheduled = _from_records(runtime, pairs, oldest)
    return [QueueInfo(name, t, p, depths[name][0],
                      _consumers(depths[name][1], (consumers or {}).get(name, 0)),
                      waiting.get((t, p)), scheduled.get((t, p), 0))
            for name, (t, p) in zip(names, pairs, strict=True)]


def _consumers(from_broker: int | None, from_workers: int) -> int:
    # taskq workers on RabbitMQ fetch with basic.get (strict priority), which the broker does
    # not count as consuming, and Redis has no count at all: live taskq workers reading the
    # queue count, and the broker's number adds anything else subscribed (a plain Celery
    # worker).
    return max(from_broker or 0, from_workers)


def _from_records(runtime: Runtime, pairs: list[tuple[str, str]], oldest: bool
                  ) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], int]]:
    """Per (type, priority): the submit time of the oldest QUEUED task (when `oldest`), and
    how many wait in the due set (SCHEDULED, or RETRY waiting out a backoff); in one round
    trip."""
    store = runtime.store
    pipe = store.client.pipeline(transaction=False)
    for t, p in pairs:
        pipe.zcard(store.cell_key(records.SCHEDULED, t, p))
        pipe.zcard(store.cell_key(records.RETRY, t, p))
        if oldest:
            pipe.zrange(store.cell_key(records.QUEUED, t, p), 0, 0, withscores=True)
    with store.reachable():
        found = iter(pipe.execute())
    waiting: dict[tuple[str, str], float] = {}
    scheduled: dict[tuple[str, str], int] = {}
    for pair in pairs:
        scheduled[pair] = int(next(found)) + int(next(found))
        if oldest and (hit := next(found)):
            waiting[pair] = float(hit[0][1])
    return waiting, scheduled


def _unavailable(runtime: Runtime, exc: BaseException) -> BrokerUnavailable:
    return BrokerUnavailable("broker", mask_url(runtime.broker_url) or "", errors.reason(exc))


def queues_now(runtime: Runtime, types: list[str] | None = None,
               priorities: list[str] | None = None) -> list[QueueInfo]:
    """queue_stats for user filters (aliases allowed), consumers counted from live workers."""
    from taskq.store.workers import consumers_by_queue, list_workers

    settings = runtime.settings
    chosen_types = tuple(resolve_type(settings, t).name for t in types or [])
    chosen_prios = tuple(resolve_priority(settings, p) for p in priorities or [])
    consumers = consumers_by_queue(list_workers(runtime, current=False))
    found = queue_stats(runtime, types=chosen_types, priorities=chosen_prios,
                        consumers=consumers)
    mark_rate_limited(runtime, found)
    return found


def mark_rate_limited(runtime: Runtime, found: list[QueueInfo]) -> None:
    """Note on each queue of a rate-limited type whether that type is at its limit now."""
    from taskq.store import rate_limits

    if not rate_limits.limits_of(runtime.settings):
        return
    usage = rate_limits.read_usage(runtime)
    for queue in found:
        if queue.type in usage:
            queue.rate_limited = usage[queue.type].limited


def queue_json(queue: QueueInfo, now: float | None = None) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(queue)
    data["oldest_waiting_age"] = (round((now or time.time()) - queue.oldest_waiting_at, 3)
                                  if queue.oldest_waiting_at else None)
    data["oldest_waiting_at"] = records.iso_time(queue.oldest_waiting_at)
    return data
