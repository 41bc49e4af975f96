"""Celery task messages built once per batch from what send_task itself would publish.

Checked against Celery 5.7 (send_task's producer.publish call, amqp.kwargsrepr_maxsize) and
kombu 5.7 (the Redis transport's message format); tests/unit/test_library_internals.py fails
when one changes shape."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from taskq import json_fast
from taskq.random_hex import hex32

if TYPE_CHECKING:
    from celery import Celery


# Stands for the task id in a captured template; replaced in every message built from it.
PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Template:
    """One send_task call as Celery would publish it, minus the id and the keyword arguments."""

    exchange: str
    routing_key: str
    priority: int
    headers: dict[str, Any]
    properties: dict[str, Any]
    embed: dict[str, Any]
    serializer: str
    declare: tuple[Any, ...]
    kwargsrepr_maxsize: int

    @cached_property
    def embed_json(self) -> str:
        return json.dumps(self.embed)


class _Connection:
    @contextmanager
    def _reraise_as_library_errors(self) -> Iterator[None]:
        yield


class _CapturingProducer:
    """Takes the place of a kombu Producer in send_task: keeps the publish call, sends nothing."""

    connection = _Connection()

    def __init__(self) -> None:
        self.body: Any = None
        self.options: dict[str, Any] = {}

    def publish(self, body: Any, **options: Any) -> None:
        self.body, self.options = body, options


def capture(app: Celery, task_name: str, queue: str) -> Template:
    """What `app.send_task(task_name, queue=queue)` publishes; does no I/O.

    Celery's own code builds the headers and properties (protocol 2), so whatever it or
    taskq's configuration adds to a message is in the template too.
    """
    from kombu.entity import DELIVERY_MODES

    producer = _CapturingProducer()
    app.send_task(task_name, kwargs={}, task_id=PLACEHOLDER_ID, queue=queue,
                  routing_key=queue, producer=producer, taskq_raw=True)
    sent = dict(producer.options)
    args, _, embed = producer.body
    if args:
        raise ValueError("bulk messages carry keyword arguments only")
    exchange = sent.pop("exchange")
    exchange_name = getattr(exchange, "name", exchange) or ""
    routing_key = sent.pop("routing_key")
    headers = sent.pop("headers")
    for name in ("retry", "retry_policy", "compression", "timeout", "confirm_timeout",
                 "expiration"):
        sent.pop(name, None)
    mode = sent.get("delivery_mode")
    if mode is not None and not isinstance(mode, int):  # as kombu's Producer.publish does
        sent["delivery_mode"] = DELIVERY_MODES[mode]
    return Template(
        exchange=exchange_name, routing_key=routing_key,
        priority=int(sent.pop("priority", 0) or 0), headers=headers,
        properties={k: v for k, v in sent.items() if k not in ("serializer", "declare")},
        embed=embed, serializer=sent.get("serializer") or "json",
        declare=tuple(sent.get("declare") or ()),
        kwargsrepr_maxsize=app.amqp.kwargsrepr_maxsize,
    )


def kwargs_repr(template: Template, kwargs: dict[str, Any]) -> str:
    """The kwargsrepr header as send_task writes it (what Flower and worker logs show)."""
    if all(map(_plain, kwargs.values())):
        # saferepr (about 12 us) only differs from repr for long or deeply nested values.
        text = repr(kwargs)
        if len(text) <= template.kwargsrepr_maxsize:
            return text
    from celery.utils.saferepr import saferepr

    return saferepr(kwargs, template.kwargsrepr_maxsize)


_SCALARS = frozenset({str, int, float, bool, type(None)})
_SHORT = 64


def _plain(value: Any) -> bool:
    """True when repr(value) is what saferepr writes: scalars, short lists of them, and
    strings that repr does not escape (saferepr leaves newlines and quotes raw)."""
    kind = type(value)
    if kind is str:
        return value.isprintable() and "'" not in value and "\\" not in value
    if kind is list:
        return len(value) <= _SHORT and all(type(item) is not list and _plain(item)
                                             for item in value)
    return kind in _SCALARS


def headers_for(template: Template, task_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    return _headers(template, task_id, kwargs_repr(template, kwargs))


def _headers(template: Template, task_id: str, kwargsrepr: str) -> dict[str, Any]:
    return {**template.headers, "id": task_id, "root_id": task_id, "kwargsrepr": kwargsrepr}


def body_for(template: Template, kwargs: dict[str, Any]) -> bytes:
    """The serialized protocol-2 body: (args, kwargs, embed), as json.dumps writes the list
    (its constant embed encoded once per template)."""
    return f"[[], {json_fast.spaced(kwargs)}, {template.embed_json}]".encode()


def redis_payload(template: Template, task_id: str, kwargs: dict[str, Any]) -> str:
    """The JSON string kombu's Redis transport LPUSHes for this task (body base64-encoded)."""
    return json.dumps(_redis_message(
        template, base64.b64encode(body_for(template, kwargs)).decode(), task_id,
        kwargs_repr(template, kwargs), delivery_tag()))


