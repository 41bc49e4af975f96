"""The systems taskq is compared with (`--peers`): which are installed, on which brokers each
runs, and its side of the benchmark."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path

from taskq.bench.side import PeerSide, Side
from taskq.bench.targets import Target
from taskq.errors import UsageError

PEERS = ("celery", "dramatiq", "huey")
# What each needs importable (the bench extra installs Dramatiq and Huey).
MODULES = {"celery": ("celery",), "dramatiq": ("dramatiq", "pika"), "huey": ("huey",)}
# How each is run, for the record (the README's Benchmarks section says the same).
HOW = {
    "celery": "plain Celery app, default settings (Redis result backend, prefetch 4, early "
              "ack); worker -c 2 -P prefork; enqueue: apply_async, bulk: apply_async on one "
              "producer; submit process: celery call",
    "dramatiq": "RedisBroker or RabbitmqBroker, Results middleware with a Redis backend "
                "(store_results); dramatiq --processes 2 --threads 1; enqueue: send, bulk: "
                "group(...).run(), which enqueues one by one",
    "huey": "RedisHuey, results stored, notify_result on (BLPOP wakes a waiter); "
            "huey_consumer -w 2 -k process -q; enqueue: a call of the task (no bulk API); "
            "Redis only: n/a on rabbitmq",
}


def parse(text: str) -> list[str]:
    """The peers named in a comma-separated list, in order, each once."""
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise UsageError(f"unknown peer {unknown[0]!r}; use {', '.join(PEERS)}")
    return names


def missing(names: list[str]) -> list[str]:
    """The peers among `names` whose packages are not installed."""
    return [n for n in names
            if any(importlib.util.find_spec(m) is None for m in MODULES[n])]


def usable(names: list[str]) -> tuple[list[str], list[str]]:
    """The peers that can run, and a line for each one skipped (and for the sidecar's figure
    when the api extra is missing)."""
    from taskq.bench.user_paths import api_installed

    absent = missing(names)
    notes = [f"bench: skipping {n}: not installed (pip install 'taskq[bench]')" for n in absent]
    if not api_installed():
        notes.append("bench: the HTTP batch figure is n/a: the api extra is not installed")
    return [n for n in names if n not in absent], notes


def side_class(name: str) -> type[PeerSide]:
    if name == "celery":
        from taskq.bench.celery_side import CelerySide

        return CelerySide
    if name == "dramatiq":
        from taskq.bench.dramatiq_side import DramatiqSide

        return DramatiqSide
    from taskq.bench.huey_side import HueySide

    return HueySide


def make(name: str, target: Target, env: Mapping[str, str], logs: Path) -> Side | None:
    """The peer's side on `target`, or None on a broker it cannot use."""
    cls = side_class(name)
    return cls(target, env, logs) if target.name in cls.brokers else None
