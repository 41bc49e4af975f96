"""Moves delayed tasks and retries to their queues when due: every worker runs a mover (a
thread of its main process), and however many run, each due task is published by one
(taskq/store/delayed.py). A retry's message carries the attempts made (Celery's `retries`), so its
delivery claims the next attempt.

A take claims the due tasks and marks their records QUEUED in one atomic step; the mover then
publishes them and drops its claims. A mover that dies in between (SIGKILL, a lost broker)
publishes nothing more, and once its claims lapse (delayed.CLAIM_LEASE) the next take hands
its tasks to another mover: nothing is lost. A mover that published and died before dropping
its claims has its tasks published again (at least once): the record decides, so a copy of a
task that already ended is dropped by the worker that takes it.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from taskq import records
from taskq.broker.publish.base import celery_send
from taskq.broker.thread_step import ThreadStep
from taskq.store import delayed

if TYPE_CHECKING:
    from taskq.runtime import Runtime

MOVE_EVERY = 0.5  # seconds between a worker's looks at the due set, at most
MOVE_SOON = 0.01  # seconds to the next look, at least (the earliest due task's time is near)

log = logging.getLogger(__name__)


def move_due(runtime: Runtime, now: float | None = None) -> int:
    """Publish the tasks due by `now` (and those a dead mover left), TAKE_SIZE at a time, until
    none is left; returns how many were published."""
    moved = 0
    while True:
        taken = delayed.take(runtime.store, now)
        if not taken:
            return moved
        publish(runtime, taken)
        delayed.release(runtime.store, taken)
        moved += len(taken)
        if len(taken) < delayed.TAKE_SIZE:
            return moved


def publish(runtime: Runtime, task_ids: list[str]) -> None:
    """Publish taken tasks to their queues, on one producer, without Celery's retries: a
    failure leaves their claims to lapse and another take to publish them."""
    found = runtime.store.get_many(task_ids)
    retries = delayed.retries_of(runtime.store, task_ids)
    with runtime.celery.producer_or_acquire() as producer:
        for record, done in zip(found, retries, strict=True):
            # not if cancelled meanwhile, or started (a dead mover's claim, published after all)
            if record is not None and record.state == records.QUEUED:
                celery_send(runtime, record, producer, retries=done)


def _pause(due_in: float | None) -> float:
    """Seconds until the next look: MOVE_EVERY, or less when a task falls due sooner."""
    if due_in is None:
        return MOVE_EVERY
    return min(MOVE_EVERY, max(due_in, MOVE_SOON))


class DueMover(ThreadStep):
    """Consumer step: moves due tasks every MOVE_EVERY seconds (sooner when one falls due
    sooner) while the worker consumes."""

    thread_name = "taskq-due-mover"

    def loop(self, runtime: Runtime, stop: threading.Event) -> None:
        failing, pause = False, MOVE_EVERY
        while not stop.wait(pause):
            try:
                move_due(runtime)
                pause = _pause(delayed.next_due_in(runtime.store))
            except Exception as exc:  # noqa: BLE001 - an outage: claims lapse, the next look retries
                if not failing:  # once an outage, not every look
                    log.warning("taskq: could not move due tasks (%s); trying again", exc)
                failing, pause = True, MOVE_EVERY
            else:
                failing = False
