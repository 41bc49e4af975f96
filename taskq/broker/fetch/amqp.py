"""RabbitMQ's take: basic.get on each queue in priority order, the requests of several
queues in one write, and a standby subscription that pushes the first new task to an idle
worker.

Checked against py-amqp 5.4 (Channel.wait(returns_tuple=), _on_get_ok, callbacks) and
kombu 5.7's pyamqp channel; tests/unit/test_library_internals.py fails when one changes shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from amqp import spec

from taskq.broker.amqp_frames import get_frames, method_frames, send
from taskq.broker.fetch.consumer import PollingConsumer


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
