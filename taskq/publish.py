"""Writes records and publishes their messages in batches: Redis pipelines, or one AMQP channel."""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from taskq import amqp_frames, errors, messages, topology
from taskq.config import mask_url
from taskq.errors import BrokerUnavailable
from taskq.runtime import redis_client, redis_client_url

if TYPE_CHECKING:
    import redis

    from taskq.messages import Template
    from taskq.records import TaskRecord
    from taskq.runtime import Runtime


class Publisher:
    """Sends batches of prepared records: each record is written before its message, and a
    batch whose messages cannot be published leaves no record behind."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._templates: dict[str, Template] = {}

    def send(self, batch: Sequence[TaskRecord]) -> None:
        """Record and publish `batch`; BrokerUnavailable if the broker cannot take it."""
        self.build(batch)()

    def build(self, batch: Sequence[TaskRecord]) -> Callable[[], None]:
        """Do the CPU work of sending `batch` now (messages and record writes made ready)
        and return the step that writes them, records before messages: send_all builds a
        batch while the one before it is being written."""
        fast: list[TaskRecord] = []
        slow: list[TaskRecord] = []
        for record in batch:
            (fast if self._fast(record) else slow).append(record)
        steps = [self._build_fast(fast)] if fast else []
        if slow:
            steps.append(partial(self._send_each, slow))
        return partial(_run_each, steps)

    def template(self, record: TaskRecord) -> Template:
        found = self._templates.get(record.queue)
        if found is None:
            found = messages.capture(self.runtime.celery, topology.task_name(record.type),
                                     record.queue)
            self._templates[record.queue] = found
        return found

    def _fast(self, record: TaskRecord) -> bool:
        # Delayed tasks take Celery's own path: it may route them to a delay exchange.
        template = self.template(record)
        return record.eta is None and template.serializer == "json" and self._can(template)

    def _can(self, template: Template) -> bool:
        return False

    def _build_fast(self, batch: Sequence[TaskRecord]) -> Callable[[], None]:
        raise NotImplementedError

    def _send_each(self, batch: Sequence[TaskRecord]) -> None:
        """Celery's send_task per message, after the batch's records are written."""
        self._write_records(self._records_pipe(batch))
        sent = 0
        try:
            for record in batch:
                delay = max(0.0, (record.eta or 0) - (record.submitted_at or 0))
                celery_send(self.runtime, record, delay)
                sent += 1
        except BaseException as exc:
            self._forget(batch[sent:])
            raise self._translated(exc) from None

    def _records_pipe(self, batch: Sequence[TaskRecord]) -> Any:
        store = self.runtime.store
        pipe = store.client.pipeline(transaction=False)
        store.create_many(batch, pipe)
        return pipe

    def _write_records(self, pipe: Any) -> None:
        with self.runtime.store.reachable():
            pipe.execute()

    def _forget(self, batch: Sequence[TaskRecord]) -> None:
        self.runtime.store.delete_many([record.id for record in batch])

    def _translated(self, exc: BaseException) -> BaseException:
        return broker_unavailable(self.runtime, exc) or exc


class RedisPublisher(Publisher):
    """LPUSHes kombu's Redis message format; with the records in the same MULTI/EXEC when the
    broker and the records share one Redis database."""

    def __init__(self, runtime: Runtime, client: redis.Redis, shared: bool) -> None:
        super().__init__(runtime)
        self.client = client
        self.shared = shared
        options = runtime.celery.conf.broker_transport_options or {}
        self.key_prefix = str(options.get("global_keyprefix") or "")
        # kombu publishes to a fanout exchange on topic '/<db>.<exchange>' (fanout_prefix).
        exchange = topology.wake_exchange(runtime.settings)
        db = client.connection_pool.connection_kwargs.get("db", 0)
        self.wake = (f"/{db}.{exchange}", messages.redis_wake(exchange))
        self._encoders: dict[str, messages.RedisEncoder | None] = {}

    def _can(self, template: Template) -> bool:
        # Other priorities live in kombu's priority-step keys: left to kombu.
        return template.priority == 0

    def _build_fast(self, batch: Sequence[TaskRecord]) -> Callable[[], None]:
        records = None if self.shared else self._records_pipe(batch)
        pipe = self.client.pipeline(transaction=self.shared)
        if self.shared:
            self.runtime.store.create_many(batch, pipe)
        for queue, payloads in self._payloads(batch).items():
            pipe.lpush(self.key_prefix + queue, *payloads)  # workers RPOP: first in, first out
        pipe.publish(*self.wake)
        return partial(self._write_fast, batch, records, pipe)

    def _write_fast(self, batch: Sequence[TaskRecord], records: Any, pipe: Any) -> None:
        if records is not None:
            self._write_records(records)
        try:
            pipe.execute()
        except Exception as exc:
            if records is not None:
                self._forget(batch)
            raise self._translated(exc) from None

    def _payloads(self, batch: Sequence[TaskRecord]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for record in batch:
            template = self.template(record)
            encoder = self._encoder(record)
            out[template.routing_key].append(
                encoder.encode(record.id, record.params) if encoder is not None
                else messages.redis_payload(template, record.id, record.params))
        return out

    def _encoder(self, record: TaskRecord) -> messages.RedisEncoder | None:
        """The queue's encoder, made with its first message; None if it would not write
        exactly what redis_payload writes."""
        if record.queue not in self._encoders:
            encoder = messages.RedisEncoder(self.template(record))
            self._encoders[record.queue] = (
                encoder if encoder.reproduces(record.id, record.params) else None)
        return self._encoders[record.queue]


# Bytes of message frames per socket write on RabbitMQ (a write per message costs as much as
# building it).
WRITE_SIZE = 64 * 1024


class AmqpPublisher(Publisher):
    """Publishes on one channel of Celery's producer pool, without waiting per message."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._wake = messages.wake_exchange(runtime.settings)
        # What was declared on which channel: kombu's maybe_declare costs ~0.05 ms a call
        # even when cached, a fifth of a one-at-a-time submit.
        self._declared: tuple[Any, set[str]] = (None, set())
        # Per queue: serializes a message's properties from the template's bytes (None: the
        # template has something it cannot reproduce; py-amqp serializes every message).
        self._encoders: dict[str, amqp_frames.PropertyEncoder | None] = {}

    def _can(self, template: Template) -> bool:
        return True

    def _build_fast(self, batch: Sequence[TaskRecord]) -> Callable[[], None]:
        return partial(self._write_fast, batch, self._records_pipe(batch),
                       [self._parts(record) for record in batch])

    def _write_fast(self, batch: Sequence[TaskRecord], records: Any,
                    parts: Sequence[_Parts]) -> None:
        self._write_records(records)
        sent = [0]
        app = self.runtime.celery
        try:
            with app.producer_or_acquire() as producer:
                # As send_task does: a lost connection is re-made and the rest of the batch
                # published again, under the app's task_publish_retry_policy.
                ensured = producer.connection.ensure(
                    producer, self._publish_rest, **app.conf.task_publish_retry_policy)
                ensured(producer, parts, sent)
        except BaseException as exc:
            self._forget(batch[sent[0]:])
            raise self._translated(exc) from None

    def _publish_rest(self, producer: Any, parts: Sequence[_Parts], sent: list[int]) -> None:
        """Declare the batch's queues, then publish what is not yet sent, counting it: the
        messages' frames go out in writes of about WRITE_SIZE bytes, the ring after the last."""
        for first in {part.record.queue: part.record for part in parts}.values():
            self._declare(producer, first.queue, *self.template(first).declare)
        self._declare(producer, self._wake.name, self._wake)
        channel = producer.channel
        pending: list[bytes] = []
        size = 0
        for part in parts[sent[0]:]:
            pending.append(self._frames(channel, part))
            size += len(pending[-1])
            if size >= WRITE_SIZE:
                amqp_frames.send(channel, b"".join(pending))
                sent[0] += len(pending)
                pending, size = [], 0
        ring = self._ring_frames(channel, {part.record.queue for part in parts})
        amqp_frames.send(channel, b"".join(pending) + ring)
        sent[0] += len(pending)

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
        message = channel.prepare_message(messages.wake_body(queues), 0, None, None, None, None)
        return amqp_frames.publish_frames(channel.channel_id, channel.connection.frame_max,
                                          self._wake.name, "", message)

    def _parts(self, record: TaskRecord) -> _Parts:
        """A message's body and properties; serialized here when its queue's encoder is
        known (it is made when the queue's first message is written)."""
        template = self.template(record)
        body, headers, properties = messages.amqp_parts(template, record.id, record.params)
        encoder = self._encoders.get(record.queue)
        encoded = encoder.encode(headers, properties) if encoder is not None else None
        return _Parts(record, template, body, headers, properties, encoded)

    def _frames(self, channel: Any, part: _Parts) -> bytes:
        template = part.template
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


