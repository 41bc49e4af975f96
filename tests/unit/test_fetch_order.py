"""The order a RabbitMQ worker asks its queues in (taskq/fetch.py), with a channel of lists."""

from __future__ import annotations

from kombu import Queue

from taskq.fetch import AmqpPollingConsumer


class ListChannel:
    """Just enough of an AMQP channel: basic_get pops from named lists and counts the asks."""

    def __init__(self, **queues: list[str]) -> None:
        self.queues = queues
        self.asked: list[str] = []

    def basic_get(self, queue: str, no_ack: bool) -> str | None:
        self.asked.append(queue)
        return self.queues[queue].pop(0) if self.queues[queue] else None

    def message_to_python(self, raw: str) -> str:
        return raw


def consumer_of(channel: ListChannel) -> AmqpPollingConsumer:
    return AmqpPollingConsumer(channel, queues=[Queue(name) for name in channel.queues],
                               auto_declare=False)


def test_queues_found_empty_are_not_asked_again_while_a_lower_one_drains():
    # Given work only in the lowest of three queues
    channel = ListChannel(high=[], normal=[], low=["l1", "l2", "l3"])
    consumer = consumer_of(channel)
    # When three messages are taken
    taken = [consumer._take() for _ in range(3)]
    # Then all come from the low queue, and the empty ones were asked once
    assert taken == ["l1", "l2", "l3"]
    assert channel.asked == ["high", "normal", "low", "low", "low"]


def test_a_ring_makes_the_next_take_ask_from_the_highest_queue_again():
    channel = ListChannel(high=[], normal=[], low=["l1", "l2"])
    consumer = consumer_of(channel)
    assert consumer._take() == "l1"
    # When a high task arrives and rings
    channel.queues["high"].append("h1")
    consumer.forget()
    # Then it is taken next
    assert consumer._take() == "h1"


def test_work_queued_in_a_skipped_queue_without_a_ring_is_still_found():
    channel = ListChannel(high=[], normal=[], low=["l1"])
    consumer = consumer_of(channel)
    assert consumer._take() == "l1"
    # When a message lands in a skipped queue without ringing, and the lower ones are empty
    channel.queues["normal"].append("n1")
    # Then the take still finds it
    assert consumer._take() == "n1"
    assert consumer._take() is None
