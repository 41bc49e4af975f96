"""What a worker holds besides the tasks it runs: delayed (ETA) and rate-limited messages, at
most HOLD_AHEAD of them, and a delayed task given back to its queue when it falls due, so that
the fetch takes the highest priority waiting instead of running it ahead of a higher task.

Celery keeps a delayed message in the worker until it is due (`scheduled_requests`) and a
rate-limited one in its token bucket; neither counts as reserved, so a fetch that looked only
at reserved requests would take every delayed task of a queue, and run them all, in the order
they fell due, ahead of any higher task queued meanwhile. taskq's own delayed tasks and retries
wait in the due set instead (taskq/store/delayed.py); for what a worker can still hold (an ETA
message sent through Celery's API, a delivery waiting for its attempt's run elsewhere), it
takes a message only while a process is free and holds at most its processes plus HOLD_AHEAD
messages in every form (reserved, delayed, rate-limited).

Checked against Celery 5.7 (celery.worker.state's reserved, active and scheduled requests,
the consumer's task_buckets); tests/unit/test_library_internals.py fails when one changes shape.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from celery.worker import state
from celery.worker.consumer import Consumer

HOLD_AHEAD = 4  # messages a worker holds beyond its processes: not due yet, or rate-limited


def room(processes: int, reserved: int, waiting: int) -> int:
    """How many more messages a worker may take now: it needs a free process (`reserved` are
    running or about to), and holds at most `processes` + HOLD_AHEAD in every form
    (`waiting`: delayed or rate-limited)."""
    return min(processes - reserved, processes + HOLD_AHEAD - reserved - waiting)


def held_before_due(eta: datetime | str | None, taken_at: float | None) -> bool:
    """Whether a message was taken before its ETA (it waited in the worker), not after."""
    if eta is None or taken_at is None:
        return False
    when = datetime.fromisoformat(eta) if isinstance(eta, str) else eta
    if when.tzinfo is None:  # Celery writes UTC (enable_utc)
        when = when.replace(tzinfo=UTC)
    return taken_at < when.timestamp()


def mark_taken(message: Any) -> None:
    """Note when the worker took `message` (read by held_before_due)."""
    message.taskq_taken_at = time.time()


def handing_over(within: float) -> list[str]:
    """The queues of the tasks the worker took in the last `within` seconds that no process
    has accepted yet (normally a moment after the take; older ones are left out, so a pool
    that never accepts one cannot hold the fetch back)."""
    try:
        held = tuple(state.reserved_requests)
    except RuntimeError:  # changed by another thread while read: none this time
        return []
    since = time.time() - within
    return [(request.delivery_info or {}).get("routing_key") or "" for request in held
            if request not in state.active_requests
            and getattr(request.message, "taskq_taken_at", 0) > since]


def waiting(consumer: Any) -> int:
    """Messages the worker holds that are not reserved: delayed, in a rate-limit bucket, or
    waiting for their attempt's run elsewhere to end (taskq/broker/running.py)."""
    limited = sum(len(bucket.contents) for bucket in consumer.task_buckets.values()
                  if bucket is not None)
    waits = len(getattr(consumer.app, "taskq_waiting", None) or ())
    return len(state.scheduled_requests) + limited + waits


class HoldingConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, giving a delayed task back to its queue when it falls due."""

    def apply_eta_task(self, task: Any) -> None:
        if not self._give_back(task):
            super().apply_eta_task(task)

    def _limit_post_eta(self, request: Any, bucket: Any, tokens: int) -> Any:
        if not self._give_back(request):
            return super()._limit_post_eta(request, bucket, tokens)
        return None

    def _give_back(self, request: Any) -> bool:
        """A task that waited here for its ETA goes back to the head of its queue (requeued
        in its place), and the fetch takes the highest priority waiting; taken again, it is
        due and runs."""
        if not held_before_due(request.eta, getattr(request.message, "taskq_taken_at", None)):
            return False
        self.qos.decrement_eventually()  # as Celery's own apply_eta_task does
        state.task_ready(request)  # no longer scheduled here
        request.reject(requeue=True)
        return True
