"""Submitting a task: validate, record it, then publish it to its queue."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from taskq import params as param_schema
from taskq import records, topology
from taskq.config import Settings, TaskType, did_you_mean
from taskq.errors import InvalidParameters, UsageError
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
    try:
        return settings.resolve_priority(priority)
    except KeyError:
        raise UsageError(f"unknown priority {priority!r}; use one of "
                         f"{', '.join(settings.priorities)}") from None


def prepare(settings: Settings, request: SubmitRequest) -> TaskRecord:
    """Validate a request completely and build its record; touches no server."""
    task_type = resolve_type(settings, request.type)
    priority = resolve_priority(settings, request.priority)
    if not 0 <= request.delay <= MAX_DELAY:
        raise InvalidParameters([f"delay: must be between 0 and {MAX_DELAY:g} seconds"])
    clean = param_schema.validate(task_type, request.params)
    now = time.time()
    return TaskRecord(
        id=records.new_id(), type=task_type.name, priority=priority,
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