class _Parts(NamedTuple):
    """One message made ready in a batch's build step."""

    record: TaskRecord
    template: Template
    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]
    encoded: bytes | None  # the serialized properties, when the encoder was known


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


class CeleryPublisher(Publisher):
    """Any other transport: Celery's send_task for every message."""


_publishers: weakref.WeakKeyDictionary[Runtime, Publisher] = weakref.WeakKeyDictionary()


def publisher(runtime: Runtime) -> Publisher:
    """The runtime's publisher, made once (it keeps the message templates it captured)."""
    found = _publishers.get(runtime)
    if found is None:
        found = _publishers[runtime] = _make(runtime)
    return found


def _make(runtime: Runtime) -> Publisher:
    url = runtime.broker_url
    if url.startswith(("amqp://", "amqps://", "pyamqp://")):
        return AmqpPublisher(runtime)
    redis_url = redis_client_url(url)
    if redis_url is None:
        return CeleryPublisher(runtime)
    if redis_url == redis_client_url(runtime.backend_url):
        return RedisPublisher(runtime, runtime.redis, shared=True)
    return RedisPublisher(runtime, redis_client(redis_url), shared=False)


def celery_send(runtime: Runtime, record: TaskRecord, delay: float) -> None:
    """Celery's own send_task: the path for delayed tasks and for brokers without a fast one."""
    runtime.celery.send_task(
        topology.task_name(record.type), kwargs=record.params, task_id=record.id,
        queue=record.queue, routing_key=record.queue, countdown=delay or None,
    )


