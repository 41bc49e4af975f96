"""AMQP 0-9-1 frames built by hand so that many go out in one write.

py-amqp writes every method (and every message) with a socket write of its own; on a small
machine a write costs ~0.1 ms, as much as the rest of a fetch or a publish (a profile of a
draining worker spent a quarter of its time in them). The frames here are byte for byte the
ones py-amqp writes (tests/unit/test_amqp_frames.py checks them against its frame writer).
"""

from __future__ import annotations

import functools
import struct
import time
import weakref
from collections.abc import Sequence
from functools import partial
from typing import Any

from amqp import spec
from amqp.serialization import dumps

_END = b"\xce"


def method_frames(channel_id: int, method: tuple[int, int], argsig: str,
                  each: Sequence[tuple[Any, ...]]) -> bytes:
    """One method frame (no content) of `method` for each argument tuple."""
    frames = []
    for args in each:
        payload = struct.pack(">HH", *method) + dumps(argsig, args)
        frames.append(struct.pack(">BHI", 1, channel_id, len(payload)) + payload + _END)
    return b"".join(frames)


def get_frames(channel_id: int, names: Sequence[str]) -> bytes:
    """basic.get (acknowledged later) on each queue of `names`."""
    return method_frames(channel_id, spec.Basic.Get, "Bsb", [(0, name, False) for name in names])


def publish_frames(channel_id: int, frame_max: int, exchange: str, routing_key: str,
                   message: Any) -> bytes:
    """basic.publish of `message` (a py-amqp Message, as channel.prepare_message makes it):
    the method frame, the content header with its properties, the body in frame_max pieces."""
    body = message.body
    if isinstance(body, str):
        body = body.encode(message.properties.setdefault("content_encoding", "utf-8"))
    return content_frames(channel_id, frame_max, exchange, routing_key, body,
                          message._serialize_properties())


def content_frames(channel_id: int, frame_max: int, exchange: str, routing_key: str,
                   body: bytes, properties: bytes) -> bytes:
    """basic.publish of `body` with serialized `properties` (flags and values)."""
    header = struct.pack(">HHQ", spec.Basic.Publish[0], 0, len(body)) + properties
    frames = [_publish_method(channel_id, exchange, routing_key),
              struct.pack(">BHI", 2, channel_id, len(header)) + header + _END]
    piece = frame_max - 8
    for start in range(0, len(body), piece):
        part = body[start:start + piece]
        frames.append(struct.pack(">BHI", 3, channel_id, len(part)) + part + _END)
    return b"".join(frames)


@functools.lru_cache(maxsize=256)
def _publish_method(channel_id: int, exchange: str, routing_key: str) -> bytes:
    """The basic.publish method frame: the same for every message to one routing key."""
    return method_frames(channel_id, spec.Basic.Publish, "Bssbb",
                         [(0, exchange, routing_key, False, False)])


class PropertyEncoder:
    """Serializes message properties as py-amqp's Message._serialize_properties does, for
    messages that differ from a sample only in some string headers and string properties: the
    bytes that do not change are serialized once. (py-amqp serializes a Celery task's ~20
    headers in Python for every message: most of the cost of publishing one.)"""

    def __init__(self, sample: Any, headers: Sequence[str], properties: Sequence[str]) -> None:
        """`sample`: a py-amqp Message; `headers`, `properties`: the names that vary."""
        props = sample.properties
        present = [(name, kind) for name, kind in sample.PROPERTIES if props.get(name) is not None]
        flags = 0
        for index, (name, _kind) in enumerate(sample.PROPERTIES):
            if props.get(name) is not None:
                flags |= 1 << (15 - index)
        if len(sample.PROPERTIES) > 15 or any(kind == "bit" for _, kind in present):
            raise ValueError("properties beyond the first flag word")
        self._pieces: list[bytes | str | None] = [struct.pack(">H", flags)]
        # str: a varying property; None: where the headers table goes. A varying header's
        # table entry is its constant name and type, then its value (a str in _table).
        self._table: list[bytes | str] = [b""]
        for name, kind in present:
            if name == "application_headers":
                self._pieces.append(None)
                for key, value in props[name].items():
                    if key in headers:
                        raw = key.encode()
                        self._table[-1] += struct.pack("B", len(raw)) + raw + b"S"
                        self._table += (key, b"")
                    else:
                        self._table[-1] += dumps("F", [{key: value}])[4:]
            elif name in properties:
                self._pieces += (name, b"")
            else:
                self._pieces.append(dumps(kind, [props[name]]))

    def encode(self, headers: dict[str, str], properties: dict[str, str]) -> bytes:
        items: list[bytes] = []
        for entry in self._table:
            if isinstance(entry, bytes):
                items.append(entry)
            else:
                raw = headers[entry].encode()
                items += (_LONG(len(raw)), raw)
        table = b"".join(items)
        out: list[bytes] = []
        for piece in self._pieces:
            if piece is None:
                out += (_LONG(len(table)), table)
            elif isinstance(piece, bytes):
                out.append(piece)
            else:
                raw = properties[piece].encode()
                out += (_SHORT(len(raw)), raw)
        return b"".join(out)


