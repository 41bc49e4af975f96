"""Keeps the record indexes bounded: drops index entries older than the retention period."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from taskq import records
from taskq.submit import MAX_DELAY

if TYPE_CHECKING:
    from taskq.config import Settings
    from taskq.store import TaskStore

# A finished record lives record_ttl seconds after it finishes; an open one record_ttl plus
# its delay after submit. Index entries are scored by submit (dead letters by failure) time,
# so a finished task stays listable for record_ttl after submit, an open one up to
# MAX_DELAY longer; `taskq list` skips (and drops) any entry whose record has expired.


def trim(store: TaskStore, settings: Settings, now: float | None = None) -> int:
    """Remove index entries past retention; returns how many were removed."""
    final_cutoff = (now or time.time()) - settings.record_ttl
    open_cutoff = final_cutoff - MAX_DELAY
    pipe = store.client.pipeline(transaction=False)
    pipe.zremrangebyscore(store.index_key, "-inf", f"({open_cutoff}")
    for type_name in settings.task_types:
        pipe.zremrangebyscore(store.dlq_key(type_name), "-inf", f"({final_cutoff}")
        for priority in settings.priorities:
            for state in records.STATES:
                cutoff = final_cutoff if state in records.FINAL_STATES else open_cutoff
                pipe.zremrangebyscore(store.cell_key(state, type_name, priority), "-inf",
                                      f"({cutoff}")
    with store.reachable():
        return sum(int(n) for n in pipe.execute())
