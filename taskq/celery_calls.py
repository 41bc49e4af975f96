"""Celery's own publishing calls (send_task, apply_async, delay, `celery call`) as taskq submits.

A task of a taskq type published through Celery's API goes through taskq's submit path
(validation, record, priority queue), so `taskq status`, `list` and the dead-letter tools see
it. What taskq cannot honour is refused with a UsageError, never published without a record.
Internal sends that must stay raw (the publisher's own, a worker's retry, a test) pass
`taskq_raw=True`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from celery import Celery

from taskq import topology
from taskq.errors import UsageError
from taskq.request import SubmitRequest

if TYPE_CHECKING:
    from taskq.config import Settings
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

# Options of send_task that change nothing taskq keeps: how Celery hands the call over.
HARMLESS = frozenset({"producer", "connection", "router", "result_cls", "add_to_parent",
                      "task_type", "ignore_result", "retry", "retry_policy", "publisher",
                      "retries", "replaced_task_nesting", "root_id", "parent_id"})
# Options taskq reads; every other one given a value is refused.
READ = frozenset({"countdown", "eta", "task_id", "priority", "queue", "routing_key",
                  "exchange", "serializer"})


class TaskqCelery(Celery):  # type: ignore[misc]
    """taskq's Celery app: send_task (and so apply_async, delay and `celery call`) submits a
    task of a taskq type as `taskq submit` does; `taskq_raw=True` publishes as Celery would."""

    # Set by taskq.broker.app.create_app, called by the runtime with this class
    taskq_settings: Settings | None = None
    taskq_runtime: Runtime | None = None

    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any
                  ) -> Any:
        raw = options.pop("taskq_raw", False)
        settings = self.taskq_settings
        type_name = _type_of(settings, name)
        runtime = self.taskq_runtime
        if raw or settings is None or runtime is None or type_name is None:
            return super().send_task(name, args, kwargs, **options)
        from taskq.submit import submit  # when used: a worker's app never loads the submit path

        request, task_id = to_request(settings, type_name, args, kwargs, options)
        record = submit(runtime, request, task_id=task_id)
        result_cls = options.get("result_cls") or self.AsyncResult
        return result_cls(record.id, app=self)


def _type_of(settings: Settings | None, task_name: str) -> str | None:
    """The taskq type a Celery task name stands for; None for any other task."""
    if settings is None:
        return None
    return next((name for name in settings.task_types
                 if topology.task_name(name) == task_name), None)


def to_request(settings: Settings, type_name: str, args: Any, kwargs: Any,
               options: Mapping[str, Any]) -> tuple[SubmitRequest, str | None]:
    """The submit a send_task call stands for, and its task id; UsageError naming every
    option taskq cannot honour."""
    given = {k: v for k, v in options.items() if v is not None and not _omitted(v)}
    declared = settings.task_types[type_name]
    for name in ("time_limit", "soft_time_limit"):  # apply_async passes the task's own
        if name in given and given[name] == getattr(declared, name):
            del given[name]
    problems = [f"{name}={given[name]!r}: not supported by taskq (it would be ignored)"
                for name in sorted(given) if name not in HARMLESS | READ]
    if args:
        problems.append("args: taskq tasks take keyword arguments only (kwargs=...)")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        problems.append("kwargs: must be a mapping of parameter names to values")
    if given.get("exchange") not in (None, ""):
        problems.append("exchange: taskq routes by priority; leave it unset")
    if given.get("serializer") not in (None, "json"):
        problems.append("serializer: taskq messages are JSON")
    priority = _priority(settings, type_name, given, problems)
    delay = _delay(given, problems)
    if problems:
        raise UsageError(f"cannot submit {topology.task_name(type_name)} through Celery: "
                         + "; ".join(problems))
    request = SubmitRequest(type=type_name, priority=priority, params=dict(kwargs or {}),
                            delay=delay)
    return request, given.get("task_id")


def _omitted(value: Any) -> bool:
    # Celery's sentinel for an option not passed (expires, time_limit): a bare object().
    return type(value) is object


def _priority(settings: Settings, type_name: str, given: Mapping[str, Any],
              problems: list[str]) -> str | None:
    """The priority named by `priority` (a name, e.g. "high") or by a queue of the type."""
    chosen: set[str] = set()
    named = given.get("priority")
    if named is not None:
        if isinstance(named, str) and named in settings.priorities:
            chosen.add(named)
        else:
            problems.append(f"priority={named!r}: use one of {', '.join(settings.priorities)}"
                            " (taskq priorities are names, not numbers)")
    for option in ("queue", "routing_key"):
        queue = getattr(given.get(option), "name", given.get(option))
        if queue is None:
            continue
        found = [p for p in settings.priorities
                 if topology.queue_name(settings, type_name, p) == queue]
        if found:
            chosen.update(found)
        else:
            queues = [topology.queue_name(settings, type_name, p) for p in settings.priorities]
            problems.append(f"{option}={queue!r}: not a queue of {type_name}; use one of "
                            f"{', '.join(queues)} or priority=")
    if len(chosen) > 1:
        problems.append(f"priority, queue and routing_key disagree: {', '.join(sorted(chosen))}")
    return next(iter(chosen)) if len(chosen) == 1 else None


def _delay(given: Mapping[str, Any], problems: list[str]) -> float:
    """Seconds from now, from countdown or eta (a datetime or an ISO 8601 text)."""
    countdown, eta = given.get("countdown"), given.get("eta")
    if countdown is not None and eta is not None:
        problems.append("countdown and eta: give one of them")
        return 0.0
    if eta is not None:
        when = _datetime(eta)
        if when is None:
            problems.append(f"eta={eta!r}: must be a datetime")
            return 0.0
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)  # as Celery reads it (enable_utc)
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
    if countdown is None:
        return 0.0
    if isinstance(countdown, bool) or not isinstance(countdown, int | float):
        problems.append(f"countdown={countdown!r}: must be a number of seconds")
        return 0.0
    return max(0.0, float(countdown))


def _datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, dt.datetime) else None
