"""Redis's take (the embedded broker's too): one script pops the first message in priority
order and records it unacknowledged in the same atomic step, as kombu's Redis QoS would; a
message it cannot read is parked as poison.

Checked against kombu 5.7 (the Redis transport's unacked hash and index, virtual QoS) and
redis-py 8.1 (Script); tests/unit/test_library_internals.py fails when one changes shape.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kombu.transport import virtual
from redis.commands.core import Script

from taskq.broker.fetch.consumer import PollingConsumer
from taskq.broker.poison import UNREADABLE, Poison, read_raw

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
