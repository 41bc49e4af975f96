"""Dead letters: tasks that failed permanently or ran out of retries, listed, retried, purged."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from taskq import records
from taskq.broker.publish import send_all
from taskq.config import resolve_type
from taskq.errors import TaskqError, UsageError
from taskq.request import SubmitRequest
from taskq.store import listing, text
from taskq.submit import prepare

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
    """Dead letters, most recently failed first; at most `limit` (1 to listing.MAX_LIMIT)."""
    if not 1 <= limit <= listing.MAX_LIMIT:
        raise UsageError(f"--limit must be between 1 and {listing.MAX_LIMIT}")
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


def retry_all(runtime: Runtime, type_name: str | None = None,
              progress: Callable[[int], None] | None = None) -> RetryReport:
    """Submit every dead letter again, oldest failure first, each as control.retry does (a
    new linked task; taking the id off the dead-letter set is the claim) but through the bulk
    path: the records read in one round trip, the claims taken in one, the new tasks
    published in batches (`progress(n)` after each). A letter whose new task could not be
    published is put back, and the error raised. Letters skipped: expired (their entries are
    dropped), retried or purged meanwhile, or whose parameters no longer pass their type's
    schema (they stay)."""
    letters = _all_ids(runtime, type_name)
    report = RetryReport()
    ready: list[tuple[str, TaskRecord, TaskRecord]] = []  # (key, dead letter, new task)
    expired: list[tuple[str, str]] = []
    for (task_id, key), old in zip(letters, runtime.store.get_many(
            [task_id for task_id, _ in letters]), strict=True):
        new = _again(runtime, old) if old is not None else None
        if old is None:  # its record expired: its entry is dropped
            expired.append((key, task_id))
        if old is None or new is None:
            report.skipped.append(task_id)
        else:
            ready.append((key, old, new))
    # One round trip drops the expired entries and takes the claims.
    claimed = _claim(runtime, expired + [(key, old.id) for key, old, _ in ready])[len(expired):]
    report.skipped += [old.id for (_, old, _), won in zip(ready, claimed, strict=True)
                       if not won]
    mine = [item for item, won in zip(ready, claimed, strict=True) if won]
    news = [new for _, _, new in mine]
    sent = [0]

    def advance(n: int) -> None:
        sent[0] += n
        if progress is not None:
            progress(n)

    try:
        send_all(runtime, news, progress=advance)
    finally:
        _settle(runtime, mine, _published(runtime, news, sent[0]))
    report.retried = [(old.id, new.id) for _, old, new in mine]
    return report


def _again(runtime: Runtime, old: TaskRecord) -> TaskRecord | None:
    """The new task for a dead letter; None unless it failed and its parameters still pass."""
    if old.state != records.FAILURE:
        return None
    try:
        new = prepare(runtime.settings, SubmitRequest(type=old.type, priority=old.priority,
                                                      params=old.params, delay=0))
    except TaskqError:
        return None
    new.retry_of = old.id
    return new


def _claim(runtime: Runtime, entries: list[tuple[str, str]]) -> list[bool]:
    """Take (dead-letter key, task id) entries off their sets; whether each was there."""
    store = runtime.store
    pipe = store.client.pipeline(transaction=False)
    for key, task_id in entries:
        pipe.zrem(key, task_id)
    if not entries:
        return []
    with store.reachable():
        return [bool(n) for n in pipe.execute()]


def _published(runtime: Runtime, news: list[TaskRecord], sent: int) -> list[bool]:
    """Which new tasks were published: those of the batches reported sent, and after them
    (a batch that failed part way) those whose record is still there: a batch's records are
    removed for the messages it could not publish (publish/base.py, Publisher)."""
    rest = news[sent:]
    if not rest:
        return [True] * sent
    store = runtime.store
    pipe = store.client.pipeline(transaction=False)
    for new in rest:
        pipe.exists(store.key(new.id))
    with store.reachable():
        return [True] * sent + [bool(n) for n in pipe.execute()]


def _settle(runtime: Runtime, mine: list[tuple[str, TaskRecord, TaskRecord]],
            published: list[bool]) -> None:
    """Link each published letter to its new task; put the others back."""
    store = runtime.store
    pipe = store.client.pipeline(transaction=False)
    for (key, old, new), done in zip(mine, published, strict=True):
        if done:
            pipe.hset(store.key(old.id), "retried_as", new.id)
        else:
            pipe.zadd(key, {old.id: old.finished_at or time.time()})
    with store.reachable():
        pipe.execute()


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
