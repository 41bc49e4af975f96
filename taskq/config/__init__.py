"""Loads config/celery.yaml and TASKQ_* overrides into frozen, validated settings."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from taskq.errors import ConfigError, UsageError, did_you_mean

if TYPE_CHECKING:
    from taskq.schedules import Schedule

BUILTIN_TYPES = {
    "data_processing": ("data", "taskq.work.data:process"),
    "email_sending": ("email", "taskq.work.email:send"),
    "file_processing": ("file", "taskq.work.files:process"),
}
PARAM_KINDS = ("string", "integer", "number", "boolean", "list", "object")
ENV_OVERRIDES = {
    "TASKQ_HOME": ("home",),
    "TASKQ_BROKER_URL": ("broker_url",),
    "TASKQ_RESULT_BACKEND": ("result_backend",),
    "TASKQ_SMTP_URL": ("smtp", "url"),
    "TASKQ_FILES_ROOT": ("files", "root"),
    "TASKQ_KEY_PREFIX": ("key_prefix",),
    "TASKQ_LOG_FORMAT": ("logging", "format"),
    "TASKQ_API_TOKEN": ("api", "token"),
}
# Flower's basic auth: user:password, neither part empty nor holding spaces.
BASIC_AUTH = re.compile(r"^[^:\s]+:\S+$")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff: float = 1.0
    backoff_max: float = 60.0
    jitter: bool = True


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a custom task type."""

    kind: str
    required: bool = False
    default: Any = None


@dataclass(frozen=True)
class TaskType:
    name: str
    alias: str | None
    function: str
    retry: RetryPolicy
    time_limit: float | None
    soft_time_limit: float | None
    rate_limit: str | None
    parameters: Mapping[str, ParamSpec] | None = None  # None: a built-in schema
    key_window: float = 86400.0  # seconds an idempotency key names its first task
    rate_burst: int = 1  # tasks of a global rate limit that may start at once

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_TYPES


@dataclass(frozen=True)
class WorkerProfile:
    name: str
    types: tuple[str, ...]
    priorities: tuple[str, ...]
    concurrency: int


@dataclass(frozen=True)
class SmtpSettings:
    url: str | None
    sender: str
    timeout: float


@dataclass(frozen=True)
class ApiSettings:
    """The REST sidecar (`taskq api`)."""

    host: str = "127.0.0.1"
    port: int = 5000
    token: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576


@dataclass(frozen=True)
class FlowerSettings:
    """Flower (`taskq flower`); basic_auth is "user:password" or None."""

    port: int = 5555
    basic_auth: str | None = None


@dataclass(frozen=True)
class Settings:
    """The effective configuration; built once by load() and passed to whatever needs it."""

    source: str
    home: Path
    broker_url: str | None
    result_backend: str | None
    key_prefix: str
    record_ttl: int
    priorities: tuple[str, ...]
    default_priority: str
    task_types: Mapping[str, TaskType]
    workers: Mapping[str, WorkerProfile]
    smtp: SmtpSettings
    files_root: Path
    output_dir: str
    log_format: str
    log_level: str
    aliases: Mapping[str, str] = field(default_factory=dict)
    api: ApiSettings = field(default_factory=ApiSettings)
    flower: FlowerSettings = field(default_factory=FlowerSettings)
    schedules: tuple[Schedule, ...] = ()  # declared under `schedules:` (taskq/schedules.py)
    # starvation guard: seconds a task of a priority may wait before it is taken as if it
    # had the next priority up (taskq/broker/starvation.py); a priority not named has none
    max_wait: Mapping[str, float] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return self.broker_url is None

    def resolve_type(self, name: str) -> TaskType:
        """Return the task type called `name` or by its alias, in any case (`EMAIL` is
        `email`); KeyError if there is none."""
        key = name.lower()  # every name is declared in lower case (config_schema)
        return self.task_types[self.aliases.get(key, key)]

    def resolve_priority(self, name: str) -> str:
        """The priority called `name`, in any case; KeyError if there is none."""
        if name.lower() not in self.priorities:
            raise KeyError(name)
        return name.lower()

    def public_dict(self) -> dict[str, Any]:
        """The settings as plain data with every password masked (for `config show`)."""
        from taskq.config.view import settings_to_dict

        return settings_to_dict(self)


def default_home(env: Mapping[str, str]) -> Path:
    state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "taskq"


