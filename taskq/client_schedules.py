"""The Python API's schedules: `Client.schedules` lists, adds, pauses, resumes, removes and
runs schedules now, as `taskq schedule` does (each schedule as `--json` prints it)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from taskq.task import Task

if TYPE_CHECKING:
    from taskq.client import Client
    from taskq.store.schedules import ScheduleStore

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).


class Schedules:
    """A client's schedules, stored in Redis: every host's schedulers see the same set.

    Raises NotFound for an unknown name, InvalidSchedule (a UsageError) naming every problem
    of a schedule added, Conflict for a name taken or a schedule the config declares.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def _store(self) -> ScheduleStore:
        from taskq import schedule_ops

        return schedule_ops.store(self._client.runtime)

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every schedule: name, type, parameters, timing, paused, next_run, runs, ..."""
        return [s.to_dict() for s in self._store().all()]

    def get(self, name: str) -> dict[str, Any]:
        return self._store().get(name).to_dict()

    def add(self, name: str, type: str, params: Mapping[str, Any] | None = None, *,  # noqa: A002
            priority: str | None = None, cron: str | None = None, timezone: str | None = None,
            interval: float | None = None, catch_up: str | None = None) -> dict[str, Any]:
        """Add a schedule: either `cron` (with an IANA `timezone`, default UTC) or `interval`
        seconds; `catch_up` "skip" (default) or "once" for ticks missed while none ran."""
        from taskq import schedule_ops

        given = {"priority": priority, "cron": cron, "timezone": timezone,
                 "interval": interval, "catch_up": catch_up}
        raw = {"type": type, "parameters": dict(params) if isinstance(params, Mapping)
               else params if params is not None else {},
               **{k: v for k, v in given.items() if v is not None}}
        return schedule_ops.add(self._client.runtime, name, raw).to_dict()

    def pause(self, name: str) -> dict[str, Any]:
        """No tick is submitted until it is resumed."""
        return self._store().pause(name).to_dict()

    def resume(self, name: str) -> dict[str, Any]:
        """From its next tick (with catch_up once: one task for the ticks paused over)."""
        return self._store().resume(name).to_dict()

    def remove(self, name: str) -> None:
        """Remove a schedule added at run time (one the config declares is removed there)."""
        self._store().remove(name)

    def run_now(self, name: str) -> Task:
        """Submit the schedule's task at once (its ticks go on as before)."""
        from taskq import schedule_ops

        client = self._client
        runtime = client.runtime
        with client._publishing:  # noqa: SLF001 - one submit at a time on the connection
            return Task.from_record(schedule_ops.run_now(runtime, name))
