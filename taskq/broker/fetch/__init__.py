"""Strict priority on every broker: a worker fetches the highest-priority waiting task when a
process is free, instead of letting the broker choose between its queues.

RabbitMQ: a consumer subscribed to several queues is served by them in turn (when a prefetch
slot frees, the blocked queues are resumed in random order), so a subscription can never be
strict across queues. Redis: kombu pops with BRPOP and records the message as unacknowledged
only afterwards, so a worker killed in between loses it.

So the task consumer does not subscribe. Whenever the pool has a free process it takes the
first message of its queues in priority order: on RabbitMQ with one basic.get per queue, on
Redis with one script that pops it and records it unacknowledged in the same atomic step
(kombu's `unacked` hash and index, which taskq/broker/recovery.py leases). A message is only taken
for a free process, and acknowledged after the run (acks_late), so nothing waits in a worker
while a higher priority waits in the broker. The fetcher is woken by every ack or reject (a
process just freed) and by the doorbell publishers ring after queuing work
(taskq/broker/doorbell.py); when its queues are empty it polls again after 1 ms, doubling up
to IDLE_POLL_MAX, for work queued without a ring (Celery's own retries). On RabbitMQ an idle
worker also stands by, subscribed one message at a time, so new work is pushed to it (Standby).
Two optional checks sit in the take: a type over its global rate limit is put back before it
reaches a process and skipped until its next token (taskq/store/rate_limits.py), and a queue whose
oldest task waited past its max_wait is read a priority up (taskq/broker/starvation.py).

Here: the worker step that drives the fetch (PriorityFetch) and the Celery AMQP helper that
makes the task consumer a PollingConsumer (consumer.py), which takes through redis.py or
amqp.py. Checked against Celery 5.7 (celery.worker.loops, celery.worker.state, the prefork
pool's outbound buffer); tests/unit/test_library_internals.py fails when one changes shape.
"""

from __future__ import annotations

import functools
from typing import Any

from celery import bootsteps
from celery.app.amqp import AMQP
from celery.worker import loops, state
from kombu import Connection, Consumer

from taskq.broker import doorbell, holding, poison_hooks, starvation
from taskq.broker.fetch.amqp import AmqpPollingConsumer, Standby
from taskq.broker.fetch.consumer import PollingConsumer
from taskq.broker.fetch.redis import RedisPollingConsumer
from taskq.broker.poison import redis_key
from taskq.store import rate_limits

FIRST_IDLE_POLL = 0.001  # seconds before asking empty queues again; doubles while idle
IDLE_POLL_MAX = 0.1  # the longest a new task waits on an idle worker
BUSY_RECHECK = 0.5  # safety re-check while every process is busy (acks wake it sooner)
AFTER_TAKE = 0.0001  # seconds before the next look after taking a message


class PriorityAMQP(AMQP):  # type: ignore[misc]
    """Celery's AMQP helper, with a polling task consumer on RabbitMQ and Redis brokers (other
    transports, and Redis with a global key prefix, keep Celery's own consumer)."""

    def TaskConsumer(self, channel: Any, queues: Any = None, accept: Any = None,  # noqa: N802
                     **kw: Any) -> Consumer:
        kind = _polling_kind(channel)
        if kind is None:
            return super().TaskConsumer(channel, queues=queues, accept=accept, **kw)
        consumer = kind(
            channel, accept=self.app.conf.accept_content if accept is None else accept,
            queues=queues or list(self.queues.consume_from.values()), **kw)
        settings = getattr(self.app, "taskq_settings", None)
        if isinstance(consumer, RedisPollingConsumer) and settings is not None:
            consumer.poison_key = redis_key(settings.key_prefix)
        return consumer


def _polling_kind(channel: Any) -> type[PollingConsumer] | None:
    connection = channel if isinstance(channel, Connection) else channel.connection.client
    driver = str(connection.transport.driver_type)
    if driver == "amqp":
        return AmqpPollingConsumer
    prefixed = (connection.transport_options or {}).get("global_keyprefix")
    return RedisPollingConsumer if driver == "redis" and not prefixed else None


