"""The doorbell: publishers ring a fanout exchange after queuing work, and every idle worker,
listening on a queue of its own bound to it, fetches at once instead of at its next idle
poll (taskq/broker/fetch/). A ring on RabbitMQ names the queues that got work, so a worker
asks only as far down its queues as the highest of them; on Redis it is an empty message
PUBLISHed as kombu's fanout would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kombu import Consumer, Exchange

    from taskq.config import Settings


def exchange_name(settings: Settings) -> str:
    return f"{settings.key_prefix}.wake"


def exchange(settings: Settings) -> Exchange:
    """The doorbell's fanout exchange (transient: a ring missed is made up by the idle poll)."""
    from kombu import Exchange

    return Exchange(exchange_name(settings), type="fanout", durable=False,
                    delivery_mode="transient")


def body(queues: Iterable[str]) -> bytes:
    """A ring's body on RabbitMQ: the queues that got work."""
    return ",".join(sorted(queues)).encode()


def rung_queues(body: Any) -> set[str]:
    """The queue names of a ring's body (none for an empty one)."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    return {name for name in text.split(",") if name}


def redis_ring(settings: Settings, db: int) -> tuple[str, str]:
    """(channel, message) a Redis publisher PUBLISHes to ring: what kombu's Redis transport
    publishes for an empty message to the fanout exchange, on its topic '/<db>.<exchange>'
    (fanout_prefix)."""
    name = exchange_name(settings)
    return f"/{db}.{name}", json.dumps({
        "body": "", "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {}, "properties": {
            "delivery_info": {"exchange": name, "routing_key": ""},
            "delivery_mode": 1, "delivery_tag": "wake", "body_encoding": "base64"},
    })


def listen(channel: Any, settings: Settings, on_ring: Callable[[Any], None]) -> Consumer:
    """Subscribe a queue of this worker's own to the doorbell on `channel`; `on_ring` gets
    each ring's body."""
    from kombu import Consumer, Queue

    bell = exchange(settings)
    queue = Queue(f"{bell.name}.{uuid.uuid4().hex}", bell, durable=False, exclusive=True,
                  auto_delete=True)
    consumer = Consumer(channel, queues=[queue], no_ack=True,
                        on_message=lambda message: on_ring(message.body))
    consumer.consume()
    return consumer
