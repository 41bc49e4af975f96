"""Nothing lost on Redis brokers: workers lease the messages they hold, and the messages of a
worker that stops renewing (killed, cut off) go back to their queues within seconds.

kombu keeps every message a worker holds unacknowledged in the `unacked` hash, indexed by the
time it was taken (`unacked_index`), and puts it back in its queue only after the visibility
timeout, one hour by default: a worker killed with SIGKILL would delay its tasks that long. A
short timeout is no answer either, since a task that runs (or waits for its ETA) longer than
the timeout would be handed out twice. So:

- kombu's visibility timeout is raised above the longest delay plus the longest run, so that
  kombu itself never hands out a message a live worker still holds (`visibility_timeout`);
- every worker renews the time of the messages it holds every RENEW_EVERY seconds, and
  restores the messages of this deployment that nobody renewed for LEASE seconds (`Leases`).

The same rounds fail the tasks of poison messages the Redis fetch parked
(taskq/broker/fetch/redis.py) when the worker that parked one was killed before it could
(`settle_parked`).

A message therefore goes to another worker while its task runs only if its worker dies
mid-run or loses the broker for longer than LEASE; the run lease of the task's attempt
(taskq/broker/running.py) then keeps that delivery waiting while the first worker still reaches the
record store. Duplicates of the work are possible, losses are not.

Checked against kombu 5.7 (the Redis transport's unacked hash and index, QoS._delivered,
restore) and Celery 5.7 (celery.worker.state); tests/unit/test_library_internals.py fails when
one changes shape.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from celery import bootsteps
from celery.worker import state

from taskq.broker import poison, poison_hooks
from taskq.config import Settings

LEASE = 10.0  # seconds without renewal before a held message goes back to its queue
RENEW_EVERY = 2.0  # seconds between renewals (and scans for expired leases)
RESTORE_BATCH = 500  # messages restored per scan at most
SPARE = 3600  # seconds added to kombu's visibility timeout beyond the longest delay and run

log = logging.getLogger(__name__)


def visibility_timeout(settings: Settings, max_delay: float) -> int:
    """kombu's own timeout: longer than the longest delay plus the longest run, plus SPARE."""
    limits = [t.time_limit for t in settings.task_types.values() if t.time_limit]
    return int(max_delay + max(limits, default=0) + SPARE)


def renew(channel: Any, now: float | None = None, carried: Carried | None = None) -> int:
    """Mark every message this channel holds (and those `carried` over from channels closed
    while their tasks ran) as still held; returns how many."""
    try:
        tags = list(channel.qos._delivered)  # kombu's own record of what it holds
    except RuntimeError:  # changed by the event loop while copied: next round
        return 0
    tags += carried.tags() if carried is not None else []
    if tags:
        with channel.conn_or_acquire() as client:
            stamp = server_time(client) if now is None else now
            client.zadd(channel.unacked_index_key, dict.fromkeys(tags, stamp), xx=True)
    return len(tags)


def server_time(client: Any) -> float:
    """The Redis server's clock: every host stamps and reads leases by the same one."""
    seconds, micros = client.time()
    return float(seconds) + micros / 1_000_000


def restore_expired(channel: Any, prefix: str, lease: float = LEASE) -> int:
    """Put back in their queues this deployment's messages whose lease ran out; how many."""
    with channel.conn_or_acquire() as client:
        lock = f"{prefix}:leases:restoring"
        if not client.set(lock, "1", nx=True, px=int(LEASE * 1000)):
            return 0  # another worker is scanning
        try:
            return _restore(channel, client, prefix, server_time(client) - lease)
        finally:
            client.delete(lock)


def _restore(channel: Any, client: Any, prefix: str, older_than: float) -> int:
    tags = client.zrange(channel.unacked_index_key, 0, older_than, byscore=True,
                         offset=0, num=RESTORE_BATCH)
    if not tags:
        return 0
    restored = 0
    for tag, raw in zip(tags, client.hmget(channel.unacked_key, tags), strict=True):
        # Other deployments may share this database: only ours (routing key = our queue).
        if raw is not None and _routing_key(raw).startswith(f"{prefix}."):
            channel.qos.restore_by_tag(tag, client)
            restored += 1
    return restored


