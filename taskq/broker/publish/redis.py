"""Publishing to a Redis broker: kombu's message format LPUSHed in one round trip a batch,
never twice, and settled when its reply is lost."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from taskq.broker import doorbell, messages
from taskq.broker.publish.base import Publisher, Unsent, is_connection_error
from taskq.urls import redis_client

if TYPE_CHECKING:
    from taskq.broker.messages import Template
    from taskq.records import TaskRecord
    from taskq.runtime import Runtime

# Seconds a batch's fence key (below) lives on the broker: far longer than a reply can be late.
FENCE_TTL = 3600

# A batch's messages on a broker apart from the records: pushed only if the batch's fence key
# was not voided, and never twice (a push sent again finds its fence).
# KEYS: the fence, the queues. ARGV: fence ttl, wake channel, wake message, then per queue
# the number of its messages and the messages. Returns 1 if pushed (now or before), 0 if voided.
_PUSH = """
if not redis.call('SET', KEYS[1], 'pushed', 'NX', 'EX', ARGV[1]) then
  return redis.call('GET', KEYS[1]) == 'pushed' and 1 or 0
end
local at = 4
for k = 2, #KEYS do
  local n = tonumber(ARGV[at])
  redis.call('LPUSH', KEYS[k], unpack(ARGV, at + 1, at + n))
  at = at + n + 1
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""


class RedisPublisher(Publisher):
    """LPUSHes kombu's Redis message format: with the records in the same MULTI/EXEC when the
    broker and the records share one Redis database, else after them in one script call.

    A push is never sent twice, and a lost reply is settled instead: a shared batch went
    through whole if its first record exists (else not at all: nothing to remove); a batch
    apart from its records is fenced (_PUSH), and voiding its fence both says whether it went
    through and stops it for good (else its records are removed)."""

    def __init__(self, runtime: Runtime, url: str, shared: bool) -> None:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        super().__init__(runtime)
        self.shared = shared
        # No retries, said here as redis-py's default differs by constructor: a push sent
        # again after a lost reply would queue its messages twice.
        self.client = runtime.redis if shared else redis_client(url, retry=Retry(NoBackoff(), 0))
        self._push = self.client.register_script(_PUSH)
        options = runtime.celery.conf.broker_transport_options or {}
        self.key_prefix = str(options.get("global_keyprefix") or "")
        db = self.client.connection_pool.connection_kwargs.get("db", 0)
        self.wake = doorbell.redis_ring(runtime.settings, db)
        self._encoders: dict[str, messages.RedisEncoder | None] = {}

    def _can(self, template: Template) -> bool:
        # Other priorities live in kombu's priority-step keys: left to kombu.
        return template.priority == 0

    def _build_fast(self, batch: Sequence[TaskRecord]) -> Callable[[], None]:
        write = self._write_shared if self.shared else self._write_apart
        return partial(write, batch, self._payloads(batch))

    def _write_shared(self, batch: Sequence[TaskRecord], payloads: dict[str, list[str]]
                      ) -> None:
        pipe = self.client.pipeline(transaction=True)
        self._stamp(batch)
        self.runtime.store.create_many(batch, pipe)
        for queue, texts in payloads.items():
            pipe.lpush(self.key_prefix + queue, *texts)  # workers RPOP: first in, first out
        pipe.publish(*self.wake)
        try:
            pipe.execute()
        except Exception as exc:
            if not (is_connection_error(exc) and self._exists(batch[0])):
                self.raise_unsent(exc, batch)

    def _exists(self, record: TaskRecord) -> bool:
        """Whether a shared batch went through, its reply lost: its records came with it."""
        try:
            return bool(self.client.exists(self.runtime.store.key(record.id)))
        except Exception as exc:
            if is_connection_error(exc):
                return False
            raise

    def _write_apart(self, batch: Sequence[TaskRecord], payloads: dict[str, list[str]]
                     ) -> None:
        self.write_records(batch)
        fence = f"{self.key_prefix}{self.runtime.settings.key_prefix}:fence:{os.urandom(8).hex()}"
        args: list[Any] = [FENCE_TTL, *self.wake]
        for texts in payloads.values():
            args += [len(texts), *texts]
        try:
            pushed = self._push(keys=[fence, *(self.key_prefix + q for q in payloads)], args=args)
        except Exception as exc:
            if not (is_connection_error(exc) and self._void(fence) is True):
                self.fail(exc, batch)
        else:
            if not pushed:
                raise Unsent("the broker refused the batch", self.forget(batch))

    def _void(self, fence: str) -> bool | None:
        """Stop a batch whose reply was lost from being pushed later; False if it was not
        pushed (nor ever will be), True if it was, None if the broker cannot say."""
        try:
            if self.client.set(fence, "void", nx=True, ex=FENCE_TTL):
                return False
            return self.client.get(fence) == b"pushed"
        except Exception as exc:
            if is_connection_error(exc):
                return None
            raise

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