def _redis_message(template: Template, body: str, task_id: str, kwargsrepr: str, tag: str
                   ) -> dict[str, Any]:
    properties = {
        **template.properties, "correlation_id": task_id, "priority": template.priority,
        "delivery_info": {"exchange": template.exchange, "routing_key": template.routing_key},
        "body_encoding": "base64", "delivery_tag": tag,
    }
    return {"body": body, "content-encoding": "utf-8", "content-type": "application/json",
            "headers": _headers(template, task_id, kwargsrepr), "properties": properties}


_FILLED = ("body", "id", "kwargsrepr", "tag")  # what RedisEncoder writes per task
_HOLE = "@@taskq-hole-{}@@"
_HOLES = re.compile('"' + _HOLE.format("(" + "|".join(_FILLED) + ")") + '"')


class RedisEncoder:
    """redis_payload's text for one template, with its constant parts encoded once: per task
    only the body, the task id, kwargsrepr and the delivery tag are (a whole message cost
    ~30 us to encode, a fifth of a bulk submit's CPU)."""

    def __init__(self, template: Template) -> None:
        self.template = template
        text = json.dumps(_redis_message(template, *map(_HOLE.format, _FILLED)))
        parts = _HOLES.split(text)
        # One str.format call a message: the constant parts, braces escaped, around the holes.
        pieces = [piece.replace("{", "{{").replace("}", "}}") for piece in parts[0::2]]
        holes = [f"{{{_FILLED.index(name)}}}" for name in parts[1::2]]
        self._format = "".join(p + h for p, h in zip(pieces, [*holes, ""], strict=True))

    def encode(self, task_id: str, kwargs: dict[str, Any]) -> str:
        return self._fill(*self._values(task_id, kwargs, delivery_tag()))

    def reproduces(self, task_id: str, kwargs: dict[str, Any]) -> bool:
        """True if it writes exactly what redis_payload writes for this task."""
        values = self._values(task_id, kwargs, "0" * 32)
        return self._fill(*values) == json.dumps(_redis_message(self.template, *values))

    def _values(self, task_id: str, kwargs: dict[str, Any], tag: str
                ) -> tuple[str, str, str, str]:
        return (base64.b64encode(body_for(self.template, kwargs)).decode(), task_id,
                kwargs_repr(self.template, kwargs), tag)

    def _fill(self, body: str, task_id: str, kwargsrepr: str, tag: str) -> str:
        # json.dumps of a string is encode_basestring_ascii (its C function, called direct).
        return self._format.format(encode_basestring_ascii(body), encode_basestring_ascii(task_id),
                                   encode_basestring_ascii(kwargsrepr),
                                   encode_basestring_ascii(tag))


def delivery_tag() -> str:
    """A unique tag for a Redis message (kombu's key in its unacked hash): random, as kombu's
    uuid4, at a sixth of its cost."""
    return hex32()


def amqp_parts(template: Template, task_id: str, kwargs: dict[str, Any]
               ) -> tuple[bytes, dict[str, Any], dict[str, Any]]:
    """(body, headers, properties) for an AMQP channel's prepare_message."""
    properties = {**template.properties, "correlation_id": task_id}
    return body_for(template, kwargs), headers_for(template, task_id, kwargs), properties
