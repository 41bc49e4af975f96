"""Publishing to RabbitMQ: a batch's messages written as frames on one channel of Celery's
producer pool, without a wait between them (their confirms are awaited by the window).

Checked against kombu 5.7 (the pyamqp channel's prepare_message) and py-amqp 5.4 (channel_id,
frame_max; frames: taskq/broker/amqp_frames.py); tests/unit/test_library_internals.py fails
when one changes shape."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, NamedTuple

from taskq.broker import amqp_frames, doorbell, messages
from taskq.broker.publish.base import Publisher, Session, celery_send
from taskq.urls import mask_url

if TYPE_CHECKING:
    from taskq.broker.messages import Template
    from taskq.records import TaskRecord
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

# Bytes of message frames per socket write (a write per message costs as much as building it).
WRITE_SIZE = 64 * 1024


class AmqpPublisher(Publisher):
    """Publishes on one channel of Celery's producer pool, in confirm mode: a batch's messages
    go out without a wait between them, and a task counts as queued once the broker confirmed
    its message (see taskq/broker/publish/confirms.py)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._wake = doorbell.exchange(runtime.settings)
        # What was declared on which channel: kombu's maybe_declare costs ~0.05 ms a call
        # even when cached, a fifth of a one-at-a-time submit.
        self._declared: tuple[Any, set[str]] = (None, set())
        # Per queue: serializes a message's properties from the template's bytes (None: the
        # template has something it cannot reproduce; py-amqp serializes every message).
        self._encoders: dict[str, amqp_frames.PropertyEncoder | None] = {}

    def session(self) -> Session:
        from taskq.broker.publish.confirms import Window

        return Window(self)

    def _can(self, template: Template) -> bool:
        return True

    def part(self, record: TaskRecord) -> Parts:
        """A task's message made ready: its frames' parts, or Celery's send_task for the tasks
        that take Celery's path (see Publisher._fast)."""
        return self._parts(record) if self._fast(record) else Parts.celery(record)

    def publish(self, producer: Any, todo: deque[Parts], confirms: amqp_frames.Confirms,
                on_wire: dict[int, Parts]) -> None:
        """Publish what is in `todo` on the producer's channel, each message taken off it and
        put `on_wire` under its delivery tag before it is written, the frames in writes of
        about WRITE_SIZE bytes; then ring the doorbell."""
        queues = {part.record.queue: part.record for part in todo}
        for first in queues.values():
            self._declare(producer, first.queue, *self.template(first).declare)
        self._declare(producer, self._wake.name, self._wake)
        channel = producer.channel
        pending: list[bytes] = []
        size = 0
        while todo:
            part = todo.popleft()
            if part.slow:
                amqp_frames.send(channel, b"".join(pending))
                pending, size = [], 0
                on_wire[confirms.last + 1] = part  # send_task's publish is counted
                celery_send(self.runtime, part.record, producer)
                continue
            on_wire[confirms.take()] = part
            pending.append(self._frames(channel, part))
            size += len(pending[-1])
            if size >= WRITE_SIZE:
                amqp_frames.send(channel, b"".join(pending))
                pending, size = [], 0
        confirms.take()  # the ring's
        amqp_frames.send(channel, b"".join(pending) + self._ring_frames(channel, set(queues)))

    def refusal(self, nacked: int, unanswered: int, timeout: float) -> str:
        """What to tell of messages the broker refused or did not confirm in time."""
        said = []
        if nacked:
            said.append(f"refused {_messages(nacked)}")
        if unanswered:
            said.append(f"did not confirm {_messages(unanswered)} within {timeout:g} s")
        return f"the broker at {mask_url(self.runtime.broker_url)} {' and '.join(said)}"

    def _declare(self, producer: Any, name: str, *entities: Any) -> None:
        channel, done = self._declared
        if channel is not producer.channel:
            channel, done = self._declared = (producer.channel, set())
        if name not in done:
            for entity in entities:
                producer.maybe_declare(entity)
            done.add(name)

    def _ring_frames(self, channel: Any, queues: set[str]) -> bytes:
        """Wake idle workers: a transient message naming the batch's queues to the doorbell,
        after the batch on the same channel (so after its messages are routed)."""
        message = channel.prepare_message(doorbell.body(queues), 0, None, None, None, None)
        return amqp_frames.publish_frames(channel.channel_id, channel.connection.frame_max,
                                          self._wake.name, "", message)

    def _parts(self, record: TaskRecord) -> Parts:
        """A message's body and properties; serialized here when its queue's encoder is
        known (it is made when the queue's first message is written)."""
        template = self.template(record)
        body, headers, properties = messages.amqp_parts(template, record.id, record.params)
        encoder = self._encoders.get(record.queue)
        encoded = encoder.encode(headers, properties) if encoder is not None else None
        return Parts(record, template, body, headers, properties, encoded)

    def _frames(self, channel: Any, part: Parts) -> bytes:
        template = part.template
        assert template is not None
        encoded = part.encoded
        if encoded is None and (encoder := self._encoders.get(part.record.queue)) is not None:
            encoded = encoder.encode(part.headers, part.properties)
        if encoded is None:  # the first message of this queue, or one py-amqp must serialize
            message = channel.prepare_message(part.body, template.priority, "application/json",
                                              "utf-8", part.headers, part.properties)
            if part.record.queue not in self._encoders:
                self._encoders[part.record.queue] = _encoder_for(message)
            return amqp_frames.publish_frames(channel.channel_id, channel.connection.frame_max,
                                              template.exchange, template.routing_key, message)
        return amqp_frames.content_frames(
            channel.channel_id, channel.connection.frame_max, template.exchange,
            template.routing_key, part.body, encoded)


class Parts(NamedTuple):
    """One message made ready in a batch's build step (slow: Celery's send_task makes it)."""

    record: TaskRecord
    template: Template | None
    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]
    encoded: bytes | None  # the serialized properties, when the encoder was known
    slow: bool = False

    @classmethod
    def celery(cls, record: TaskRecord) -> Parts:
        return cls(record, None, b"", {}, {}, None, slow=True)


def _encoder_for(message: Any) -> amqp_frames.PropertyEncoder | None:
    """A property encoder for messages like `message` that differ in their task id (the id,
    root_id and correlation_id) and kwargsrepr; None unless it reproduces py-amqp's bytes."""
    try:
        encoder = amqp_frames.PropertyEncoder(message, VARYING_HEADERS, ("correlation_id",))
        headers = message.properties["application_headers"]
        same = encoder.encode(headers, message.properties) == message._serialize_properties()
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return encoder if same and all(isinstance(headers.get(name), str)
                                   for name in VARYING_HEADERS) else None


VARYING_HEADERS = ("id", "root_id", "kwargsrepr")


def _messages(n: int) -> str:
    return f"{n} message{'s' if n != 1 else ''}"
