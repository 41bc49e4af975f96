"""Strict priority on RabbitMQ: a worker fetches the highest-priority waiting task when a
process is free, instead of letting the broker choose between its queues.

A RabbitMQ consumer subscribed to several queues is served by them in turn (when a prefetch
slot frees, the blocked queues are resumed in random order), so a subscription can never be
strict across queues. Here the task consumer does not subscribe: whenever the pool has a free
process it asks its queues one by one, highest priority first (AMQP basic.get), and takes the
first message it finds. A message is only taken for a free process, and acknowledged after
the run (acks_late), so nothing waits in a worker while a higher priority waits in the broker.
It is woken by every ack or reject (a process just freed); when its queues are empty it polls
again after 1 ms, doubling up to IDLE_POLL_MAX.
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps
from celery.app.amqp import AMQP
from celery.worker import state
from kombu import Connection, Consumer

FIRST_IDLE_POLL = 0.001  # seconds before asking empty queues again; doubles while idle
IDLE_POLL_MAX = 0.1  # the longest a new task waits on an idle worker
BUSY_RECHECK = 0.5  # safety re-check while every process is busy (acks wake it sooner)
MAX_PER_ROUND = 100  # messages taken in one go (ETA tasks take no process)


class PollingConsumer(Consumer):  # type: ignore[misc]
    """A task consumer that never subscribes; `fetch()` takes from its queues in order."""

    polling = False
    on_settled: Any = None  # called after each ack or reject: a process may be free

    def consume(self, no_ack: bool | None = None) -> None:
        # No basic.consume: the broker would choose between our queues.
        self.polling = True

    def cancel(self) -> None:
        self.polling = False
        super().cancel()

    def fetch(self) -> bool:
        """Hand the first message of the first non-empty queue to the worker; False if none."""
        channel: Any = self.channel
        queues: list[Any] = list(self.queues or ())
        for queue in queues:
            raw = channel.basic_get(queue=queue.name, no_ack=False)
            if raw is not None:
                self._deliver(raw)
                return True
        return False

    def _deliver(self, raw: Any) -> None:
        channel: Any = self.channel
        on_message: Any = self.on_message
        message = channel.message_to_python(raw)
        message.accept = self.accept
        _notify_on_settle(message, self)
        if message.errors:
            message._reraise_error(self.on_decode_error)
            return
        on_message(message)


def _notify_on_settle(message: Any, consumer: PollingConsumer) -> None:
    def notifying(settle: Any) -> Any:
        def settled(*args: Any, **kwargs: Any) -> Any:
            try:
                return settle(*args, **kwargs)
            finally:
                if consumer.on_settled:
                    consumer.on_settled()
        return settled

    message.ack, message.reject = notifying(message.ack), notifying(message.reject)


class PriorityAMQP(AMQP):  # type: ignore[misc]
    """Celery's AMQP helper, with a polling task consumer on RabbitMQ (other brokers unchanged)."""

    def TaskConsumer(self, channel: Any, queues: Any = None, accept: Any = None,  # noqa: N802
                     **kw: Any) -> Consumer:
        if _driver(channel) != "amqp":
            return super().TaskConsumer(channel, queues=queues, accept=accept, **kw)
        return PollingConsumer(
            channel, accept=self.app.conf.accept_content if accept is None else accept,
            queues=queues or list(self.queues.consume_from.values()), **kw)


def _driver(channel: Any) -> str:
    connection = channel if isinstance(channel, Connection) else channel.connection.client
    return str(connection.transport.driver_type)


class PriorityFetch(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer step driving a PollingConsumer from the worker's event loop."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._entry: Any = None
        self._idle = FIRST_IDLE_POLL
        self._woken = False

    def start(self, c: Any) -> None:
        consumer = c.task_consumer
        if not isinstance(consumer, PollingConsumer) or c.hub is None:
            return
        self._idle = FIRST_IDLE_POLL
        consumer.on_settled = lambda: self._wake(c)
        self._schedule(c, FIRST_IDLE_POLL)

    def stop(self, c: Any) -> None:
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None

    shutdown = stop

    def _wake(self, c: Any) -> None:
        if not self._woken:
            self._woken = True
            c.hub.call_soon(self._poll, c)

    def _schedule(self, c: Any, delay: float) -> None:
        if self._entry is not None:
            self._entry.cancel()
        self._entry = c.timer.call_after(delay, self._poll, (c,))

    def _poll(self, c: Any) -> None:
        self._woken = False
        consumer = c.task_consumer
        if not isinstance(consumer, PollingConsumer) or not consumer.polling:
            self._schedule(c, BUSY_RECHECK)  # consume() not called yet, or reconnecting
            return
        free, taken, empty = _free_processes(c), 0, False
        while free > 0 and taken < MAX_PER_ROUND and not empty:
            empty = not consumer.fetch()
            taken += not empty
            free = _free_processes(c)
        if taken:
            self._idle = FIRST_IDLE_POLL
        if free <= 0:
            self._schedule(c, BUSY_RECHECK)  # the next ack wakes it sooner
        elif not empty:
            self._schedule(c, 0)
        else:
            self._schedule(c, self._idle)
            self._idle = min(self._idle * 2, IDLE_POLL_MAX)


def _free_processes(c: Any) -> int:
    limit = getattr(c.controller, "max_concurrency", None) or c.pool.num_processes
    return int(limit) - len(state.reserved_requests)
