"""Dead letters: tasks that failed permanently or ran out of retries, listed, retried, purged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from taskq import control, listing
from taskq.errors import Conflict, UnknownTask
from taskq.store import text
from taskq.submit import resolve_type

if TYPE_CHECKING:
    from taskq.records import TaskRecord
    from taskq.runtime import Runtime


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
    return listing.newest_records(runtime.store, _keys(runtime, type_name), limit)


def count(runtime: Runtime, type_name: str | None = None) -> int:
    """How many dead letters there are (of one type, or all)."""
    store = runtime.store
    pipe = store.client.pipeline(transaction=False)
    for key in _keys(runtime, type_name):
        pipe.zcard(key)
    with store.reachable():
        return sum(int(n) for n in pipe.execute())


def _all_ids(runtime: Runtime, type_name: str | None) -> list[tuple[str, str]]:
    """(task id, dead-letter key) of every dead letter, oldest failure first per type."""
    store = runtime.store
    keys = _keys(runtime, type_name)
    pipe = store.client.pipeline(transaction=False)
    for key in keys:
        pipe.zrange(key, 0, -1)
    with store.reachable():
        found = pipe.execute()
    return [(text(task_id), key) for key, ids in zip(keys, found, strict=True)
            for task_id in ids]


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
    letters = _all_ids(runtime, type_name)
    pipe = store.client.pipeline(transaction=False)
    for task_id, key in letters:
        pipe.zrem(key, task_id)
    with store.reachable():
        claimed = pipe.execute()
    # Only those not retried or purged by someone else meanwhile.
    mine = [task_id for (task_id, _), won in zip(letters, claimed, strict=True) if won]
    store.delete_many(mine)
    return len(mine)
