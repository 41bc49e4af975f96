"""`taskq watch`: a live terminal view of queues, workers, latest tasks, rates and dead letters."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from taskq import dlq, errors, listing, records, tables
from taskq.config import mask_url
from taskq.errors import BrokerUnavailable, UsageError
from taskq.queues import QueueInfo, depth_reader, queue_stats, transport_errors
from taskq.runtime import Runtime, redis_client
from taskq.workers_view import WorkerInfo, consumers_by_queue, list_workers

if TYPE_CHECKING:
    import redis

    from taskq.config import Settings
    from taskq.queues import DepthReader
    from taskq.records import TaskRecord

CALL_TIMEOUT = 1.0  # seconds any one broker call may take before the view says so
LATEST = 12  # tasks shown in "latest"
RETRYING = 8
SNAPSHOT_WIDTH = 160  # columns of a snapshot printed to a file or pipe
RATE_WINDOW = 20  # samples kept for the done/failed rates (10 s at two refreshes a second)


@dataclass(frozen=True)
class Filters:
    """What to show: task types and priorities (empty: all)."""

    types: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()

    @classmethod
    def parse(cls, settings: Settings, types: list[str], priorities: list[str]) -> Filters:
        query = listing.build_query(settings, types=types, priorities=priorities)
        return cls(query.types, query.priorities)


@dataclass
class Snapshot:
    """Everything one frame shows; built by Collector, drawn by render()."""

    taken_at: float
    title: str
    queues: list[QueueInfo] = field(default_factory=list)
    workers: list[WorkerInfo] = field(default_factory=list)
    latest: list[TaskRecord] = field(default_factory=list)
    retrying: list[TaskRecord] = field(default_factory=list)
    changed: frozenset[str] = frozenset()
    dead_letters: int = 0
    done_rate: float = 0.0
    failed_rate: float = 0.0
    status: str | None = None  # set while the broker is unreachable
    updated_at: float | None = None  # when the data shown was read


# -- drawing: pure functions of a Snapshot --------------------------------------------------

def render(snap: Snapshot) -> RenderableType:
    """The whole view for one snapshot."""
    parts: list[RenderableType] = [_header(snap)]
    if snap.status:
        parts.append(Text(snap.status, style="bold white on red"))
    parts += [_queues(snap), _workers(snap), _retrying(snap), _latest(snap)]
    return Group(*parts)


def _header(snap: Snapshot) -> Text:
    by_priority: dict[str, int] = {}
    for q in snap.queues:
        by_priority[q.priority] = by_priority.get(q.priority, 0) + q.depth
    depth = "  ".join(f"{p} {n}" for p, n in by_priority.items()) or "-"
    text = Text.assemble((snap.title, "bold"), "  ",
                         time.strftime("%H:%M:%S", time.localtime(snap.taken_at)), "\n")
    text.append(f"waiting: {depth}   ")
    text.append(f"done {snap.done_rate:.1f}/s", style="green")
    text.append("  ")
    text.append(f"failed {snap.failed_rate:.1f}/s", style="red" if snap.failed_rate else "")
    text.append("   dead letters: ")
    text.append(str(snap.dead_letters), style="bold red" if snap.dead_letters else "")
    return text


def _compact(table: Table, title: str) -> Table:
    table.title = title
    table.title_justify = "left"
    table.title_style = "bold"
    table.box = box.SIMPLE_HEAD
    return table


def _queues(snap: Snapshot) -> RenderableType:
    shown = [q for q in snap.queues if q.depth or q.consumers]
    hidden = len(snap.queues) - len(shown)
    note = f" ({hidden} empty, unread queues hidden)" if hidden else ""
    if not shown:
        return Text(f"Queues: all empty{note}", style="dim")
    return _compact(tables.queues_table(shown, snap.taken_at), f"Queues{note}")


def _workers(snap: Snapshot) -> RenderableType:
    if not snap.workers:
        return Text("Workers: none registered", style="dim")
    return _compact(tables.workers_table(snap.workers, snap.taken_at), "Workers")


def _retrying(snap: Snapshot) -> RenderableType:
    if not snap.retrying:
        return Text("Retrying: none", style="dim")
    table = Table(box=box.SIMPLE_HEAD)
    for name in ("id", "type", "attempt", "next attempt", "last error"):
        table.add_column(name, no_wrap=True, overflow="ellipsis")
    for t in snap.retrying:
        when = (f"in {tables.ago(t.next_attempt_at - snap.taken_at)}" if t.next_attempt_at
                else "-")
        table.add_row(t.id[:8], Text(t.type), str(t.attempts), when, Text((t.error or "")[:50]))
    return _compact(table, "Retrying")


def _latest(snap: Snapshot) -> Table:
    table = tables.tasks_table(snap.latest, snap.taken_at, short_ids=True)
    for index, task in enumerate(snap.latest):
        if task.id in snap.changed:  # a state change since the last frame stands out
            table.rows[index].style = "bold"
    return _compact(table, "Latest tasks")


# -- reading: time-bounded, never raising for a broker outage --------------------------------

class _FastRuntime(Runtime):
    """A Runtime whose Redis calls give up after CALL_TIMEOUT, so a frame never hangs."""

    @cached_property
    def redis(self) -> redis.Redis:
        return redis_client(self.backend_url, CALL_TIMEOUT, CALL_TIMEOUT)


class Collector:
    """Builds snapshots; keeps only what rates and change marks need (bounded)."""

    def __init__(self, runtime: Runtime, filters: Filters) -> None:
        self.runtime = _FastRuntime(runtime.settings, runtime.start_broker)
        self.filters = filters
        self._reader: DepthReader | None = None
        self._samples: deque[tuple[float, int, int]] = deque(maxlen=RATE_WINDOW)
        self._states: dict[str, str] = {}
        self._last = Snapshot(taken_at=time.time(), title=self._title())

    def _title(self) -> str:
        s = self.runtime.settings
        where = "embedded broker" if s.embedded else mask_url(s.broker_url) or ""
        return f"taskq watch · {s.key_prefix} · {where}"

    def collect(self) -> Snapshot:
        """A fresh snapshot; on a broker failure the last data, with a status line."""
        now = time.time()
        failures: tuple[type[Exception], ...] = (BrokerUnavailable, *transport_errors())
        try:
            snap = self._read(now)
        except failures as exc:
            self._drop_reader()
            self._last.taken_at = now
            self._last.status = _outage(exc, self._last.updated_at, now)
            return self._last
        self._last = snap
        return snap

    def _read(self, now: float) -> Snapshot:
        rt, f = self.runtime, self.filters
        if self._reader is None:
            self._reader = depth_reader(rt, CALL_TIMEOUT)
        workers = [w for w in list_workers(rt, now) if _serves(w, f)]
        queues = queue_stats(rt, self._reader, f.types, f.priorities, consumers_by_queue(workers))
        latest = listing.list_tasks(rt, listing.ListQuery(types=f.types, priorities=f.priorities,
                                                          limit=LATEST))
        retrying = listing.list_tasks(rt, listing.ListQuery(
            states=(records.RETRY,), types=f.types, priorities=f.priorities, limit=RETRYING))
        done_rate, failed_rate = self._rates(now)
        return Snapshot(taken_at=now, title=self._title(), queues=queues, workers=workers,
                        latest=latest, retrying=retrying, changed=self._changes(latest),
                        dead_letters=self._dead_letters(), done_rate=done_rate,
                        failed_rate=failed_rate, updated_at=now)

    def _dead_letters(self) -> int:
        if not self.filters.types:
            return dlq.count(self.runtime)
        return sum(dlq.count(self.runtime, t) for t in self.filters.types)

    def _rates(self, now: float) -> tuple[float, float]:
        store = self.runtime.store
        with store.reachable():
            done, failed = store.client.hmget(store.stats_key, "done", "failed")
        self._samples.append((now, int(done or 0), int(failed or 0)))
        first, last = self._samples[0], self._samples[-1]
        span = last[0] - first[0]
        if span <= 0:
            return 0.0, 0.0
        return (last[1] - first[1]) / span, (last[2] - first[2]) / span

    def _changes(self, latest: list[TaskRecord]) -> frozenset[str]:
        changed = frozenset(t.id for t in latest
                            if self._states and self._states.get(t.id) != t.state)
        self._states = {t.id: t.state for t in latest}  # only the shown tasks: bounded
        return changed

    def _drop_reader(self) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            except transport_errors():
                pass
            self._reader = None

    def close(self) -> None:
        self._drop_reader()


def _serves(worker: WorkerInfo, f: Filters) -> bool:
    if not (f.types or f.priorities):
        return True
    pairs = [q.rsplit(".", 2)[-2:] for q in worker.queues]
    return any((not f.types or t in f.types) and (not f.priorities or p in f.priorities)
               for t, p in pairs)


def _outage(exc: BaseException, updated_at: float | None, now: float) -> str:
    reason = exc.message if isinstance(exc, BrokerUnavailable) else errors.reason(exc)
    shown = (f"showing data from {tables.ago(now - updated_at)} ago" if updated_at
             else "no data yet")
    return f"broker unreachable: {reason} — retrying; {shown}"


# -- the loop --------------------------------------------------------------------------------

def run(runtime: Runtime, filters: Filters, once: bool = False, interval: float = 0.5,
        console: Console | None = None) -> None:
    """Draw the view until Ctrl-C; with `once` or a non-terminal stdout, one snapshot."""
    from rich.live import Live

    if not 0.05 <= interval <= 0.5:
        raise UsageError("--interval must be between 0.05 and 0.5 seconds")
    console = console or Console(highlight=False)
    collector = Collector(runtime, filters)
    try:
        if once or not console.is_terminal:
            if not console.is_terminal:  # a file or pipe has no width: do not squeeze tables
                console.width = max(console.width, SNAPSHOT_WIDTH)
            console.print(render(collector.collect()))
            return
        with Live(render(collector.collect()), console=console, auto_refresh=False,
                  screen=True, redirect_stdout=False) as live:
            while True:
                started = time.monotonic()
                live.update(render(collector.collect()), refresh=True)
                # Pacing between frames (not standing in for work): at most `interval`.
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        collector.close()
