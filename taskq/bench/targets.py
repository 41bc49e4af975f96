"""Where a benchmark runs: one broker (embedded, RabbitMQ + Redis, or Redis), isolated and
cleaned up, with the URLs that taskq, the plain Celery app and the peers each use on it."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskq.errors import UsageError

BROKERS = ("embedded", "rabbitmq", "redis")
RABBITMQCTL_TIMEOUT = 60


@dataclass(frozen=True)
class Target:
    """One broker as both systems see it."""

    name: str
    broker_url: str | None  # taskq's TASKQ_BROKER_URL (None: embedded)
    backend_url: str | None  # taskq's TASKQ_RESULT_BACKEND (None: embedded)
    plain_broker: str
    plain_backend: str
    peer_redis: str  # redis-py URL: Dramatiq's and Huey's broker (unless RabbitMQ) and results
    peer_amqp: str | None = None  # RabbitMQ for Dramatiq on the rabbitmq target


PEER_DB = 3  # the embedded server's database for Dramatiq and Huey (each has its own keys)


def plain_urls_for_embedded(socket: Path) -> tuple[str, str]:
    """The embedded server's databases 1 and 2 for the plain app (taskq uses 0)."""
    return (f"redis+socket://{socket}?virtual_host=1", f"redis+socket://{socket}?virtual_host=2")


@contextmanager
def opened(kind: str, home: Path, redis_url: str, amqp_url: str | None) -> Iterator[Target]:
    """The target for `kind`; a RabbitMQ vhost of its own is made and removed when
    `amqp_url` is None and rabbitmqctl is at hand."""
    if kind == "embedded":
        socket = home / "redis.sock"
        broker, backend = plain_urls_for_embedded(socket)
        yield Target(kind, None, None, broker, backend, f"unix://{socket}?db={PEER_DB}")
    elif kind == "redis":
        yield Target(kind, redis_url, redis_url, redis_url, redis_url, redis_url)
    elif kind == "rabbitmq":
        with _vhost(amqp_url) as url:
            yield Target(kind, url, redis_url, url, redis_url, redis_url, url)
    else:
        raise UsageError(f"unknown broker {kind!r}; use one of {', '.join(BROKERS)}")


@contextmanager
def _vhost(amqp_url: str | None) -> Iterator[str]:
    if amqp_url is not None:
        yield amqp_url
        return
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise UsageError("--amqp-url is required when rabbitmqctl is not installed")
    name = f"taskq-bench-{uuid.uuid4().hex[:8]}"
    _ctl(ctl, "add_vhost", name)
    try:
        _ctl(ctl, "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        _ctl(ctl, "delete_vhost", name)


def _ctl(ctl: str, *args: str) -> None:
    done = subprocess.run([ctl, *args], capture_output=True, text=True, check=False,
                          timeout=RABBITMQCTL_TIMEOUT)
    if done.returncode != 0:
        raise UsageError(f"rabbitmqctl {args[0]} failed: {done.stderr.strip()[:200]}")


def purge(app: Any, names: Iterable[str]) -> None:
    """Empty the named queues of `app`'s broker; a queue never declared is already empty."""
    with app.connection_for_write() as conn:
        for name in names:
            with conn.channel() as channel:
                try:
                    channel.queue_purge(name)
                except conn.channel_errors:
                    pass