_LONG = struct.Struct(">I").pack
_SHORT = struct.Struct("B").pack


def send(channel: Any, frames: bytes) -> None:
    """Write `frames` on `channel`'s connection at once (py-amqp channel)."""
    connection = channel.connection
    connection.transport.write(frames)
    connection.bytes_sent += 1  # py-amqp's heartbeat check: something was sent


class Confirms:
    """Publisher confirms on one py-amqp channel, for messages written as frames by hand.

    py-amqp confirms only what its own basic_publish_confirm sends, one message and one wait
    at a time. Here the delivery tags are counted as RabbitMQ counts them (from 1, one a
    basic.publish on the channel after confirm.select): take() for frames written by hand,
    and py-amqp's basic_publish is wrapped to count what Celery or kombu publish on the same
    channel (kombu's producer pool lends it to them too). wait() reads the acks off the
    channel. Checked against py-amqp 5.4 (tests/unit/test_amqp_frames.py).
    """

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self._next = 1  # the tag of the channel's next publish
        self._first = self._last = self._low = 0  # the tags being waited for
        self.settled: dict[int, bool] = {}  # of those: acked (True) or nacked (False)
        channel.events["basic_ack"].add(partial(self._settle, True))
        channel.events["basic_nack"].add(partial(self._settle, False))
        publish = channel.basic_publish

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.take()
            return publish(*args, **kwargs)

        channel.basic_publish = counted
        self._select()

    def _select(self) -> None:
        self.channel.confirm_select()
        self.channel._confirm_selected = True  # py-amqp's flag: its confirm path selects no more
        self._next = 1

    def begin(self) -> None:
        """Wait for the channel's publishes from now on, not for those before."""
        if not self.channel._confirm_selected:  # py-amqp revived the channel: tags restart
            self._select()
        self._first, self._last = self._next, self._next - 1
        self._low = self._first  # the first tag not yet settled
        self.settled = {}

    def take(self) -> int:
        """The tag of the next publish, which wait() will wait for."""
        self._last = tag = self._next
        self._next += 1
        return tag

    @property
    def last(self) -> int:
        """The tag of the channel's last publish."""
        return self._next - 1

    def wait(self, timeout: float, upto: int | None = None) -> None:
        """Read acks into `settled` ({tag: True if acked, False if nacked}) until every awaited
        publish (up to tag `upto` when given) is settled or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        connection = self.channel.connection
        while not self._settled_up_to(self._last if upto is None else upto):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                connection.drain_events(timeout=left)
            except TimeoutError:
                break

    def _settled_up_to(self, tag: int) -> bool:
        while self._low in self.settled:
            self._low += 1
        return self._low > tag

    def _settle(self, ok: bool, tag: int, multiple: bool) -> None:
        """basic.ack or basic.nack: of `tag`, or with `multiple` of every tag up to it."""
        for each in range(self._first if multiple else max(tag, self._first), tag + 1):
            self.settled.setdefault(each, ok)


_confirms: weakref.WeakKeyDictionary[Any, Confirms] = weakref.WeakKeyDictionary()


def confirms(channel: Any) -> Confirms:
    """`channel`'s Confirms, made (and the channel put in confirm mode, a round trip) once."""
    if channel not in _confirms:
        _confirms[channel] = Confirms(channel)
    return _confirms[channel]
