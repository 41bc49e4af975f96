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
(messages.wake_exchange); when its queues are empty it polls again after 1 ms, doubling up
to IDLE_POLL_MAX, for work queued without a ring (Celery's own retries). On RabbitMQ an idle
worker also stands by, subscribed one message at a time, so new work is pushed to it (Standby).
Two optional checks sit in the take: a type over its global rate limit is put back before it
reaches a process and skipped until its next token (taskq/store/rate_limits.py), and a queue whose
oldest task waited past its max_wait is read a priority up (taskq/broker/starvation.py).
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from amqp import spec
from celery import bootsteps
from celery.app.amqp import AMQP
from celery.worker import loops, state
from kombu import Connection, Consumer, Queue
from kombu.transport import virtual
from redis.commands.core import Script

from taskq.broker import holding, messages, poison_hooks, starvation, yielding
from taskq.broker.amqp_frames import get_frames, method_frames, send
from taskq.broker.poison import UNREADABLE, Poison, read_raw, redis_key
from taskq.store import rate_limits

FIRST_IDLE_POLL = 0.001  # seconds before asking empty queues again; doubles while idle
IDLE_POLL_MAX = 0.1  # the longest a new task waits on an idle worker
BUSY_RECHECK = 0.5  # safety re-check while every process is busy (acks wake it sooner)
AFTER_TAKE = 0.0001  # seconds before the next look after taking a message

log = logging.getLogger(__name__)


# Acknowledges the messages it is given (their entries leave the unacked hash and index, as
# kombu's Redis QoS.ack does), then pops the first message of the first non-empty key and, in
# the same atomic step, records it as kombu's Redis QoS.append would: [payload, exchange,
# routing key] in the unacked hash under its delivery tag, and the time in the unacked index.
# The payload is kept verbatim. A message it cannot read (not JSON to cjson, e.g. a lone
# surrogate; no delivery tag) is poison: it goes to the poison hash instead, under a tag made
# from its text, for the worker to fail its task (taskq/broker/poison.py).
# The time recorded is the Redis server's (TIME), as the leases' renewals and scans use, so
# hosts whose clocks differ never see each other's held messages as expired.
# KEYS: unacked hash, unacked index, poison hash, queue keys in priority order.
# ARGV: tags to ack... Returns false, or {payload, tag, queue key, 'poison' if it is}.
_POP = """
local function entry(raw)
  local props = cjson.decode(raw)['properties']
  local info, tag = props['delivery_info'], props['delivery_tag']
  if type(tag) ~= 'string' then error('no delivery tag') end
  return tag, '[' .. raw .. ',' .. cjson.encode(info['exchange']) .. ','
         .. cjson.encode(info['routing_key']) .. ']'
end
for i = 1, #ARGV do
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('HDEL', KEYS[1], ARGV[i])
end
for i = 4, #KEYS do
  local raw = redis.call('RPOP', KEYS[i])
  if raw then
    local ok, tag, unacked = pcall(entry, raw)
    if not ok then
      tag = 'poison-' .. redis.sha1hex(raw)
      redis.call('HSET', KEYS[3], tag, raw)
      return {raw, tag, KEYS[i], 'poison'}
    end
    redis.call('HSET', KEYS[1], tag, unacked)
    local now = redis.call('TIME')
    redis.call('ZADD', KEYS[2], now[1] + now[2] / 1000000, tag)
    return {raw, tag, KEYS[i]}
  end
end
return false
"""


# Hashed once; each call sends EVALSHA over the client it is given (EVAL once on NOSCRIPT).
_POP_SCRIPT = Script(None, _POP.encode())  # type: ignore[arg-type]  # bytes: no client needed


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


class AmqpPollingConsumer(PollingConsumer):
    """RabbitMQ: basic.get on each queue, highest priority first.

    A round trip per queue adds up (a worker of 3 types reads 9 queues), so the queues up to
    the one the last message came from are asked in one go: their basic.get requests are sent
    together and the replies read in order. RabbitMQ answers a channel's requests one after
    another, so the first message in that order is the highest-priority one waiting when it
    was asked; any lower one taken with it goes back to the head of its queue. Only when all
    of those are empty are the queues below asked, one at a time. A ring names the queues
    that got work, so an idle worker asks only down to the highest of them.
    """

    _expect = 0  # index of the queue the last message came from (or the last, when idle)

    def _send_acks(self, tags: list[Any]) -> None:
        send(self.channel, self._ack_frames(tags))

    def _ack_frames(self, tags: list[Any]) -> bytes:
        channel: Any = self.channel
        return method_frames(channel.channel_id, spec.Basic.Ack, "Lb",
                             [(tag, False) for tag in tags])

    def announced(self, queues: set[str]) -> None:
        # The best waiting message is now at most as far down as the highest rung queue.
        rung = [index for index, queue in enumerate(self._in_order()) if queue.name in queues]
        if rung:
            self._expect = min(self._expect, rung[0])

    def _take(self) -> Any:
        channel: Any = self.channel
        queues = self._in_order()
        ahead = min(self._expect, len(queues) - 1) + 1
        found: tuple[int, Any] | None = None
        with self._held_acks() as tags:
            asked = _get_each(channel, [q.name for q in queues[:ahead]],
                              self._ack_frames(tags))
        for index, raw in enumerate(asked):
            if raw is None:
                continue
            if found is None:
                found = (index, raw)
            else:
                channel.basic_reject(raw.delivery_tag, requeue=True)
        for index in range(ahead, len(queues) if found is None else 0):
            raw = channel.basic_get(queue=queues[index].name, no_ack=False)
            if raw is not None:
                found = (index, raw)
                break
        if found is None:
            self._expect = len(queues) - 1  # idle: the next look asks every queue at once
            return None
        self._expect = found[0]
        return channel.message_to_python(found[1])


def _get_each(channel: Any, names: Sequence[str], before: bytes = b"") -> list[Any]:
    """basic.get on each queue of `names` (py-amqp channel): the requests sent in one write
    (after the frames `before`), the replies (a message, or None for an empty queue) read in
    order, as basic_get reads one."""
    send(channel, before + get_frames(channel.channel_id, names))
    out = []
    for _ in names:
        reply = channel.wait([spec.Basic.GetOk, spec.Basic.GetEmpty], returns_tuple=True)
        out.append(channel._on_get_ok(*reply) if reply and len(reply) > 1 else None)
    return out


class Standby:
    """RabbitMQ: while a worker's queues are empty and a process is free, it is subscribed to
    them on a channel of its own that lets one unacknowledged message through (basic.qos 1,
    global), so the first task to arrive is pushed to it at once instead of waiting for a ring
    and a basic.get round trip. With every queue empty, the first message to arrive is the
    highest waiting. Once a message is taken or no process is free, the subscription ends and
    the worker asks, highest priority first. Subscribing and cancelling send no-wait frames in
    one write; a message pushed before a cancel reached the broker is taken like any other."""

    def __init__(self, channel: Any, deliver: Any) -> None:
        self.channel = channel
        self.channel.basic_qos(0, 1, True)
        self.deliver = deliver
        self._tags: list[str] = []

    def subscribe(self, queues: Sequence[Any]) -> None:
        if self._tags:
            return
        self._tags = [f"taskq-standby-{index}" for index in range(len(queues))]
        for tag in self._tags:
            self.channel.callbacks[tag] = self._pushed
        send(self.channel, method_frames(
            self.channel.channel_id, spec.Basic.Consume, "BssbbbbF",
            [(0, queue.name, tag, False, False, False, True, {})
             for tag, queue in zip(self._tags, queues, strict=True)]))

    def unsubscribe(self) -> None:
        tags, self._tags = self._tags, []
        if tags:  # the callbacks stay: the same tags are used again
            send(self.channel, method_frames(self.channel.channel_id, spec.Basic.Cancel,
                                              "sb", [(tag, True) for tag in tags]))

    def close(self) -> None:
        try:
            self.channel.close()
        except Exception:  # noqa: BLE001 - the connection is gone already
            pass

    def _pushed(self, raw: Any) -> None:
        self.deliver(self.channel.message_to_python(raw))


class RedisPollingConsumer(PollingConsumer):
    """Redis: one script pops the first message in priority order and records it unacked."""

    _keys: tuple[tuple[str, ...], list[str]] = ((), [])  # queue names, and their keys
    poison_key = "taskq:poison"  # where _POP puts the messages it cannot read (set per app)

    def _take(self) -> Any:
        channel: Any = self.channel
        names = tuple(queue.name for queue in self._in_order())
        if self._keys[0] != names:  # the queues change only by remote control
            self._keys = (names, pop_keys(channel, names, self.poison_key))
        while True:
            with self._held_acks() as tags:
                popped = pop_unacked(channel, self._keys[1], tags)
            if popped is None:
                return None
            message = self._read(popped)
            if message is not None:
                return message

    def _read(self, popped: Popped) -> Any:
        """The kombu message popped; None when it is poison (its task failed, it is gone)."""
        channel: Any = self.channel
        if not popped.poison:
            try:
                message = channel.Message(json.loads(popped.raw), channel=channel)
            except Exception as exc:  # noqa: BLE001 - cjson read it, Python cannot: poison
                self._poisoned(popped, exc)
                return None
            # Recorded unacked by the script: only kombu's in-memory bookkeeping is left.
            virtual.QoS.append(channel.qos, message, message.delivery_tag)
            return message
        self._poisoned(popped, ValueError(UNREADABLE))
        return None

    def _poisoned(self, popped: Popped, exc: BaseException) -> None:
        """Fail the task of a message that cannot be read, then drop the message."""
        channel: Any = self.channel
        task_id, queue = read_raw(popped.raw)
        found = Poison(task_id, queue or popped.queue.split(channel.sep)[0], "decoded", exc)
        try:
            if self.on_poison is not None:
                self.on_poison(found)
        except Exception:  # noqa: BLE001 - the backend is down: the message stays where the
            # script put it, parked (settled by the lease rounds) or unacked (restored by them)
            log.exception("could not record poison message %s", task_id)
            return
        pipe = channel.client.pipeline(transaction=False)
        if popped.poison:
            pipe.hdel(self.poison_key, popped.tag)
        else:
            pipe.zrem(channel.unacked_index_key, popped.tag).hdel(channel.unacked_key,
                                                                   popped.tag)
        pipe.execute()

    def _ack_in_memory(self, delivery_tag: Any) -> None:
        channel: Any = self.channel
        virtual.QoS.ack(channel.qos, delivery_tag)  # kombu's in-memory part; the entries
        # in the unacked hash and index go with the next pop

    def _send_acks(self, tags: list[Any]) -> None:
        channel: Any = self.channel
        pipe = channel.client.pipeline(transaction=False)
        for tag in tags:
            pipe.zrem(channel.unacked_index_key, tag).hdel(channel.unacked_key, tag)
        pipe.execute()

    def reject(self, message: Any, reject: Any, requeue: bool) -> None:
        if not requeue:
            reject(requeue=False)
            return
        # kombu requeues at the tail (LPUSH, while messages are taken from the right); a
        # task given back (a lost process, a yield to a higher task) keeps its place instead.
        # (restore_by_tag also removes its unacked entries: only kombu's in-memory ack is left)
        channel: Any = self.channel
        channel.qos.restore_by_tag(message.delivery_tag, leftmost=False)
        self._ack_in_memory(message.delivery_tag)
        message._state = "REJECTED"  # what kombu's Message.reject records


def pop_keys(channel: Any, queues: Sequence[str], poison_key: str = "taskq:poison"
             ) -> list[str]:
    """The keys _POP needs for `queues` (kombu Redis channel), in priority order."""
    keys = [channel.unacked_key, channel.unacked_index_key, poison_key]
    return keys + [channel._q_for_pri(name, step)
                   for name in queues for step in channel.priority_steps]


@dataclass(frozen=True)
class Popped:
    """A message _POP took: its text, its tag (in the unacked hash, or the poison hash when
    the script could not read it) and the key of the queue it came from."""

    raw: bytes
    tag: str
    queue: str
    poison: bool


def pop_unacked(channel: Any, keys: list[str], acks: Sequence[str] = ()) -> Popped | None:
    """The first message of the first non-empty queue of `keys` (from pop_keys), taken out of
    it and recorded unacknowledged (or as poison) in one atomic step (after the entries of the
    messages `acks` are removed); None if all are empty."""
    found = _POP_SCRIPT(keys=keys, args=list(acks), client=channel.client)
    if not found:
        return None
    raw, tag, queue = (item if isinstance(item, bytes) else str(item).encode()
                       for item in found[:3])
    return Popped(raw, tag.decode(errors="replace"), queue.decode(errors="replace"),
                  len(found) > 3)


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
        self._doorbell = self._listen(c)
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

    def _listen(self, c: Any) -> Consumer:
        """Subscribe a queue of this worker's own to the doorbell: a ring wakes the fetcher, so
        an idle worker takes new work at once instead of at its next idle poll."""
        exchange = messages.wake_exchange(c.app.taskq_settings)
        queue = Queue(f"{exchange.name}.{uuid.uuid4().hex}", exchange, durable=False,
                      exclusive=True, auto_delete=True)
        doorbell = Consumer(c.connection.channel(), queues=[queue], no_ack=True,
                            on_message=lambda message: self._rang(c, message.body))
        doorbell.consume()
        return doorbell

    def _flush(self, c: Any) -> None:
        consumer = c.task_consumer
        if isinstance(consumer, PollingConsumer):
            try:
                consumer.flush_acks()
            except Exception:  # noqa: BLE001 - the connection is gone: they are redelivered
                pass

    def _rang(self, c: Any, body: Any) -> None:
        if isinstance(c.task_consumer, PollingConsumer):
            c.task_consumer.announced(messages.rung_queues(body))
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