def find_config(env: Mapping[str, str]) -> Path:
    """TASKQ_CONFIG, else ./config/celery.yaml, else the copy shipped with taskq."""
    if env.get("TASKQ_CONFIG"):
        return Path(env["TASKQ_CONFIG"])
    package = Path(__file__).resolve().parents[1]  # taskq/ (this is taskq/config/__init__.py)
    for candidate in (
        Path.cwd() / "config" / "celery.yaml",
        package.parent / "config" / "celery.yaml",  # a checkout's
        package / "defaults" / "celery.yaml",  # the wheel's (pyproject.toml force-include)
    ):
        if candidate.is_file():
            return candidate
    raise ConfigError("(no file)", ["no config/celery.yaml found; set TASKQ_CONFIG"])


def load(env: Mapping[str, str] | None = None, path: Path | None = None,
         overrides: Mapping[str, str | None] | None = None) -> Settings:
    """Read, override from the environment, validate and freeze the configuration.
    `overrides` (the Python API's): the TASKQ_* overrides by their lower-case names without
    the prefix (broker_url=...), applied over the environment's."""
    env = os.environ if env is None else env
    if overrides:
        env = {**env, **_override_vars(overrides)}
    path = path or find_config(env)
    raw = _read(path)
    if not isinstance(raw, dict):
        raise ConfigError(str(path), ["top level: must be a mapping"])
    if _deeper_than(raw, MAX_DEPTH):
        raise ConfigError(str(path), [f"nested deeper than {MAX_DEPTH} levels"])
    _apply_env(raw, env)
    from taskq.config.schema import build

    return build(raw, str(path), env)


MAX_DEPTH = 16  # levels of mappings and lists in the file; the schema itself needs 5


def _read(path: Path) -> Any:
    """The file's YAML as data; ConfigError (one line) when it cannot be read as such."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"not UTF-8 text: {exc.reason} at byte {exc.start}"]
                          ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}".splitlines()[0]]) from None
    except RecursionError:
        raise ConfigError(str(path), [f"nested deeper than {MAX_DEPTH} levels"]) from None


class _TooDeep(Exception):
    """Raised inside _deeper_than to stop at the first container past the limit."""


def _deeper_than(value: Any, limit: int) -> bool:
    """True if `value` has more than `limit` levels of mappings and lists. Each container is
    measured once, however often YAML aliases repeat it; one inside itself is endless. The
    walk stops past the limit, so its recursion stays within limit + 1 calls."""
    heights: dict[int, float] = {}

    def height(item: Any, depth: int) -> float:
        if not isinstance(item, dict | list):
            return 0
        if depth > limit:
            raise _TooDeep
        known = heights.get(id(item))
        if known is None:
            heights[id(item)] = math.inf  # while measured: met again inside itself, endless
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            known = 1 + max((height(child, depth + 1) for child in children), default=0)
            heights[id(item)] = known
        if depth - 1 + known > limit:
            raise _TooDeep
        return known

    try:
        height(value, 1)
    except _TooDeep:
        return True
    return False


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for var, keys in ENV_OVERRIDES.items():
        if var not in env:
            continue
        node = raw
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[keys[-1]] = env[var] or None


def override_names() -> list[str]:
    """The names load()'s `overrides` takes: broker_url, result_backend, key_prefix, ..."""
    return [var.removeprefix("TASKQ_").lower() for var in ENV_OVERRIDES]


def _override_vars(overrides: Mapping[str, str | None]) -> dict[str, str]:
    names = override_names()
    unknown = [f"{name}: not a setting that can be overridden{did_you_mean(name, names)}; "
               f"use one of {', '.join(names)}" for name in overrides if name not in names]
    if unknown:
        raise ConfigError("(overrides)", unknown)
    return {f"TASKQ_{name.upper()}": "" if value is None else str(value)
            for name, value in overrides.items()}


def check_functions(settings: Settings) -> None:
    """Import every task type's function, as a worker will when it runs one; ConfigError
    naming each that cannot be imported (only `config check` does this: other commands
    never import the work)."""
    from taskq.errors import reason
    from taskq.work import load_function

    problems = []
    for task_type in settings.task_types.values():
        where = f"task_types.{task_type.name}.function"
        try:
            found = load_function(task_type.function)
        except Exception as exc:  # noqa: BLE001 - the user's module: any failure to import
            problems.append(f"{where}: cannot import {task_type.function} "
                            f"({type(exc).__name__}: {reason(exc)})")
            continue
        if not callable(found):
            problems.append(f"{where}: {task_type.function} is not a function")
    if problems:
        raise ConfigError(settings.source, problems)


def resolve_type(settings: Settings, name: str) -> TaskType:
    """The task type a user named (its name or an alias); unknown: a UsageError that lists
    the known ones. (Here, not in submit.py: a worker resolves its --type without importing
    the submit path's parameter checks.)"""
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


