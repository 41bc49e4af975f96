"""`taskq watch`: a live terminal view of queues, workers, latest tasks, rates and dead letters."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from rich.console import Console, RenderableType

from taskq import dlq, errors, records
from taskq.broker.queues import depth_reader, mark_rate_limited, queue_stats, transport_errors
from taskq.errors import BrokerUnavailable, UsageError
from taskq.runtime import Runtime
from taskq.store import flow as flow_figures
from taskq.store import listing
from taskq.store.workers import WorkerInfo, consumers_by_queue, list_workers
from taskq.term import tables
from taskq.term.watch_view import PROMPT_LINES, SNAPSHOT_WIDTH, Screen, Snapshot, render
from taskq.urls import mask_url, redis_client

if TYPE_CHECKING:
    import redis

    from taskq.broker.queues import DepthReader
    from taskq.config import Settings
    from taskq.records import TaskRecord

CALL_TIMEOUT = 1.0  # seconds any one broker call may take before the view says so
LATEST = 12  # tasks shown in "latest"
RETRYING = 8
RATE_WINDOW = 10  # seconds: done/failed per second are the tasks finished in the last 10 s
MAX_INTERVAL = 10.0  # seconds between refreshes at most
KEYS = "ctrl-c quit"


@dataclass(frozen=True)
class Filters:
    """What to show: task types and priorities (empty: all)."""

    types: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()

    @classmethod
    def parse(cls, settings: Settings, types: list[str], priorities: list[str]) -> Filters:
        query = listing.build_query(settings, types=types, priorities=priorities)
        return cls(query.types, query.priorities)


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
        self.failure: BrokerUnavailable | None = None
        self._states: dict[str, str] = {}
        self._last = Snapshot(taken_at=time.time(), title=self._title())

    def _title(self) -> str:
        s = self.runtime.settings
        where = "embedded broker" if s.embedded else mask_url(s.broker_url) or ""
        return f"taskq watch · {s.key_prefix} · {where}"

    def collect(self) -> Snapshot:
        """A fresh snapshot; on a broker failure the last data, with a status line (and the
        failure kept in `failure` until a read succeeds)."""
        now = time.time()
        failures: tuple[type[Exception], ...] = (BrokerUnavailable, *transport_errors())
        try:
            snap = self._read(now)
        except failures as exc:
            self._drop_reader()
            self.failure = self._as_error(exc)
            self._last.taken_at = now
            self._last.status = _outage(exc, self._last.updated_at, now)
            return self._last
        self.failure = None
        self._last = snap
        return snap

    def _as_error(self, exc: BaseException) -> BrokerUnavailable:
        if isinstance(exc, BrokerUnavailable):
            return exc
        url = mask_url(self.runtime.settings.broker_url) or "the embedded broker"
        return BrokerUnavailable("broker", url, errors.reason(exc))

    def _read(self, now: float) -> Snapshot:
        rt, f = self.runtime, self.filters
        if self._reader is None:
            self._reader = depth_reader(rt, CALL_TIMEOUT)
        workers = [w for w in list_workers(rt, now) if _serves(w, f)]
        queues = queue_stats(rt, self._reader, f.types, f.priorities, consumers_by_queue(workers))
        mark_rate_limited(rt, queues)
        latest = listing.list_tasks(rt, listing.ListQuery(types=f.types, priorities=f.priorities,
                                                          limit=LATEST))
        retrying = listing.list_tasks(rt, listing.ListQuery(
            states=(records.RETRY,), types=f.types, priorities=f.priorities, limit=RETRYING))
        done_rate, failed_rate = self._rates(now)
        return Snapshot(taken_at=now, title=self._title(), queues=queues, workers=workers,
                        latest=latest, retrying=retrying, changed=self._changes(latest),
                        dead_letters=self._dead_letters(), done_rate=done_rate,
                        failed_rate=failed_rate, updated_at=now,
                        flow=flow_figures.read(rt, f.types, f.priorities))

    def _dead_letters(self) -> int:
        if not self.filters.types:
            return dlq.count(self.runtime)
        return sum(dlq.count(self.runtime, t) for t in self.filters.types)

    def _rates(self, now: float) -> tuple[float, float]:
        done, failed = self.runtime.store.finished_since(now, RATE_WINDOW)
        return done / RATE_WINDOW, failed / RATE_WINDOW

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
        all_workers: bool = False, console: Console | None = None) -> None:
    """Draw the view until Ctrl-C; with `once` or a non-terminal stdout, one snapshot (and
    BrokerUnavailable, exit 7, when nothing could be read)."""
    if not 0.05 <= interval <= MAX_INTERVAL:
        raise UsageError(f"--interval must be between 0.05 and {MAX_INTERVAL:g} seconds")
    console = console or Console(highlight=False)
    collector = Collector(runtime, filters)
    try:
        if once or not console.is_terminal:
            _once(collector, console, all_workers)
        else:
            _live(collector, console, interval, all_workers)
    finally:
        collector.close()


def _once(collector: Collector, console: Console, all_workers: bool) -> None:
    snap = collector.collect()
    if collector.failure is not None:  # no figure it could not read, not even a zero
        raise collector.failure
    if console.is_terminal:  # the shell's prompt after it must not scroll its top away
        screen = Screen(console.width, console.height - PROMPT_LINES, all_workers)
    else:  # a file or pipe has no size: every row, and no table squeezed
        console.width = max(console.width, SNAPSHOT_WIDTH)
        screen = Screen(console.width, None, all_workers)
    console.print(render(snap, screen))


def _live(collector: Collector, console: Console, interval: float, all_workers: bool) -> None:
    from rich.live import Live

    def frame(snap: Snapshot) -> RenderableType:
        return render(snap, Screen(console.width, console.height, all_workers, KEYS))

    snap = collector.collect()
    with Live(frame(snap), console=console, auto_refresh=False, screen=True,
              redirect_stdout=False) as live:
        while True:
            started = time.monotonic()
            snap = collector.collect()
            live.update(frame(snap), refresh=True)
            size = console.size
            # Pacing between frames (not standing in for work), redrawing at once on a resize.
            while time.monotonic() - started < interval:
                time.sleep(min(0.1, max(0.0, interval - (time.monotonic() - started))))
                if console.size != size:
                    size = console.size
                    live.update(frame(snap), refresh=True)
