"""The task types a deployment declares, as `taskq types` shows them: plain data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from taskq import params
from taskq.store import rate_limits

if TYPE_CHECKING:
    from taskq.config import Settings, TaskType


def types_json(settings: Settings, usage: Mapping[str, rate_limits.Usage] | None = None
               ) -> list[dict[str, Any]]:
    """Every task type: its alias, parameters (kind, required, default), retry policy, time
    and rate limits (with `usage`, how the rate limit is used now), and the function a
    custom type runs."""
    limits = rate_limits.limits_of(settings)
    found = []
    for task_type in settings.task_types.values():
        shown = type_json(task_type)
        now = (usage or {}).get(task_type.name)
        limit = limits.get(task_type.name)
        shown["rate"] = rate_limits.usage_json(now) if now else (
            rate_limits.limit_json(limit) if limit else None)
        found.append(shown)
    return found


def type_json(task_type: TaskType) -> dict[str, Any]:
    retry = task_type.retry
    return {
        "name": task_type.name,
        "alias": task_type.alias,
        "builtin": task_type.builtin,
        "function": None if task_type.builtin else task_type.function,
        "parameters": [
            {"name": name, "kind": field.kind, "required": field.required,
             "default": field.default if params.has_default(field) else None}
            for name, field in params.schema_of(task_type).items()],
        "retry": {"max_retries": retry.max_retries, "backoff": retry.backoff,
                  "backoff_max": retry.backoff_max, "jitter": retry.jitter},
        "time_limit": task_type.time_limit,
        "soft_time_limit": task_type.soft_time_limit,
        "rate_limit": task_type.rate_limit,
    }
