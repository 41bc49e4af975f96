"""Flow control at a glance, for `watch` and /metrics: tasks waiting for others (--after),
delayed tasks, deduplicated submits, schedules. Read in one round trip."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from taskq import records
from taskq.store import delayed

if TYPE_CHECKING:
    from taskq.runtime import Runtime
    from taskq.store import TaskStore

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

DEDUPLICATED = "deduplicated"  # the stats hash's field: submits answered by an earlier task


@dataclass(frozen=True)
class FlowFigures:
    """Counts now, except `deduplicated`, a counter since the deployment began."""

    waiting: int = 0  # WAITING: recorded, queued once the tasks they depend on succeed
    delayed: int = 0  # SCHEDULED tasks in `<prefix>:due`, moved to their queues when due
    deduplicated: int = 0  # submits whose idempotency key named an earlier task
    schedules: int = 0
    paused: int = 0
    next_tick: float | None = None  # the next tick of any active schedule

    @property
    def any(self) -> bool:
        return bool(self.waiting or self.delayed or self.deduplicated or self.schedules)


def read(runtime: Runtime, types: Sequence[str] = (), priorities: Sequence[str] = ()
         ) -> FlowFigures:
    """The figures; `waiting` only for the given types and priorities (empty: all)."""
    from taskq.store.schedules import ScheduleStore

    settings, store = runtime.settings, runtime.store
    cells = list(itertools.product(types or settings.task_types,
                                   priorities or settings.priorities))
    names, due = ScheduleStore.summary_keys(store.prefix)
    pipe = store.client.pipeline(transaction=False)
    for type_name, priority in cells:
        pipe.zcard(store.cell_key(records.WAITING, type_name, priority))
    pipe.zcard(delayed.due_key(store.prefix))
    pipe.hget(store.stats_key, DEDUPLICATED)
    pipe.scard(names)
    pipe.zcard(due)
    pipe.zrange(due, 0, 0, withscores=True)
    with store.reachable():
        *waiting, delayed_count, deduplicated, count, active, first = pipe.execute()
    return FlowFigures(waiting=sum(int(n) for n in waiting), delayed=int(delayed_count),
                       deduplicated=int(deduplicated or 0), schedules=int(count),
                       paused=int(count) - int(active),
                       next_tick=float(first[0][1]) if first else None)


def count_deduplicated(store: TaskStore, submits: int) -> None:
    """Count submits answered with an earlier task (one call, only when there are some)."""
    if submits:
        with store.reachable():
            store.client.hincrby(store.stats_key, DEDUPLICATED, submits)
