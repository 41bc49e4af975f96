"""Submitting a task: validate, record it, then publish it to its queue."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from taskq import errors, records, topology
from taskq import params as param_schema
from taskq.config import Settings, TaskType, did_you_mean, mask_url
from taskq.errors import BrokerUnavailable, InvalidParameters, UsageError
from taskq.records import TaskRecord
from taskq.request import SubmitRequest

if TYPE_CHECKING:
    from taskq.runtime import Runtime

# Longest allowed --delay: a week. Delayed tasks wait in a worker's memory until due.
MAX_DELAY = 7 * 24 * 3600.0


def resolve_type(settings: Settings, name: str) -> TaskType:
    try:
        return settings.resolve_type(name)
    except KeyError:
        names = sorted(settings.task_types) + sorted(settings.aliases)
        raise UsageError(f"unknown task type {name!r}{did_you_mean(name, names)}; "
                         f"known: {', '.join(sorted(settings.task_types))}") from None


def resolve_priority(settings: Settings, priority: str | None) -> str:
    if priority is None:
        return settings.default_priority
    if priority not in settings.priorities:
        raise UsageError(f"unknown priority {priority!r}; use one of "
                         f"{', '.join(settings.priorities)}")
    return priority


def prepare(settings: Settings, request: SubmitRequest) -> TaskRecord:
    """Validate a request completely and build its record; touches no server."""
    task_type = resolve_type(settings, request.type)
    priority = resolve_priority(settings, request.priority)
    if not 0 <= request.delay <= MAX_DELAY:
        raise InvalidParameters([f"delay: must be between 0 and {MAX_DELAY:g} seconds"])
    clean = param_schema.validate(task_type, request.params)
    now = time.time()
    return TaskRecord(
        id=str(uuid.uuid4()), type=task_type.name, priority=priority,
        queue=topology.queue_name(settings, task_type.name, priority),
        state=records.SCHEDULED if request.delay else records.QUEUED, params=clean,
        submitted_at=now, eta=now + request.delay if request.delay else None,
    )


def submit(runtime: Runtime, request: SubmitRequest, retry_of: str | None = None) -> TaskRecord:
    """Record then publish; if publishing fails the record is removed, so none claims QUEUED."""
    from taskq.publish import publisher

    record = prepare(runtime.settings, request)
    record.retry_of = retry_of
    publisher(runtime).send([record])
    return record


def publish(runtime: Runtime, record: TaskRecord, delay: float) -> None:
    """Celery's own send_task: the path for delayed tasks and for brokers without a fast one."""
    runtime.celery.send_task(
        topology.task_name(record.type), kwargs=record.params, task_id=record.id,
        queue=record.queue, routing_key=record.queue, countdown=delay or None,
    )


def broker_unavailable(runtime: Runtime, exc: BaseException) -> BrokerUnavailable | None:
    """The error to show for a failed publish, if it was a connection failure."""
    if isinstance(exc, BrokerUnavailable):
        return exc
    if isinstance(exc, Exception) and _is_connection_error(exc):
        return BrokerUnavailable("broker", mask_url(runtime.broker_url) or "", errors.reason(exc))
    return None


def _is_connection_error(exc: Exception) -> bool:
    import redis
    from kombu.exceptions import OperationalError

    return isinstance(exc, OperationalError | OSError | ConnectionError | redis.ConnectionError
                      | redis.TimeoutError)
