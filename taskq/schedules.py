"""Periodic schedules: their definition, its validation, and when each tick falls."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from taskq.config import Settings, TaskType

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

KEYS = ("type", "parameters", "priority", "cron", "timezone", "interval", "catch_up")
CATCH_UP = ("skip", "once")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_INTERVAL = 1.0
MAX_INTERVAL = 366 * 86400.0  # a year (and a day)
MAX_CRON_LENGTH = 200


@dataclass(frozen=True)
class Schedule:
    """One periodic task: what to submit, and either a cron expression (in a time zone) or
    an interval in seconds. `catch_up`: what a tick missed while no scheduler ran becomes
    (skip: nothing; once: one task, when a scheduler runs again)."""

    name: str
    type: str
    parameters: dict[str, Any] = field(default_factory=dict)
    priority: str = "normal"
    cron: str | None = None
    timezone: str = "UTC"
    interval: float | None = None
    catch_up: str = "skip"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def every(self) -> str:
        """How often, for people: `*/5 * * * * (Europe/Paris)` or `every 30 s`."""
        if self.cron is not None:
            return f"{self.cron} ({self.timezone})"
        return f"every {self.interval:g} s"


def parse(settings: Settings, name: Any, raw: Any, path: str) -> tuple[Schedule | None,
                                                                         list[str]]:
    """A Schedule from a mapping (a config entry, a CLI or API request), or every problem
    with its path; the parameters are checked against the type's schema."""
    problems: list[str] = []
    if not isinstance(name, str) or not NAME.fullmatch(name):
        problems.append(f"{path}: a schedule's name is 1 to 64 letters, digits, _ . - "
                        "(starting with a letter or digit)")
    if not isinstance(raw, dict):
        return None, [*problems, f"{path}: must be a mapping"]
    from taskq.errors import did_you_mean

    for key in raw:
        if key not in KEYS:
            problems.append(f"{path}.{key}: unknown key{did_you_mean(str(key), list(KEYS))}")
    task_type = _task_type(settings, raw.get("type"), f"{path}.type", problems)
    priority = _priority(settings, raw.get("priority"), f"{path}.priority", problems)
    cron, tz, interval = _timing(raw, path, problems)
    catch_up = raw.get("catch_up", "skip")
    if catch_up not in CATCH_UP:
        problems.append(f"{path}.catch_up: must be skip or once")
    params = _parameters(task_type, raw.get("parameters"), f"{path}.parameters", problems)
    if problems or task_type is None:
        return None, problems
    return Schedule(name=str(name), type=task_type.name, parameters=params,
                    priority=priority, cron=cron, timezone=tz, interval=interval,
                    catch_up=catch_up), []


def from_config(settings: Settings, raw: Any) -> Settings:
    """`settings` with the schedules declared under `schedules:`; ConfigError naming every
    problem."""
    import dataclasses

    from taskq.errors import ConfigError

    if raw is None:
        return settings
    if not isinstance(raw, dict):
        raise ConfigError(settings.source, ["schedules: must be a mapping of names"])
    found, problems = [], []
    for name, body in raw.items():
        schedule, wrong = parse(settings, name, body, f"schedules.{name}")
        problems.extend(wrong)
        if schedule is not None:
            found.append(schedule)
    if problems:
        raise ConfigError(settings.source, problems)
    return dataclasses.replace(settings, schedules=tuple(found))


def _task_type(settings: Settings, name: Any, path: str, problems: list[str]
               ) -> TaskType | None:
    if not isinstance(name, str):
        problems.append(f"{path}: required: a task type or alias")
        return None
    try:
        return settings.resolve_type(name)
    except KeyError:
        from taskq.errors import did_you_mean

        names = sorted(settings.task_types) + sorted(settings.aliases)
        problems.append(f"{path}: unknown task type {name!r}{did_you_mean(name, names)}")
        return None


def _priority(settings: Settings, name: Any, path: str, problems: list[str]) -> str:
    if name is None:
        return settings.default_priority
    if isinstance(name, str) and name.lower() in settings.priorities:
        return name.lower()
    problems.append(f"{path}: must be one of {', '.join(settings.priorities)}")
    return settings.default_priority


