"""Loads config/celery.yaml and TASKQ_* overrides into frozen, validated settings."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from taskq.config.settings import (
    BASIC_AUTH,
    BUILTIN_TYPES,
    PARAM_KINDS,
    ApiSettings,
    FlowerSettings,
    ParamSpec,
    RetryPolicy,
    Settings,
    SmtpSettings,
    TaskType,
    WorkerProfile,
    default_home,
)
from taskq.errors import ConfigError, UsageError, did_you_mean

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

# The settings' shape (settings.py) is part of this package's API: config.Settings.
__all__ = [
    "ApiSettings", "BASIC_AUTH", "BUILTIN_TYPES", "FlowerSettings", "PARAM_KINDS", "ParamSpec",
    "RetryPolicy", "Settings", "SmtpSettings", "TaskType", "WorkerProfile", "check_functions",
    "default_home", "find_config", "load", "override_names", "resolve_priority", "resolve_type",
]

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