def _routing_key(raw: bytes) -> str:
    try:
        return str(json.loads(raw)[2])
    except (ValueError, IndexError, TypeError):
        return ""


def settle_parked(channel: Any, key: str, on_poison: Any, seen: set[bytes]) -> set[bytes]:
    """Fail the tasks of the poison messages parked under `key` (taskq/broker/fetch/redis.py) that
    were already there at the last round (`seen`): the worker that parked one was killed
    before it could. Returns the tags parked now and not settled, for the next round."""
    with channel.conn_or_acquire() as client:
        parked = client.hgetall(key)
        for tag in seen & set(parked):
            task_id, queue = poison.read_raw(parked[tag])
            on_poison(poison.Poison(task_id, queue, "decoded", ValueError(poison.UNREADABLE)))
            client.hdel(key, tag)
    return set(parked) - seen


class Carried:
    """Messages of tasks still running when their channel closed (a reconnect). kombu gives
    back every message a channel holds when it closes, and another worker would run these
    again while they run here; they stay held instead, renewed with the new channel's, until
    their task is done (its ack then goes with the new channel's next pop)."""

    def __init__(self) -> None:
        self._held: dict[Any, Any] = {}  # delivery tag -> the running request
        self._lock = threading.Lock()

    def keep(self, tag: Any, request: Any) -> None:
        with self._lock:
            self._held[tag] = request

    def tags(self) -> list[Any]:
        """The tags still to renew: those whose task is still running or about to."""
        try:
            live = {id(r) for r in (*state.active_requests, *state.reserved_requests)}
        except RuntimeError:  # changed by the event loop while read: keep all this round
            live = None
        with self._lock:
            if live is not None:
                self._held = {t: r for t, r in self._held.items() if id(r) in live}
            return list(self._held)


def spare_running_at_close(channel: Any, carried: Carried) -> None:
    """When `channel` (kombu Redis) closes, give back what it holds except the messages of
    tasks still running: those go to `carried`."""
    qos = channel.qos
    restore = qos.restore_unacked

    def restore_unacked(client: Any = None) -> Any:
        running = {r.message.delivery_tag: r for r in tuple(state.reserved_requests)
                   if getattr(r.message, "channel", None) is channel}
        for tag in [t for t in qos._delivered if t in running]:
            carried.keep(tag, running[tag])
            del qos._delivered[tag]
        return restore(client)

    qos.restore_unacked = restore_unacked


class Leases(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer step (Redis brokers): renew our leases and restore expired ones, in a thread
    of its own so that a busy event loop cannot let a live worker's leases run out."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._carried = Carried()

    def start(self, c: Any) -> None:
        if c.connection.transport.driver_type != "redis":
            return
        self._stop.set()  # a reconnect: the new channel's renewals replace the old one's
        self._stop = threading.Event()
        prefix = c.app.taskq_settings.key_prefix
        spare_running_at_close(c.task_consumer.channel, self._carried)

        def on_poison(found: poison.Poison) -> None:
            poison_hooks.quarantine(c.app, found, c.hostname)

        self._thread = threading.Thread(
            target=self._run, args=(c.task_consumer.channel, prefix, on_poison, self._stop,
                                    self._carried),
            daemon=True, name="taskq-leases")
        self._thread.start()

    def stop(self, c: Any) -> None:
        """Nothing: Celery stops the consumer before the pool has finished its running tasks
        (a warm shutdown), and their leases must hold until then, else another worker
        restores them and runs them again."""

    def shutdown(self, c: Any) -> None:
        # After the pool has finished (Celery shuts the consumer down last): the acks are
        # sent in the same phase, so a lease left behind belongs to no running task.
        self._stop.set()

    @staticmethod
    def _run(channel: Any, prefix: str, on_poison: Any, stop: threading.Event,
             carried: Carried) -> None:
        seen: set[bytes] = set()
        while True:
            try:
                renew(channel, carried=carried)
                seen = settle_parked(channel, poison.redis_key(prefix), on_poison, seen)
                restored = restore_expired(channel, prefix)
                if restored:
                    log.warning("restored %d message(s) of a worker that stopped renewing "
                                "them", restored)
            except Exception:  # noqa: BLE001 - broker unreachable: retried on the next round
                log.debug("lease round failed", exc_info=True)
            if stop.wait(RENEW_EVERY):
                return
