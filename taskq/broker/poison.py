"""Poison messages: a task message a worker cannot decode, or cannot hand to a pool process,
fails its task with the reason (a dead letter) instead of jamming the worker or vanishing.

The worker's hooks (taskq/broker/poison_hooks.py, and the Redis fetch in
taskq/broker/fetch/redis.py) build a `Poison`, call `quarantine`, then acknowledge the message;
nothing here knows Celery.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taskq import records
from taskq.errors import UnknownTask

if TYPE_CHECKING:
    from taskq.store import TaskStore

DETAIL_LIMIT = 300  # characters of the exception's text kept in the reason

log = logging.getLogger(__name__)

# A task id in a message's JSON text that could not be parsed as a whole.
_ID = re.compile(r'"(?:id|correlation_id)"\s*:\s*"([^"\\]{1,200})"')


@dataclass(frozen=True)
class Poison:
    """A message that cannot be run: its task id and queue as far as they could be read, what
    could not be done with it (`stage`, e.g. "decoded") and the error that stopped it."""

    task_id: str | None
    queue: str | None
    stage: str
    error: BaseException

    @property
    def reason(self) -> str:
        kind = type(self.error).__name__
        detail = str(self.error)
        if len(detail) > DETAIL_LIMIT:
            detail = detail[:DETAIL_LIMIT] + "…"
        return f"poison message: could not be {self.stage}: {kind}: {detail or kind}"


def quarantine(store: TaskStore, poison: Poison, worker: str | None = None) -> bool:
    """Record the poison message's task FAILURE with the reason (so a dead letter); True
    when written. A message whose task has no record (its submit was reported failed, or it
    was not sent through taskq) is dropped and counted, as a worker drops any such message
    (taskq/broker/tasks.py); one naming no task, or a task already final, is only logged."""
    log.error("task %s (queue %s): %s", poison.task_id, poison.queue, poison.reason)
    if not poison.task_id:
        return False
    try:
        outcome, _ = store.transition(
            poison.task_id, records.FAILURE, final=True, ride_out=True,
            finished_at=time.time(), error=poison.reason, exc_type=type(poison.error).__name__,
            traceback=None, next_attempt_at=None, worker=worker)
    except UnknownTask:  # an id no record can have
        outcome = 0
    if outcome == 0:
        log.warning("dropped task %s: it has no record", poison.task_id)
        store.count_dropped()
    return outcome == 1


UNREADABLE = "the fetch script cannot read it as a message"


def redis_key(prefix: str) -> str:
    """The hash where the Redis fetch (taskq/broker/fetch/redis.py) parks the messages of this
    deployment's queues that it cannot read, until their tasks are failed."""
    return f"{prefix}:poison"


def read_raw(raw: bytes) -> tuple[str | None, str | None]:
    """(task id, routing key) of a Redis message's raw JSON, as far as they can be read."""
    text = raw.decode(errors="replace")
    try:
        payload = json.loads(text)
        headers, properties = payload.get("headers") or {}, payload.get("properties") or {}
        task_id = headers.get("id") or properties.get("correlation_id")
        queue = (properties.get("delivery_info") or {}).get("routing_key")
        return _text_or_none(task_id), _text_or_none(queue)
    except (ValueError, RecursionError, AttributeError, TypeError):
        found = _ID.search(text)
        return (found.group(1) if found else None), None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