def _timing(raw: dict[str, Any], path: str, problems: list[str]
            ) -> tuple[str | None, str, float | None]:
    cron, interval, tz = raw.get("cron"), raw.get("interval"), raw.get("timezone", "UTC")
    if (cron is None) == (interval is None):
        problems.append(f"{path}: give either cron or interval (one of them)")
        return None, "UTC", None
    if interval is not None:
        if "timezone" in raw:
            problems.append(f"{path}.timezone: goes with cron, not with interval")
        return None, "UTC", _interval(interval, f"{path}.interval", problems)
    if not isinstance(tz, str) or not _zone_exists(tz):
        problems.append(f"{path}.timezone: unknown time zone {tz!r} (an IANA name such "
                        "as UTC or Europe/Paris)")
        tz = "UTC"
    return _cron(cron, f"{path}.cron", problems), tz, None


def _interval(value: Any, path: str, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not MIN_INTERVAL <= value <= MAX_INTERVAL:
        problems.append(f"{path}: must be a number of seconds from {MIN_INTERVAL:g} to "
                        f"{MAX_INTERVAL:.0f} (a year)")
        return None
    return float(value)


def _cron(value: Any, path: str, problems: list[str]) -> str | None:
    from croniter import croniter

    if not isinstance(value, str) or not 0 < len(value) <= MAX_CRON_LENGTH \
            or not value.isprintable() or len(value.split()) != 5 \
            or not croniter.is_valid(value):
        problems.append(f"{path}: not a cron expression of 5 fields (minute hour day month "
                        f"weekday), e.g. '*/5 * * * *': {str(value)[:60]!r}")
        return None
    return " ".join(value.split())


def _zone_exists(name: str) -> bool:
    if not name or not name.isprintable() or len(name) > 100 or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _parameters(task_type: TaskType | None, raw: Any, path: str, problems: list[str]
                ) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{path}: must be a mapping")
        return {}
    if task_type is None:
        return {}
    from taskq import params
    from taskq.errors import InvalidParameters

    try:
        return params.validate(task_type, raw)
    except InvalidParameters as exc:
        parent = path.removesuffix(".parameters")  # params' problems name parameters.<key>
        problems.extend(f"{parent}.{p}" if p.startswith("parameters") else f"{path}: {p}"
                        for p in exc.problems)
        return {}


def next_after(schedule: Schedule, moment: float, anchor: float) -> float:
    """The first tick strictly after `moment` (seconds since the epoch). An interval's ticks
    fall on anchor + k * interval; a cron expression's are read in its time zone."""
    if schedule.interval is not None:
        steps = math.floor((moment - anchor) / schedule.interval) + 1
        return anchor + max(steps, 0) * schedule.interval
    return _cron_next(schedule, moment)


def latest_at(schedule: Schedule, moment: float, anchor: float) -> float | None:
    """The last tick at or before `moment`, or None when there is none since `anchor`."""
    if schedule.interval is not None:
        steps = math.floor((moment - anchor) / schedule.interval)
        return anchor + steps * schedule.interval if steps >= 0 else None
    from croniter import croniter

    zone = ZoneInfo(schedule.timezone)
    start = datetime.fromtimestamp(moment + 1e-6, zone)
    tick = croniter(schedule.cron, start).get_prev(float)
    while _repeated_wall_time(schedule, tick):
        tick = croniter(schedule.cron, datetime.fromtimestamp(tick, zone)).get_prev(float)
    return tick if tick >= anchor else None


def _cron_next(schedule: Schedule, moment: float) -> float:
    from croniter import croniter

    zone = ZoneInfo(schedule.timezone)
    tick = croniter(schedule.cron, datetime.fromtimestamp(moment, zone)).get_next(float)
    while _repeated_wall_time(schedule, tick):
        tick = croniter(schedule.cron, datetime.fromtimestamp(tick, zone)).get_next(float)
    return float(tick)


def _repeated_wall_time(schedule: Schedule, tick: float) -> bool:
    """Whether `tick` is the second occurrence of a wall-clock time (clocks set back at the
    end of daylight saving time) for an expression with fixed hours: as cron does, a daily
    01:30 runs once that night, while an hourly or `*/5` expression runs at both."""
    assert schedule.cron is not None
    if schedule.cron.split()[1].startswith("*"):
        return False
    return datetime.fromtimestamp(tick, ZoneInfo(schedule.timezone)).fold == 1
