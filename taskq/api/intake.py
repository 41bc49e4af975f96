"""Turns API bodies into validated task records, one or a batch, each problem with its path."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from taskq.bulk import prepare_labelled
from taskq.config import Settings, resolve_priority, resolve_type
from taskq.errors import InvalidParameters, UsageError
from taskq.records import TaskRecord
from taskq.request import from_api_body
from taskq.submit import prepare

MAX_BATCH = 1000  # tasks in one POST /api/tasks/batch


def one(settings: Settings, body: Any, path: str = "body") -> TaskRecord:
    """Parse and fully validate one task body and build its record, touching no server; every
    problem path starts at `path`."""
    request = from_api_body(body, path)
    for name, resolve in (("task_type", lambda: resolve_type(settings, request.type)),
                          ("priority", lambda: resolve_priority(settings, request.priority))):
        try:
            resolve()
        except UsageError as exc:
            raise InvalidParameters([f"{path}.{name}: {exc.message}"]) from None
    try:
        return prepare(settings, request)
    except InvalidParameters as exc:
        raise InvalidParameters([_under(path, p) for p in exc.problems]) from None


def _under(path: str, problem: str) -> str:
    return problem if problem.startswith(path) else f"{path}.{problem}"


def batch(settings: Settings, body: Any) -> list[TaskRecord]:
    """Validate every task of `{"tasks": [...]}` and build its record, before any is queued;
    all problems at once (up to bulk.MAX_PROBLEMS)."""
    return prepare_labelled((f"tasks[{i}]", partial(one, settings, item, f"tasks[{i}]"))
                            for i, item in enumerate(_items(body)))


def _items(body: Any) -> list[Any]:
    if not isinstance(body, Mapping):
        raise InvalidParameters(["body: must be a JSON object {\"tasks\": [...]}"])
    unknown = [f"body.{key}: unknown field" for key in body if key != "tasks"]
    items = body.get("tasks")
    if not isinstance(items, list) or not items:
        unknown.append("body.tasks: required, a non-empty list of task bodies")
    elif len(items) > MAX_BATCH:
        unknown.append(f"body.tasks: at most {MAX_BATCH} tasks in one batch")
    if unknown:
        raise InvalidParameters(unknown)
    return list(items or [])
