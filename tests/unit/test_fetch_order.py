"""The order a RabbitMQ worker asks its queues in (taskq/broker/fetch/amqp.py), with a channel of
lists."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from amqp import spec
from kombu import Queue

from taskq.broker.amqp_frames import method_frames
from taskq.broker.fetch.amqp import AmqpPollingConsumer, Standby


class ListChannel:
    """Just enough of a py-amqp channel: basic.get pops from named lists, in the order the
    requests were sent, and each round trip (a write of frames, or a basic_get) is recorded
    with the queues it asked."""

    def __init__(self, **queues: list[str]) -> None:
        self.queues = queues
        self.round_trips: list[list[str]] = []
        self._sent: list[str] = []  # requests not yet answered, in the order sent
        self._taken_from: dict[str, str] = {}

    channel_id = 1

    @property
    def connection(self) -> Any:
        return SimpleNamespace(transport=SimpleNamespace(write=self._write), bytes_sent=0)

    def _write(self, frames: bytes) -> None:
        """One write is one round trip: the queue names of the basic.get frames in it, after
        "ack <tag>" for each basic.ack frame."""
        asked = []
        while frames:
            size = struct.unpack(">I", frames[3:7])[0]
            payload, frames = frames[7:7 + size], frames[8 + size:]
            if struct.unpack(">HH", payload[:4]) == spec.Basic.Ack:
                asked.append(f"ack {struct.unpack('>Q', payload[4:12])[0]}")
            else:
                asked.append(payload[7:7 + payload[6]].decode())
        self.round_trips.append(asked)
        self._sent += [name for name in asked if not name.startswith("ack ")]

    def wait(self, methods: Any, returns_tuple: bool) -> tuple[Any, ...]:
        body = self._pop(self._sent.pop(0))
        return ("",) if body is None else (body, False, "", "", 0, body)

    def basic_get(self, queue: str, no_ack: bool) -> Delivery | None:
        self.round_trips.append([queue])
        body = self._pop(queue)
        return None if body is None else Delivery(body)

    def basic_reject(self, delivery_tag: str, requeue: bool) -> None:
        assert requeue
        self.queues[self._taken_from.pop(delivery_tag)].insert(0, delivery_tag)

    def message_to_python(self, raw: Delivery) -> str:
        return raw.delivery_tag

    def _on_get_ok(self, tag: str, *rest: Any) -> Delivery:
        return Delivery(tag)

    def _pop(self, name: str) -> str | None:
        if not self.queues[name]:
            return None
        body = self.queues[name].pop(0)
        self._taken_from[body] = name
        return body


@dataclass
class Delivery:
    delivery_tag: str  # the body doubles as the tag


def consumer_of(channel: ListChannel) -> AmqpPollingConsumer:
    return AmqpPollingConsumer(channel, queues=[Queue(name) for name in channel.queues],
                               auto_declare=False)


def test_the_first_look_asks_every_queue_in_order_one_at_a_time():
    channel = ListChannel(high=[], normal=[], low=["l1"])
    assert consumer_of(channel)._take() == "l1"
    assert channel.round_trips == [["high"], ["normal"], ["low"]]


def test_while_a_lower_queue_drains_the_higher_ones_are_asked_in_the_same_round_trip():
    # Given work only in the lowest of three queues
    channel = ListChannel(high=[], normal=[], low=["l1", "l2", "l3"])
    consumer = consumer_of(channel)
    # When three messages are taken
    taken = [consumer._take() for _ in range(3)]
    # Then all come from the low queue, and after the first look each take is one round trip
    assert taken == ["l1", "l2", "l3"]
    assert channel.round_trips[3:] == [["high", "normal", "low"]] * 2


def test_a_high_task_queued_while_a_low_queue_drains_is_taken_next_and_the_low_one_goes_back():
    channel = ListChannel(high=[], normal=[], low=["l1", "l2"])
    consumer = consumer_of(channel)
    assert consumer._take() == "l1"
    # When a high task arrives (no ring needed)
    channel.queues["high"].append("h1")
    # Then it is taken next, and the low message asked for with it is back at its queue's head
    assert consumer._take() == "h1"
    assert channel.queues["low"] == ["l2"]
    assert consumer._take() == "l2"


def test_an_idle_worker_asks_every_queue_in_one_round_trip():
    channel = ListChannel(high=[], normal=[], low=[])
    consumer = consumer_of(channel)
    assert consumer._take() is None
    channel.round_trips.clear()
    channel.queues["normal"].append("n1")
    assert consumer._take() == "n1"
    assert channel.round_trips == [["high", "normal", "low"]]


def test_a_ring_naming_a_queue_makes_an_idle_worker_ask_only_down_to_it():
    channel = ListChannel(high=[], normal=[], low=[])
    consumer = consumer_of(channel)
    assert consumer._take() is None
    channel.round_trips.clear()
    # When work is queued in the normal queue and its ring names it
    channel.queues["normal"].append("n1")
    consumer.announced({"normal", "some.other.workers.queue"})
    # Then one round trip asks the high and normal queues, not the low one
    assert consumer._take() == "n1"
    assert channel.round_trips == [["high", "normal"]]


def test_an_ack_goes_out_in_the_same_write_as_the_next_look():
    channel = ListChannel(high=[], low=["l1", "l2"])
    consumer = consumer_of(channel)
    assert consumer._take() == "l1"
    sent_alone: list[bool] = []
    message = SimpleNamespace(channel=channel, delivery_tag=41, acknowledged=False)
    # When the task of the first message is acknowledged
    consumer.acknowledge(message, lambda multiple: sent_alone.append(multiple), False)
    # Then nothing is sent until the next look, which carries the ack before its requests
    assert sent_alone == [] and message._state == "ACK"
    assert consumer._take() == "l2"
    assert channel.round_trips[-1] == ["ack 41", "high", "low"]


def test_held_acks_are_sent_alone_when_no_look_follows():
    channel = ListChannel(high=[], low=[])
    consumer = consumer_of(channel)
    consumer.acknowledge(SimpleNamespace(channel=channel, delivery_tag=7, acknowledged=False),
                         lambda multiple: None, False)
    consumer.flush_acks()
    consumer.flush_acks()
    assert channel.round_trips == [["ack 7"]]


class StandbyChannel:
    """A py-amqp channel as the standby uses it: qos, callbacks, writes, message_to_python."""

    channel_id = 3

    def __init__(self) -> None:
        self.callbacks: dict[str, Any] = {}
        self.writes: list[bytes] = []
        self.qos: tuple[int, int, bool] | None = None
        self.connection = SimpleNamespace(
            transport=SimpleNamespace(write=self.writes.append), bytes_sent=0)

    def basic_qos(self, size: int, count: int, a_global: bool) -> None:
        self.qos = (size, count, a_global)

    def message_to_python(self, raw: str) -> str:
        return f"message {raw}"


def test_an_idle_worker_subscribes_to_every_queue_one_message_at_a_time_in_one_write():
    channel, delivered = StandbyChannel(), []
    standby = Standby(channel, delivered.append)
    # When it subscribes to two queues (twice: the second is a no-op)
    standby.subscribe([Queue("q.high"), Queue("q.low")])
    standby.subscribe([Queue("q.high"), Queue("q.low")])
    # Then one unacknowledged message at a time is let through, and one write asked for both
    assert channel.qos == (0, 1, True)
    assert channel.writes == [method_frames(3, spec.Basic.Consume, "BssbbbbF", [
        (0, "q.high", "taskq-standby-0", False, False, False, True, {}),
        (0, "q.low", "taskq-standby-1", False, False, False, True, {})])]
    # And a message pushed to either is delivered to the worker
    channel.callbacks["taskq-standby-1"]("raw")
    assert delivered == ["message raw"]


def test_the_standby_cancels_every_subscription_in_one_write_once():
    channel = StandbyChannel()
    standby = Standby(channel, lambda message: None)
    standby.subscribe([Queue("q.high"), Queue("q.low")])
    standby.unsubscribe()
    standby.unsubscribe()
    assert channel.writes[1:] == [method_frames(3, spec.Basic.Cancel, "sb", [
        ("taskq-standby-0", True), ("taskq-standby-1", True)])]