def broker_unavailable(runtime: Runtime, exc: BaseException) -> BrokerUnavailable | None:
    """The error to show for a failed publish, if it was a connection failure."""
    if isinstance(exc, BrokerUnavailable):
        return exc
    if isinstance(exc, Exception) and _is_connection_error(exc):
        return BrokerUnavailable("broker", mask_url(runtime.broker_url) or "", errors.reason(exc))
    return None


def _is_connection_error(exc: Exception) -> bool:
    import redis
    from amqp.exceptions import AccessRefused
    from amqp.exceptions import ConnectionError as AmqpConnectionError
    from kombu.exceptions import OperationalError

    # A refused login (AccessRefused) or vhost (NotAllowed, an AMQP ConnectionError) too.
    return isinstance(exc, OperationalError | OSError | ConnectionError | redis.ConnectionError
                      | redis.TimeoutError | AmqpConnectionError | AccessRefused)


def send_all(runtime: Runtime, records: Sequence[TaskRecord], batch_size: int = 500,
             progress: Callable[[int], None] | None = None) -> None:
    """Record and publish `records` in batches, in order; `progress(n)` after each batch of
    n. While a batch is written (by one writer thread, waiting on the servers most of the
    time) the next is built; a failed write stops the rest, and the batch built after it is
    dropped before any of it was written."""
    sender = publisher(runtime)
    batches = [records[start:start + batch_size]
               for start in range(0, len(records), batch_size)]
    if len(batches) == 1:  # nothing to overlap: no thread (the sidecar's single submit)
        sender.send(batches[0])
        if progress is not None:
            progress(len(batches[0]))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskq-publish") as writer:
        writing: tuple[Future[None], int] | None = None
        for batch in batches:
            write = sender.build(batch)
            if writing is not None:
                _finished(*writing, progress)
            writing = (writer.submit(write), len(batch))
        if writing is not None:
            _finished(*writing, progress)


def _finished(write: Future[None], size: int, progress: Callable[[int], None] | None) -> None:
    write.result()
    if progress is not None:
        progress(size)


def _run_each(steps: Sequence[Callable[[], None]]) -> None:
    for step in steps:
        step()

