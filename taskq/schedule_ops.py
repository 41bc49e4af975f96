"""What `taskq schedule` and the API's /api/schedules do: list, add, pause, resume, remove,
run now; and the schedules' grid for a terminal."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from taskq.errors import InvalidSchedule, UsageError

if TYPE_CHECKING:
    from taskq.records import TaskRecord
    from taskq.runtime import Runtime
    from taskq.store.schedules import ScheduleStore, Stored

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).


def store(runtime: Runtime) -> ScheduleStore:
    """The deployment's schedules (those of the config as its workers brought them in)."""
    from taskq.store.schedules import ScheduleStore

    return ScheduleStore(runtime.store, runtime.settings)


def add(runtime: Runtime, name: Any, raw: dict[str, Any]) -> Stored:
    """Validate a schedule given as a mapping (the config's keys) and store it; UsageError
    (exit 2, HTTP 400) naming every problem, Conflict if the name is taken."""
    from taskq import schedules

    schedule, problems = schedules.parse(runtime.settings, name, raw, "schedule")
    if schedule is None:
        raise InvalidSchedule(problems)
    return store(runtime).add(schedule)


def from_cli(type_name: str | None, priority: str | None, pairs: list[str],
             params_json: str | None, cron: str | None, timezone: str | None,
             interval: str | None, catch_up: str | None) -> dict[str, Any]:
    """`schedule add`'s options as the mapping schedules.parse takes."""
    from taskq import request

    if type_name is None:
        raise UsageError("--type is required")
    params = request.from_cli(type_name, priority, pairs, params_json, 0.0).params
    raw: dict[str, Any] = {"type": type_name, "parameters": params}
    for key, value in (("priority", priority), ("cron", cron), ("timezone", timezone),
                       ("catch_up", catch_up)):
        if value is not None:
            raw[key] = value
    if interval is not None:
        raw["interval"] = _seconds(interval)
    return raw


def _seconds(text: str) -> float | str:
    """--interval as a number (left as text when it is not one: parse names the problem)."""
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def run_now(runtime: Runtime, name: str) -> TaskRecord:
    """Submit the schedule's task at once (a task of its own, not one of its ticks)."""
    from taskq.request import SubmitRequest
    from taskq.submit import submit

    stored = store(runtime).get(name)
    schedule = stored.schedule
    return submit(runtime, SubmitRequest(type=schedule.type, priority=schedule.priority,
                                         params=dict(schedule.parameters)))
