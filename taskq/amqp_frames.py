"""AMQP 0-9-1 frames built by hand so that many go out in one write.

py-amqp writes every method (and every message) with a socket write of its own; on a small
machine a write costs ~0.1 ms, as much as the rest of a fetch or a publish (a profile of a
draining worker spent a quarter of its time in them). The frames here are byte for byte the
ones py-amqp writes (tests/unit/test_amqp_frames.py checks them against its frame writer).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
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
    header = (struct.pack(">HHQ", spec.Basic.Publish[0], 0, len(body))
              + message._serialize_properties())
    frames = [method_frames(channel_id, spec.Basic.Publish, "Bssbb",
                            [(0, exchange, routing_key, False, False)]),
              struct.pack(">BHI", 2, channel_id, len(header)) + header + _END]
    piece = frame_max - 8
    for start in range(0, len(body), piece):
        part = body[start:start + piece]
        frames.append(struct.pack(">BHI", 3, channel_id, len(part)) + part + _END)
    return b"".join(frames)


def send(channel: Any, frames: bytes) -> None:
    """Write `frames` on `channel`'s connection at once (py-amqp channel)."""
    connection = channel.connection
    connection.transport.write(frames)
    connection.bytes_sent += 1  # py-amqp's heartbeat check: something was sent
