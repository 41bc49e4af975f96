"""The Huey app the benchmark compares with: `RedisHuey` (Huey runs on Redis only) storing
every result, with `notify_result` on so that a waiting client is woken by BLPOP instead of
polling (Huey's own option for low-latency results); everything else as shipped (checked
with Huey 3.5). `taskq bench` writes a module that calls `make_huey` for `huey_consumer`."""

from __future__ import annotations

from typing import Any

TASK = "noop"


def make_huey(url: str, name: str) -> tuple[Any, Any]:
    """A Huey named `name` on the Redis at `url`, and its no-op task."""
    from huey import RedisHuey

    from taskq.bench import jobs

    huey = RedisHuey(name, url=url, notify_result=True)
    return huey, huey.task(name=TASK)(jobs.stamp)


MODULE = """\
# Written by taskq bench: the Huey consumer's app.
from taskq.bench.huey_app import make_huey

huey, noop = make_huey({url!r}, {name!r})
"""
