"""The task consumer that never subscribes: `fetch()` takes the first message of its queues in
priority order (each broker's take: redis.py, amqp.py), through the rate-limit gate, the
starvation guard and the yield's cut; acks are held for the next look to carry.

Checked against kombu 5.7 (Consumer, Message._state and _reraise_error) and Celery 5.7;
tests/unit/test_library_internals.py fails when one changes shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu import Consumer

from taskq.broker import holding, poison_hooks, starvation, yielding
from taskq.store import rate_limits


class PollingConsumer(Consumer):  # type: ignore[misc]
    """A task consumer that never subscribes; `fetch()` takes from its queues in order."""

    polling = False
    on_settled: Any = None  # called after each ack or reject: a process may be free
    on_poison: Any = None  # called with a Poison for a message that cannot be read
    gate: rate_limits.RateGate | None = None  # global rate limits: types to skip for now
    guard: starvation.AgingGuard | None = None  # queues whose oldest task waited too long

    def consume(self, no_ack: bool | None = None) -> None:
        # No subscription: the broker would choose between our queues.
        self.polling = True

    def cancel(self) -> None:
        self.polling = False
        super().cancel()

    def fetch(self) -> bool:
        """Hand the first message of the first non-empty queue to the worker; False if none."""
        message = self._take()
        if message is None:
            return False
        self.deliver(message)
        return True

    def deliver(self, message: Any) -> bool:
        """Hand a message taken from one of our queues to the worker; False when its type is
        over its rate limit: then it went back to the head of its queue, no process used."""
        if self.gate is not None and not self.gate.admit(message):
            self.reject(message, message.reject, requeue=True)
            return False
        if self.guard is not None:
            self.guard.mark(message)
        message.accept = self.accept
        holding.mark_taken(message)
        _notify_on_settle(message, self)
        if message.errors:
            message._reraise_error(self.on_decode_error)
            return True
        on_message: Any = self.on_message
        try:
            on_message(message)
        except Exception as exc:
            # Celery lets out what it cannot read as a task (a body that is not (args, kwargs,
            # options)): left there, the message would stay held and the fetch stop.
            if message.acknowledged or self._connection_error(exc):
                raise
            try:
                if self.on_poison is not None:
                    self.on_poison(poison_hooks.of_message(message, "decoded", exc))
            except Exception:  # the backend is down: the message comes back later
                message.reject(requeue=True)
                raise
            message.ack()
        return True

    def _connection_error(self, exc: BaseException) -> bool:
        connection: Any = self.connection
        known = (*connection.connection_errors, *connection.channel_errors) if connection \
            else ()
        return isinstance(exc, (OSError, *known))

    def _take(self) -> Any:
        raise NotImplementedError

    def announced(self, queues: set[str]) -> None:
        """A ring named the queues that just got work."""

    _acks: list[Any] | None = None  # delivery tags whose ack goes with the next look

    def acknowledge(self, message: Any, ack: Any, multiple: bool) -> None:
        """Acknowledge `message` (`ack` is its own ack). An ack is a round trip of its own
        (as costly as a look); the next look, which an ack usually triggers at once (a process
        is free), carries it instead."""
        if message.channel is not self.channel or multiple or message.acknowledged:
            ack(multiple=multiple)
            return
        self._ack_in_memory(message.delivery_tag)
        if self._acks is None:
            self._acks = []
        self._acks.append(message.delivery_tag)
        message._state = "ACK"  # what kombu's Message.ack records after sending

    def _ack_in_memory(self, delivery_tag: Any) -> None:
        """What the transport does at once for an ack held back (nothing on RabbitMQ)."""

    @contextmanager
    def _held_acks(self) -> Iterator[list[Any]]:
        """The acks held back, for the next call to carry. They are forgotten only once that
        call has answered: one that fails (a lost connection) leaves them to the next."""
        tags = list(self._acks or ())
        yield tags
        if self._acks:
            del self._acks[:len(tags)]

    def take_over_acks(self, previous: PollingConsumer) -> None:
        """After a reconnect: hold the acks the previous consumer could not send, and those
        its running tasks will make, in one list with ours (Redis: the same unacked hash)."""
        if previous._acks is None:
            previous._acks = []
        self._acks = previous._acks

    def flush_acks(self) -> None:
        """Send the acknowledgements held back, when no look follows to carry them."""
        if self._acks:
            with self._held_acks() as tags:
                self._send_acks(tags)

    def _send_acks(self, tags: list[Any]) -> None:
        raise NotImplementedError

    def reject(self, message: Any, reject: Any, requeue: bool) -> None:
        """Reject `message` (`reject` is its own reject); RabbitMQ requeues it in its place."""
        reject(requeue=requeue)

    def _in_order(self) -> list[Any]:
        queues: list[Any] = list(self.queues or ())
        if self.gate is not None:
            queues = self.gate.open(queues)
        if self.guard is not None:
            queues = self.guard.order(queues)
        # (none below a task taken and not yet accepted by a process, and only those above a
        # task that just yielded, while it waits: taskq/broker/yielding.py)
        queues = yielding.at_or_above(queues, holding.handing_over(yielding.YIELD_WINDOW))
        return yielding.memory.above(queues)


def _notify_on_settle(message: Any, consumer: PollingConsumer) -> None:
    """Settling a message (ack or reject) frees a process: tell the consumer's on_settled."""
    ack, reject = message.ack, message.reject

    def acked(multiple: bool = False) -> None:
        try:
            consumer.acknowledge(message, ack, multiple)
        finally:
            if consumer.on_settled:
                consumer.on_settled()

    def rejected(requeue: bool = False) -> None:
        try:
            consumer.reject(message, reject, requeue)
        finally:
            if consumer.on_settled:
                consumer.on_settled()

    message.ack, message.reject = acked, rejected
