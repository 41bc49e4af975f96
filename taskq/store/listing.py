"""`taskq list`: tasks newest first from the record indexes, by state, type, priority and age."""

from __future__ import annotations

import heapq
import itertools
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from taskq import records
from taskq.config import resolve_priority, resolve_type
from taskq.errors import UsageError
from taskq.store import text

if TYPE_CHECKING:
    from taskq.config import Settings
    from taskq.records import TaskRecord
    from taskq.runtime import Runtime
    from taskq.store import TaskStore

MAX_LIMIT = 1000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class ListQuery:
    """What to list; empty tuples mean "any". `since` is an epoch time (submitted at/after)."""

    states: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    since: float | None = None
    limit: int = 20


def parse_duration(text: str) -> float:
    """Seconds in "90", "30s", "10m", "2h", "1d" or "1w"; UsageError otherwise."""
    match = _DURATION.match(text.lower())
    if not match:
        raise UsageError(f"invalid duration {text!r}: use a number with s, m, h, d or w "
                         "(e.g. 10m)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def build_query(settings: Settings, states: list[str] | None = None,
                types: list[str] | None = None, priorities: list[str] | None = None,
                since: str | None = None, limit: int = 20, now: float | None = None) -> ListQuery:
    """Validate user filters (type aliases allowed, states in any case) into a ListQuery."""
    chosen = tuple(s.upper() for s in states or [])
    for state in chosen:
        if state not in records.STATES:
            raise UsageError(f"unknown state {state!r}; use one of {', '.join(records.STATES)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"--limit must be between 1 and {MAX_LIMIT}")
    return ListQuery(
        states=chosen, types=tuple(resolve_type(settings, t).name for t in types or []),
        priorities=tuple(resolve_priority(settings, p) for p in priorities or []),
        since=(now or time.time()) - parse_duration(since) if since else None, limit=limit)


def index_keys(settings: Settings, store: TaskStore, query: ListQuery) -> list[str]:
    """The index sets that hold exactly the matching tasks: their number depends on the
    config (states x types x priorities), never on how many records are kept."""
    if not (query.states or query.types or query.priorities):
        return [store.index_key]
    cells = itertools.product(query.states or records.STATES,
                              query.types or tuple(settings.task_types),
                              query.priorities or settings.priorities)
    return [store.cell_key(s, t, p) for s, t, p in cells]


def newest_ids(store: TaskStore, keys: list[str], limit: int,
               since: float | None = None) -> list[tuple[str, str]]:
    """The `limit` newest (id, index key) pairs across sorted sets: O(keys x (log N + limit))."""
    pipe = store.client.pipeline(transaction=False)
    for key in keys:
        pipe.zrevrangebyscore(key, "+inf", since if since is not None else "-inf",
                              start=0, num=limit, withscores=True)
    with store.reachable():
        pages = pipe.execute()
    tagged = ([(-score, text(member), key) for member, score in page]
              for key, page in zip(keys, pages, strict=True))
    return [(tid, key) for _, tid, key in itertools.islice(heapq.merge(*tagged), limit)]


def fetch(store: TaskStore, found: list[tuple[str, str]]) -> tuple[list[TaskRecord], int]:
    """Records for (id, index key) pairs; drops index entries whose record has expired.
    Returns the records and how many entries were dropped."""
    got = store.get_many([tid for tid, _ in found])
    stale = [(tid, key) for (tid, key), rec in zip(found, got, strict=True) if rec is None]
    if stale:
        pipe = store.client.pipeline(transaction=False)
        for tid, key in stale:
            pipe.zrem(key, tid)
            pipe.zrem(store.index_key, tid)
            pipe.zrem(store.ids_key, tid)
        with store.reachable():
            pipe.execute()
    return [rec for rec in got if rec is not None], len(stale)


def list_tasks(runtime: Runtime, query: ListQuery) -> list[TaskRecord]:
    """Matching tasks, newest submitted first, at most query.limit of them."""
    store = runtime.store
    return newest_records(store, index_keys(runtime.settings, store, query), query.limit,
                          query.since)


def newest_records(store: TaskStore, keys: list[str], limit: int,
                   since: float | None = None) -> list[TaskRecord]:
    """The newest records indexed by `keys`, at most `limit`; a page with expired entries
    is read again once they are dropped."""
    for _ in range(3):
        page, stale = fetch(store, newest_ids(store, keys, limit, since))
        if not stale:
            break
    return page
