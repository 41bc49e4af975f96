"""Queue topology: one queue per task type and priority, consumed highest priority first."""

from __future__ import annotations

from collections.abc import Iterable

from taskq.config import Settings


def queue_name(settings: Settings, type_name: str, priority: str) -> str:
    return f"{settings.key_prefix}.{type_name}.{priority}"


def task_name(type_name: str) -> str:
    """The Celery task name of a task type (what Flower and `celery inspect` show)."""
    return f"taskq.{type_name}"


def all_queues(settings: Settings) -> list[str]:
    return consumed_queues(settings, settings.task_types, settings.priorities)


def consumed_queues(settings: Settings, types: Iterable[str],
                    priorities: Iterable[str]) -> list[str]:
    """Queues a worker reads, priority-major: every high queue before any normal one.

    Workers take from them in this order (taskq/broker/fetch/), which makes priority strict.
    """
    types = list(types)
    wanted = set(priorities)
    return [queue_name(settings, t, p) for p in settings.priorities if p in wanted for t in types]


def outranking(settings: Settings, types: Iterable[str], priorities: Iterable[str],
               queue: str) -> list[tuple[str, str]]:
    """(type, priority) of the queues a worker reading `types` at `priorities` serves before
    `queue`: each of its types at every priority above that queue's."""
    parsed = parse_queue(settings, queue)
    if parsed is None:
        return []
    above = settings.priorities[:settings.priorities.index(parsed[1])]
    return [(t, p) for p in priorities if p in above for t in types]


def priority_rank(settings: Settings, queue: str) -> int:
    """The rank of `queue`'s priority, 0 for the highest; a queue not of ours ranks lowest."""
    parsed = parse_queue(settings, queue)
    return settings.priorities.index(parsed[1]) if parsed else len(settings.priorities) - 1


def parse_queue(settings: Settings, name: str) -> tuple[str, str] | None:
    """(type, priority) of one of our queue names, or None."""
    prefix = settings.key_prefix + "."
    if not name.startswith(prefix):
        return None
    type_name, _, priority = name[len(prefix):].rpartition(".")
    if type_name in settings.task_types and priority in settings.priorities:
        return type_name, priority
    return None
