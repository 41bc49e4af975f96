"""What a worker's main process does with a task's delivery besides running it: a yield is
remembered (taskq/broker/yielding.py), a delivery whose attempt runs elsewhere waits in the worker
(taskq/broker/running.py), and a pool process lost mid-run lets go of its run lease at once.

Checked against Celery 5.7: the request's dict is what the pool process gets as the task's
request; `on_failure` is called in the main process with the exception of a task that
rejected its message (before_start's Reject) or whose process was lost.
"""

from __future__ import annotations

import logging
from typing import Any

from billiard.einfo import ExceptionWithTraceback
from celery.exceptions import WorkerLostError
from celery.worker import state

from taskq import topology
from taskq.broker import running, yielding
from taskq.broker.tasks import RunsElsewhere, Yielded
from taskq.broker.time_limits import TaskqRequest

log = logging.getLogger(__name__)


class DeliveryRequest(TaskqRequest):
    """Celery's request for taskq tasks (TaskqTask.Request)."""

    def __init__(self, message: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(message, *args, **kwargs)
        if yielding.memory.taken(self.id):
            self._request_dict[yielding.NO_YIELD] = True

    def _holds_higher(self) -> bool:
        """Whether this worker already holds a task of a higher priority than this one: the
        yield was to it, and it starts next. Then the yield is not remembered: no wait for a
        higher message, and no pass to run without a yield when this task is taken back (a
        high task recorded by then still makes it yield)."""
        settings = getattr(self.task.app, "taskq_settings", None)
        if settings is None:
            return False

        def rank(request: Any) -> int:
            queue = (request.delivery_info or {}).get("routing_key") or ""
            return topology.priority_rank(settings, queue)

        try:
            held = tuple(state.reserved_requests)
        except RuntimeError:  # changed by another thread while read: as if none
            return False
        mine = rank(self)
        return any(rank(request) < mine for request in held if request.id != self.id)

    def on_failure(self, exc_info: Any, send_failed_event: bool = True,
                   return_ok: bool = False) -> Any:
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        if isinstance(exc, RunsElsewhere):
            return self._wait()
        if isinstance(exc, Yielded):
            if not self._holds_higher():
                yielding.memory.gave_back(self.id,
                                          (self.delivery_info or {}).get("routing_key"))
        elif isinstance(exc, (WorkerLostError, SystemExit, KeyboardInterrupt)):
            self._let_go()
        return super().on_failure(exc_info, send_failed_event, return_ok)

    def _wait(self) -> None:
        """Hold the message until the run of its attempt elsewhere ends."""
        state.task_ready(self)
        waiting = getattr(self.task.app, "taskq_waiting", None)
        if waiting is None:  # not a taskq worker's consumer: the broker keeps it instead
            self.reject(requeue=True)
            return
        waiting.hold(self._message, self.id, running.attempt_of(self))

    def _let_go(self) -> None:
        if self.worker_pid is None or not self.hostname:
            return
        try:
            running.release(self.task.store, self.id, running.attempt_of(self),
                            running.holder(self.hostname, self.worker_pid))
        except Exception:  # noqa: BLE001 - the store is down: the lease runs out by itself
            log.debug("could not release the run lease of %s", self.id, exc_info=True)
