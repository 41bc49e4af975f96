"""Registers one Celery task per task type; bodies are thin and the records are kept here."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from celery import Celery, Task
from celery.exceptions import Ignore, Reject, Retry
from celery.utils.log import get_task_logger

from taskq import records, retry, topology, work
from taskq.broker import running, starvation, yielding
from taskq.config import RetryPolicy, Settings, TaskType
from taskq.errors import BrokerUnavailable, TransientError
from taskq.store import attempt_error, claim, holding
from taskq.work import WorkContext

logger = get_task_logger(__name__)

if TYPE_CHECKING:
    from taskq.store import TaskStore

# Errors worth another attempt; anything else fails the task at once.
TRANSIENT = (TransientError, ConnectionError, TimeoutError)


class Yielded(Reject):
    """Raised when a task about to start gives its process to a higher-priority task queued
    since it was taken; its message goes back to the head of its queue. (Its arguments are
    Reject's: the worker's main process unpickles it with them.)"""


class RunsElsewhere(Reject):
    """Raised when a task about to start finds its attempt running on another holder, whose
    worker keeps its run lease: the worker holds the message until that run ends
    (taskq/broker/running.py). (Requeued, as Reject, by a worker without taskq's request.)"""


class Unrecorded(Reject):
    """Raised when a worker's write of a task's record fails past the ride-out (the record
    store unreachable for longer than WRITE_RETRY): the message goes back to its queue, never
    acknowledged with its record behind, and the task runs again once it can be recorded."""


@contextmanager
def recorded() -> Iterator[None]:
    """Turn a record write that could not ride out an outage into Unrecorded."""
    try:
        yield
    except BrokerUnavailable as exc:
        raise Unrecorded(str(exc), requeue=True) from None


class TaskqTask(Task):  # type: ignore[misc]
    """Base of every taskq task: keeps the record in step with each attempt."""

    abstract = True
    Request = "taskq.broker.delivery:DeliveryRequest"  # loaded by workers only
    # Not named retry_policy: Celery already uses that name for its publish retries.
    taskq_retry: RetryPolicy = RetryPolicy()
    type_name: str = ""

    @property
    def store(self) -> TaskStore:
        return self.app.taskq_runtime.store  # type: ignore[no-any-return]

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        attempt = self.request.retries + 1
        worker = self.request.hostname
        holder = running.holder(worker, os.getpid()) if worker else ""
        no_yield = getattr(self.request, yielding.NO_YIELD, False)
        with recorded():
            outcome, _ = self.store.transition(
                task_id, records.STARTED, started_at=time.time(), attempts=attempt,
                worker=worker, next_attempt_at=None, fence=claim(attempt, holder),
                yield_to=[] if no_yield else self._outranking(), ride_out=True)
        if outcome == -5:
            # The same attempt runs elsewhere and its worker lives (a RabbitMQ connection
            # lost, a Redis broker lease run out): running it here would run it twice at once.
            raise RunsElsewhere("attempt runs elsewhere", requeue=True)
        if outcome == -4:
            # A stale copy of an attempt the record has moved past (a restored or redelivered
            # message): running it would run the task twice at once. Counted in the record.
            logger.warning("dropped task %s: attempt %d is superseded", task_id, attempt)
            raise Ignore()
        if outcome == -3:
            # A higher task was queued after this one was taken and has not started: it
            # gets the process (the worker fetches it next), this one goes back to its queue.
            raise Yielded("a higher-priority task is waiting", requeue=True)
        if outcome == 0:
            # No record: a message whose submit was reported failed (its broker took it but
            # never confirmed it, so the submit removed the record and said "not queued"), or
            # one not sent through taskq. Running it would do work nobody can see or expect.
            logger.warning("dropped task %s: it has no record (its submit was reported "
                           "failed, or it was not sent through taskq)", task_id)
            self.store.count_dropped()
            raise Ignore()
        if outcome == -1:
            # Cancelled (or already finished): Celery's revoke list is per worker and lost
            # on restart, so the record decides; Ignore acks the message without running it.
            raise Ignore()

    def _outranking(self) -> list[str]:
        """The QUEUED index sets of the tasks this worker serves before this one."""
        worker_plan = getattr(self.app, "taskq_plan", None)
        if worker_plan is None:  # not a taskq worker: no plan to rank by
            return []
        queue = (self.request.delivery_info or {}).get("routing_key") or ""
        if getattr(self.request, starvation.AGED, False):  # taken a priority up: ranks there
            queue = starvation.promoted_queue(self.app.taskq_settings, queue)
        ahead = topology.outranking(self.app.taskq_settings, worker_plan.types,
                                    worker_plan.priorities, queue)
        return [self.store.cell_key(records.QUEUED, t, p) for t, p in ahead]

    def retry(self, *args: Any, exc: BaseException | None = None, **options: Any) -> Any:
        """Retry with the declared policy's backoff: the failed attempt is recorded and the
        task waits in the due set (one write), its message acked; the mover publishes the
        next attempt when due (taskq/store/delayed.py). No worker holds a retry meanwhile."""
        done = self.request.retries
        if exc is not None and not retry.exhausted(self.taskq_retry, done):
            delay = options.get("countdown")
            if delay is None:
                delay = retry.backoff_delay(self.taskq_retry, done)
            with recorded():
                self.store.record_attempt_error(self.request.id, done + 1, str(exc),
                                                type(exc).__name__, time.time() + delay)
            raise Retry(exc=exc, when=delay)  # Celery acks the message and logs the retry
        # Out of retries: Celery raises `exc` (the task's max_retries, declared at
        # registration). Without an exception, Celery's own retry (published raw).
        return super().retry(*args, exc=exc, taskq_raw=True, **options)

    # A final write names its worker again: after a partition, the record may say that
    # another worker started the task since, but the first final write is the one kept.
    # (Unrecorded from these two leaves Celery's trace as it is, to the main process.)
    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        with recorded():
            self.store.update(task_id, records.SUCCESS, final=True, ride_out=True,
                              result=retval, fence=holding(self.request.retries + 1),
                              finished_at=time.time(), error=None, exc_type=None,
                              worker=self.request.hostname)

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                   einfo: Any) -> None:
        with recorded():
            record_failure(self.store, task_id, self.request.retries + 1, exc,
                           str(einfo.traceback) if einfo else None,
                           worker=self.request.hostname)


