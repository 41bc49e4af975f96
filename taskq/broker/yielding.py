"""A yield to a higher-priority task waits for it once, and never loops.

A task about to start gives its process to a higher task recorded in the last YIELD_WINDOW
seconds and not running yet (store._UPDATE, tasks.TaskqTask.before_start): its message goes
back to the head of its queue. The record cannot tell a higher task whose message is on its
way to the broker (its record is written first) from one another worker took a moment ago
(its STARTED write not made yet). So the worker that yielded then waits for it: for up to
YIELD_WINDOW (by its own clock) it takes only from the queues above the one that yielded.
The wait ends when it takes a higher message (the yield helped) or when the time is up. The
task taken back after a wait in which nothing higher came runs without yielding again; a
steady stream of higher tasks run by other workers costs it one yield, not a loop of them.

A task yields to a higher task its own worker already holds as well (taken, not started
yet): its worker's processes are started by the OS in no set order, so the higher one may
start a moment later on another process. Such a yield is not remembered (no wait, no pass,
taskq/broker/delivery.py): the task taken back yields again until the higher one has started.
And the fetch takes nothing of a lower priority while the worker holds a task no process has
accepted yet (`at_or_above`), so that this is rare: only a task taken before the higher one can
meet it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from taskq.store import YIELD_WINDOW

KEEP = 1000  # yields remembered at most (a task that yielded is usually taken back soon)
NO_YIELD = "taskq_no_yield"  # in a request's dict: its start does not yield


class YieldMemory:
    """The tasks this worker gave back by a yield, the messages it has taken since, and the
    queues its fetch skips while it waits (the worker's main process)."""

    def __init__(self, wait: float = YIELD_WINDOW) -> None:
        self.wait = wait
        self._takes = 0
        self._yielded: dict[str, int] = {}  # task id -> messages taken before its yield
        self._below: set[str] = set()  # queues of the tasks that yielded, skipped meanwhile
        self._until = 0.0

    def gave_back(self, task_id: str, queue: str | None) -> None:
        """`task_id` (from `queue`) yielded: its message went back to its queue."""
        if len(self._yielded) >= KEEP:
            self._yielded.clear()
        self._yielded[task_id] = self._takes
        if queue:
            self._below.add(queue)
            self._until = time.monotonic() + self.wait

    def taken(self, task_id: str) -> bool:
        """Count a message taken (it ends any wait); True when it is the first taken since
        `task_id` yielded and is that task again: it runs without yielding."""
        since = self._yielded.pop(task_id, None)
        answered = since == self._takes
        self._takes += 1
        self._below.clear()
        return answered

    def above(self, queues: Sequence[Any]) -> list[Any]:
        """The queues to fetch from (kombu Queues in priority order): while a yield waits,
        only those above the first queue a task yielded from."""
        if self._below and time.monotonic() >= self._until:
            self._below.clear()
        if not self._below:
            return list(queues)
        names = [queue.name for queue in queues]
        cut = min((names.index(name) for name in self._below if name in names),
                  default=len(names))
        return list(queues[:cut])


def at_or_above(queues: Sequence[Any], handing_over: Sequence[str]) -> list[Any]:
    """The queues to fetch from (kombu Queues, in the order the worker reads them) while it
    holds tasks from the queues `handing_over` that no process has accepted yet: those up to
    the last one of the highest such task's priority. A lower task taken now could start on
    another process first. (By position in the order read, so a queue the starvation guard
    reads a priority up counts there.)"""
    if not handing_over:
        return list(queues)
    priorities = [queue.name.rpartition(".")[2] for queue in queues]
    ends = [len(priorities) - priorities[::-1].index(priority)
            for priority in {name.rpartition(".")[2] for name in handing_over}
            if priority in priorities]
    return list(queues[:min(ends)]) if ends else list(queues)


memory = YieldMemory()  # the worker's own (one main process per worker)
