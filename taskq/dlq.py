"""Dead letters: tasks that failed permanently or ran out of retries, listed, retried, purged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from taskq import control, listing
from taskq.errors import Conflict, UnknownTask
from taskq.submit import resolve_type

if TYPE_CHECKING:
    from taskq.records import TaskRecord
    from taskq.runtime import Runtime
    from taskq.store import TaskStore


@dataclass
class RetryReport:
    """What `dlq retry --all` did: (dead letter id, new task id) pairs, and ids skipped."""

    retried: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"retried": len(self.retried), "skipped": len(self.skipped),
                "tasks": [{"id": old, "retried_as": new} for old, new in self.retried]}


def _keys(runtime: Runtime, type_name: str | None) -> list[str]:
    store = runtime.store
    if type_name:
        return [store.dlq_key(resolve_type(runtime.settings, type_name).name)]
    return [store.dlq_key(t) for t in runtime.settings.task_types]


def dead_letters(runtime: Runtime, type_name: str | None = None,
                 limit: int = 20) -> list[TaskRecord]:
    """Dead letters, most recently failed first."""
    store = runtime.store
    keys = _keys(runtime, type_name)
    for _ in range(3):  # read again once entries of expired records are dropped
        page, stale = listing.fetch(store, listing.newest_ids(store, keys, limit))
        if not stale:
            break
    return page


def count(runtime: Runtime, type_name: str | None = None) -> int:
    """How many dead letters there are (of one type, or all)."""
    store = runtime.store
    pipe = store.client.pipeline(transaction=False)
    for key in _keys(runtime, type_name):
        pipe.zcard(key)
    with store.reachable():
        return sum(int(n) for n in pipe.execute())


def _members(store: TaskStore, key: str) -> list[str]:
    with store.reachable():
        found: list[bytes] = store.client.zrange(key, 0, -1)  # type: ignore[assignment]
    return [m.decode() for m in found]


def _all_ids(runtime: Runtime, type_name: str | None) -> list[tuple[str, str]]:
    store = runtime.store
    with store.reachable():
        return [(task_id, key) for key in _keys(runtime, type_name)
                for task_id in _members(store, key)]


def retry_all(runtime: Runtime, type_name: str | None = None) -> RetryReport:
    """Submit every dead letter again, oldest failure first; each as control.retry does."""
    report = RetryReport()
    for task_id, key in _all_ids(runtime, type_name):
        try:
            report.retried.append((task_id, control.retry(runtime, task_id).id))
        except UnknownTask:  # its record expired: drop the entry
            with runtime.store.reachable():
                runtime.store.client.zrem(key, task_id)
            report.skipped.append(task_id)
        except Conflict:  # retried or purged meanwhile
            report.skipped.append(task_id)
    return report


def purge(runtime: Runtime, type_name: str | None = None) -> int:
    """Delete every dead letter (record and index entries); returns how many."""
    store = runtime.store
    removed = 0
    for key in _keys(runtime, type_name):
        for task_id in _members(store, key):
            with store.reachable():
                claimed = store.client.zrem(key, task_id)
            if claimed:  # not retried or purged by someone else meanwhile
                store.delete(task_id)
                removed += 1
    return removed