def record_failure(store: TaskStore, task_id: str, attempt: int, exc: BaseException,
                   traceback: str | None, worker: str | None = None) -> None:
    """Mark the task FAILURE after attempt number `attempt` (by `worker`, when known). One
    write, the attempt appended to the history in the same step: nothing to read first, so
    nothing that a backend outage could fail before the write rides it out."""
    named = {"worker": worker} if worker else {}  # (None would clear the field)
    store.update(task_id, records.FAILURE, final=True, ride_out=True, fence=holding(attempt),
                 attempt_error=attempt_error(attempt, str(exc), type(exc).__name__),
                 finished_at=time.time(), error=str(exc) or type(exc).__name__,
                 exc_type=type(exc).__name__, traceback=traceback, next_attempt_at=None,
                 **named)



def work_context(settings: Settings) -> WorkContext:
    return WorkContext(smtp=settings.smtp, outbox=settings.home / "outbox",
                       files_root=settings.files_root, output_dir=settings.output_dir)


def register_tasks(app: Celery, settings: Settings) -> None:
    """Declare one task per type, with its retry policy and time limits (its rate limit is
    global, kept by the fetch: taskq/store/rate_limits.py, not Celery's per worker)."""
    ctx = work_context(settings)
    for task_type in settings.task_types.values():
        _register(app, task_type, ctx)


def _register(app: Celery, task_type: TaskType, ctx: WorkContext) -> None:
    def body(self: TaskqTask, **params: Any) -> Any:
        progress = _progress_reporter(self.store, self.request.id, self.request.retries + 1)
        return work.run(task_type.function, task_type.builtin, params,
                        replace(ctx, progress=progress))

    app.task(
        body, bind=True, base=TaskqTask, name=topology.task_name(task_type.name),
        autoretry_for=TRANSIENT, taskq_retry=task_type.retry, type_name=task_type.name,
        max_retries=task_type.retry.max_retries, time_limit=task_type.time_limit,
        soft_time_limit=task_type.soft_time_limit,
        acks_late=True, reject_on_worker_lost=True,
        shared=False,  # each app keeps its own tasks: two apps in one process stay apart
    )


def _progress_reporter(store: TaskStore, task_id: str, attempt: int) -> Any:
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or done >= total:  # at most two writes a second
            last[0] = now
            with recorded():
                store.update(task_id, records.STARTED, ride_out=True, fence=holding(attempt),
                             progress={"done": done, "total": total})

    return report