class PriorityFetch(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer step driving a PollingConsumer from the worker's event loop."""

    # After the leases: shut down before them, so the last acks are sent while leases hold.
    requires = ("celery.worker.consumer.tasks:Tasks", "taskq.broker.recovery:Leases")

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._entry: Any = None
        self._idle = FIRST_IDLE_POLL
        self._maybe_work = True  # False while the queues were empty at the last look
        self._doorbell: Consumer | None = None
        self._standby: Standby | None = None
        self._consumer: PollingConsumer | None = None  # the last one started
        self._rate_gate: rate_limits.RateGate | None = None

    def start(self, c: Any) -> None:
        consumer = c.task_consumer
        if not isinstance(consumer, PollingConsumer) or c.hub is None:
            return
        self._idle = FIRST_IDLE_POLL
        self._maybe_work = True
        if isinstance(consumer, RedisPollingConsumer) and isinstance(
                self._consumer, RedisPollingConsumer):
            consumer.take_over_acks(self._consumer)  # a reconnect: the same unacked hash
        self._consumer = consumer
        consumer.on_settled = lambda: self._settled(c)
        consumer.on_poison = lambda found: poison_hooks.quarantine(c.app, found, c.hostname)
        consumer.gate = self._gate(c)
        consumer.guard = starvation.guard_for(c.app)
        self._doorbell = doorbell.listen(c.connection.channel(), c.app.taskq_settings,
                                         lambda body: self._rang(c, body))
        if self._standby is not None:  # a reconnect: the old channel went with its connection
            self._standby.close()
            self._standby = None
        if isinstance(consumer, AmqpPollingConsumer):
            self._standby = Standby(c.connection.channel(), lambda m: self._pushed(c, m))
            _no_first_wait()
        self._schedule(c, FIRST_IDLE_POLL)

    def stop(self, c: Any) -> None:
        """Take nothing more. Celery stops the consumer before the pool has finished its
        running tasks (a warm shutdown), so the standby channel stays open (closing it would
        requeue a task it delivered, still running) until `shutdown`, after the pool."""
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None
        self._flush(c)
        if self._standby is not None:
            try:
                self._standby.unsubscribe()
            except Exception:  # noqa: BLE001 - the connection is gone already
                pass
        if self._doorbell is not None:
            doorbell, self._doorbell = self._doorbell, None
            try:
                channel: Any = doorbell.channel
                doorbell.cancel()
                channel.close()
            except Exception:  # noqa: BLE001 - the connection is gone already
                pass

    def shutdown(self, c: Any) -> None:
        """The pool has finished: send the acks of its last tasks, then close."""
        self.stop(c)
        if self._standby is not None:
            standby, self._standby = self._standby, None
            standby.close()

    def _gate(self, c: Any) -> rate_limits.RateGate | None:
        """One gate for the worker's life: the types it skips survive a reconnect."""
        if self._rate_gate is None:
            self._rate_gate = rate_limits.gate_for(c.app)
        return self._rate_gate

    def _flush(self, c: Any) -> None:
        consumer = c.task_consumer
        if isinstance(consumer, PollingConsumer):
            try:
                consumer.flush_acks()
            except Exception:  # noqa: BLE001 - the connection is gone: they are redelivered
                pass

    def _rang(self, c: Any, body: Any) -> None:
        if isinstance(c.task_consumer, PollingConsumer):
            c.task_consumer.announced(doorbell.rung_queues(body))
        self._maybe_work = True
        self._idle = FIRST_IDLE_POLL
        # On RabbitMQ the ring usually follows a message pushed to the standby: then the look
        # waits a moment, so the hub hands that message to a process first.
        self._schedule(c, AFTER_TAKE if self._standby is not None else 0)

    def _settled(self, c: Any) -> None:
        # A process is free. Fetch now unless the queues were empty at the last look and no
        # one rang since: then the idle poll keeps its pace (it finds work queued without a
        # ring), and the hub is not held up asking empty queues after every task.
        # A timer, not hub.call_soon: acks often run in the hub's ready callbacks, and a
        # callback added from there waits for the next poll (up to BUSY_RECHECK), while due
        # timers fire before the hub polls again.
        if self._maybe_work:
            self._schedule(c, 0)  # the fetch carries the ack
        else:
            if isinstance(c.task_consumer, PollingConsumer):
                c.task_consumer.flush_acks()
            self._schedule(c, self._idle)

    def _schedule(self, c: Any, delay: float) -> None:
        if self._entry is not None:
            self._entry.cancel()
        self._entry = c.timer.call_after(delay, self._poll, (c,))

    def _poll(self, c: Any) -> None:
        consumer = c.task_consumer
        if not isinstance(consumer, PollingConsumer) or not consumer.polling:
            self._schedule(c, BUSY_RECHECK)  # consume() not called yet, or reconnecting
            return
        if _free_processes(c) <= 0:
            consumer.flush_acks()
            if self._standby is not None:
                self._standby.unsubscribe()
            self._schedule(c, BUSY_RECHECK)  # the next ack wakes it sooner
        elif _handing_over(c):
            # A task taken is still waiting to be written to a free process: let the hub do
            # that first (a look is a blocking round trip on RabbitMQ).
            consumer.flush_acks()
            self._schedule(c, AFTER_TAKE)
        elif consumer.fetch():
            if self._standby is not None:
                self._standby.unsubscribe()
            self._took(c)
        else:
            self._maybe_work = False
            if self._standby is not None:
                self._standby.subscribe(consumer._in_order())
            self._schedule(c, _idle_wait(consumer, self._idle))
            self._idle = min(self._idle * 2, IDLE_POLL_MAX)

    def _pushed(self, c: Any, message: Any) -> None:
        consumer = c.task_consumer
        if isinstance(consumer, PollingConsumer):
            if not consumer.deliver(message) and self._standby is not None:
                self._standby.unsubscribe()  # else the type's queue pushes it back at once
            self._took(c)

    def _took(self, c: Any) -> None:
        self._maybe_work = True
        self._idle = FIRST_IDLE_POLL
        # One message per round: the hub hands it to a process before the next look.
        self._schedule(c, AFTER_TAKE)


_FIRST_DRAIN = loops._quick_drain


def _no_first_wait() -> None:
    """Celery's event loop on RabbitMQ first waits up to 0.1 s for a frame (`_quick_drain`:
    "a clean state" for a consumer with a prefetch count). A PollingConsumer subscribes to
    nothing then, so that wait always lasted the whole 0.1 s of a worker's start; frames that
    do come (remote control) are read by the loop as they arrive. Checked against Celery 5.7
    (celery.worker.loops.asynloop; test_library_internals.py)."""
    loops._quick_drain = functools.partial(_FIRST_DRAIN, timeout=0)


def _idle_wait(consumer: PollingConsumer, idle: float) -> float:
    """Seconds before the next look at empty queues: the idle poll, or sooner when a type
    skipped for its rate limit gets its next token."""
    due = consumer.gate.next_open() if consumer.gate is not None else None
    return idle if due is None else min(idle, due)


def _handing_over(c: Any) -> bool:
    """Whether the prefork pool holds a task not yet written to a process."""
    return bool(getattr(getattr(c.pool, "_pool", None), "outbound_buffer", None))


def _free_processes(c: Any) -> int:
    """How many messages the worker may take now (taskq/broker/holding.py)."""
    limit = getattr(c.controller, "max_concurrency", None) or c.pool.num_processes
    return holding.room(int(limit), len(state.reserved_requests), holding.waiting(c))
