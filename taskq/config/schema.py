"""Validates the raw config mapping, collecting every problem with its path, and builds Settings."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
from taskq.errors import ConfigError, did_you_mean

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

# Global rate limits per task type (kept by taskq/store/rate_limits.py)
MAX_PER_SECOND = 10_000.0  # beyond that a Redis round trip per task is the limit anyway
MAX_BURST = 10_000
_RATE = re.compile(r"(\d{1,12}(?:\.\d{1,9})?)/([smh])")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0}

TOP_KEYS = ("home", "broker_url", "result_backend", "key_prefix", "record_ttl", "queues",
            "task_types", "workers", "smtp", "files", "logging", "api", "flower", "schedules")
TYPE_KEYS = ("alias", "function", "parameters", "retry", "time_limit", "soft_time_limit",
             "rate_limit", "rate_burst", "key_window")
RETRY_KEYS = ("max_retries", "backoff", "backoff_max", "jitter")
BROKER_SCHEMES = ("amqp", "pyamqp", "amqps", "redis", "rediss", "redis+socket")
BACKEND_SCHEMES = ("redis", "rediss", "unix", "redis+socket")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Upper bounds (config/celery.yaml documents each): beyond them a value overflows somewhere
# (Redis EXPIRE, a float backoff of 2**n, a socket timeout) or makes no sense.
MAX_RECORD_TTL = 10 * 365 * 86400  # ten years
MAX_RETRIES = 100
MAX_SECONDS = 7 * 86400.0  # backoff, backoff_max and time limits: a week
MAX_KEY_WINDOW = 30 * 86400.0  # how long an idempotency key may hold: a month
MAX_CONCURRENCY = 1024
MAX_SMTP_TIMEOUT = 600.0
MAX_BODY_BYTES = 1 << 30


class _Checker:
    """Reads values out of the raw mapping, noting every problem instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def section(self, raw: Any, path: str, allowed: tuple[str, ...] | None) -> dict[str, Any]:
        """Return the mapping at `path`; with `allowed`, every other key is a problem."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.fail(path, "must be a mapping")
            return {}
        for key in raw:
            if allowed is not None and key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                self.fail(where, "unknown key" + did_you_mean(str(key), list(allowed)))
        return raw

    def typed(self, raw: Mapping[str, Any], key: str, path: str, kind: type | tuple[type, ...],
              default: Any, *, minimum: float | None = None,
              maximum: float | None = None) -> Any:
        value = raw.get(key, default)
        where = f"{path}.{key}" if path else key
        if value is None:
            return default
        problem = _kind_problem(value, kind) or _range_problem(value, minimum, maximum)
        if problem:
            self.fail(where, problem)
            return default
        return value

    def url(self, value: Any, path: str, schemes: tuple[str, ...]) -> str | None:
        if value is None:
            return None
        scheme = str(value).split("://", 1)[0] if "://" in str(value) else ""
        if scheme not in schemes:
            self.fail(path, f"URL scheme must be one of {', '.join(schemes)}")
            return None
        problem = url_problem(str(value))
        if problem:
            self.fail(path, problem)
            return None
        return str(value)


def per_second(text: str) -> float:
    """Tasks a second of a rate such as 10/s, 100/m or 1000/h; ValueError names the problem."""
    found = _RATE.fullmatch(text)
    if found is None:
        raise ValueError("must look like 10/s, 100/m or 1000/h (a positive number of tasks)")
    rate = float(found.group(1)) / _UNIT[found.group(2)]
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError("must be more than 0 tasks")
    if rate > MAX_PER_SECOND:
        raise ValueError(f"must be at most {MAX_PER_SECOND:g}/s")
    return rate


def _kind_problem(value: Any, kind: type | tuple[type, ...]) -> str | None:
    if isinstance(value, bool) and kind is not bool:
        return f"must be {_kind_name(kind)}, not a boolean"
    if not isinstance(value, kind):
        return f"must be {_kind_name(kind)}, got {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    if isinstance(value, str) and "\0" in value:
        return "must not contain a NUL character"
    return None


def _range_problem(value: Any, minimum: float | None, maximum: float | None) -> str | None:
    if minimum is not None and value < minimum:
        return f"must be ≥ {minimum:g}"
    if maximum is not None and value > maximum:
        return f"must be ≤ {maximum:g}"
    return None


# What a Redis URL's database can be: the path (redis://host:6379/3) or ?db= (unix://).
_DB = re.compile(r"^[0-9]{1,9}$")


def url_problem(url: str) -> str | None:
    """What in a broker, backend or SMTP URL is not right (port, database), or None. A
    database the server does not have can only be known when connecting (exit 7)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # out of range, or not a number: then likely a password cut short
        port = 0 if parts.netloc.rpartition(":")[2].isdigit() else None
        if port is None:
            return ("port must be a number from 1 to 65535 (a password holding / ? # or @ "
                    "must be percent-encoded, e.g. / as %2F)")
    if port == 0:
        return "port must be a number from 1 to 65535"
    if parts.scheme in ("redis", "rediss", "unix", "redis+socket"):
        query = parse_qs(parts.query)
        dbs = query.get("db", []) + query.get("virtual_host", [])
        if parts.scheme in ("redis", "rediss") and parts.path.strip("/"):
            dbs.append(parts.path.strip("/"))
        if any(not _DB.match(db) for db in dbs):
            return f"database must be a number, e.g. {parts.scheme}://host:6379/0"
    return None


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return "a number"
    names = {int: "an integer", str: "a string", bool: "true or false", list: "a list"}
    return names.get(kind, kind.__name__)


def build(raw: dict[str, Any], source: str, env: Mapping[str, str]) -> Settings:
    """Validate `raw` (already overridden from env) and return Settings, or raise ConfigError."""
    c = _Checker()
    c.section(raw, "", TOP_KEYS)
    home_raw = c.typed(raw, "home", "", str, None)
    home = Path(home_raw).expanduser() if home_raw else default_home(env)
    broker = c.url(raw.get("broker_url"), "broker_url", BROKER_SCHEMES)
    backend = c.url(raw.get("result_backend"), "result_backend", BACKEND_SCHEMES)
    if raw.get("broker_url") and not raw.get("result_backend"):
        c.fail("result_backend", "required when broker_url is set (a redis:// URL)")
    prefix = c.typed(raw, "key_prefix", "", str, "taskq")
    if not re.match(r"^[A-Za-z0-9_.:-]+$", prefix):
        c.fail("key_prefix", "only letters, digits and _ . : - are allowed")
    priorities, default_priority, max_wait = _queues(c, raw.get("queues"))
    types = _task_types(c, raw.get("task_types"))
    workers = _workers(c, raw.get("workers"), types, priorities)
    smtp = _smtp(c, raw.get("smtp"))
    files = c.section(raw.get("files"), "files", ("root", "output_dir"))
    log = c.section(raw.get("logging"), "logging", ("format", "level"))
    log_format = c.typed(log, "format", "logging", str, "text")
    if log_format not in ("text", "json"):
        c.fail("logging.format", "must be text or json")
    log_level = str(c.typed(log, "level", "logging", str, "INFO")).upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        c.fail("logging.level", "must be DEBUG, INFO, WARNING or ERROR")
    root = c.typed(files, "root", "files", str, None)
    output_dir = c.typed(files, "output_dir", "files", str, "out")
    record_ttl = c.typed(raw, "record_ttl", "", int, 604800, minimum=60, maximum=MAX_RECORD_TTL)
    api, flower = _api(c, raw.get("api")), _flower(c, raw.get("flower"))
    if c.problems:
        raise ConfigError(source, c.problems)
    settings = Settings(
        source=source, home=home, broker_url=broker, result_backend=backend,
        key_prefix=prefix, record_ttl=record_ttl,
        priorities=priorities, default_priority=default_priority, task_types=types,
        workers=workers, smtp=smtp,
        files_root=Path(root).expanduser() if root else home / "files",
        output_dir=output_dir,
        log_format=log_format, log_level=log_level,
        aliases={t.alias: t.name for t in types.values() if t.alias},
        api=api, flower=flower, max_wait=max_wait,
    )
    from taskq.schedules import from_config

    return from_config(settings, raw.get("schedules"))


def _queues(c: _Checker, raw: Any) -> tuple[tuple[str, ...], str, dict[str, float]]:
    section = c.section(raw, "queues", ("priorities", "default_priority", "max_wait"))
    priorities = c.typed(section, "priorities", "queues", list, ["high", "normal", "low"])
    names = tuple(str(p) for p in priorities)
    for i, name in enumerate(names):
        if not _NAME.match(name):
            c.fail(f"queues.priorities[{i}]", "must be a lower-case name")
    if len(set(names)) != len(names) or not names:
        c.fail("queues.priorities", "must be a non-empty list of distinct names")
    default = c.typed(section, "default_priority", "queues", str, "normal")
    if names and default not in names:
        c.fail("queues.default_priority", f"must be one of {', '.join(names)}"
               + did_you_mean(default, list(names)))
    return names, default, _max_wait(c, section.get("max_wait"), names)


def _max_wait(c: _Checker, raw: Any, names: tuple[str, ...]) -> dict[str, float]:
    """The starvation guard: seconds per priority (never the highest: none is above it)."""
    found: dict[str, float] = {}
    for priority in c.section(raw, "queues.max_wait", names):
        seconds = c.typed(raw, priority, "queues.max_wait", (int, float), None, minimum=0.1,
                          maximum=MAX_SECONDS)
        if names and priority == names[0]:
            c.fail(f"queues.max_wait.{priority}", "the highest priority has none above it")
        elif seconds is not None and priority in names:
            found[str(priority)] = float(seconds)
    return found


def _task_types(c: _Checker, raw: Any) -> dict[str, TaskType]:
    section = c.section(raw, "task_types", None)
    types: dict[str, TaskType] = {}
    aliases: dict[str, str] = {}
    for name, body in section.items():
        path = f"task_types.{name}"
        if not _NAME.match(str(name)):
            c.fail(path, "type names are lower-case letters, digits and _")
            continue
        spec = _task_type(c, str(name), c.section(body, path, TYPE_KEYS), path)
        if spec.alias:
            if spec.alias in aliases or spec.alias in section:
                c.fail(f"{path}.alias", f"{spec.alias!r} is already used")
            aliases[spec.alias] = spec.name
        types[spec.name] = spec
    if not types:
        c.fail("task_types", "declare at least one task type")
    return types


def _task_type(c: _Checker, name: str, body: dict[str, Any], path: str) -> TaskType:
    builtin = BUILTIN_TYPES.get(name)
    function = c.typed(body, "function", path, str, builtin[1] if builtin else None)
    if function is None:
        c.fail(f"{path}.function", "required for a custom type (module:function)")
    elif not re.match(r"^[\w.]+:\w+$", function):
        c.fail(f"{path}.function", "must look like module.path:function")
    params = None
    if not builtin or "parameters" in body:
        if builtin:
            c.fail(f"{path}.parameters", "built-in types have a fixed schema")
        params = _parameters(c, body.get("parameters"), f"{path}.parameters")
    retry = c.section(body.get("retry"), f"{path}.retry", RETRY_KEYS)
    rpath = f"{path}.retry"
    policy = RetryPolicy(
        max_retries=c.typed(retry, "max_retries", rpath, int, 3, minimum=0,
                            maximum=MAX_RETRIES),
        backoff=float(c.typed(retry, "backoff", rpath, (int, float), 1.0, minimum=0,
                              maximum=MAX_SECONDS)),
        backoff_max=float(c.typed(retry, "backoff_max", rpath, (int, float), 60.0, minimum=0,
                                  maximum=MAX_SECONDS)),
        jitter=c.typed(retry, "jitter", rpath, bool, True),
    )
    rate = _rate(c, body, path)
    return TaskType(
        name=name, alias=c.typed(body, "alias", path, str, builtin[0] if builtin else None),
        function=function or "", retry=policy,
        time_limit=c.typed(body, "time_limit", path, (int, float), None, minimum=1,
                           maximum=MAX_SECONDS),
        soft_time_limit=c.typed(body, "soft_time_limit", path, (int, float), None, minimum=1,
                                maximum=MAX_SECONDS),
        rate_limit=rate, parameters=params,
        rate_burst=c.typed(body, "rate_burst", path, int, 1, minimum=1, maximum=MAX_BURST),
        key_window=float(c.typed(body, "key_window", path, (int, float), 86400.0, minimum=1,
                                 maximum=MAX_KEY_WINDOW)),
    )


def _rate(c: _Checker, body: dict[str, Any], path: str) -> str | None:
    rate = c.typed(body, "rate_limit", path, str, None)
    if rate is None:
        return None
    try:
        per_second(rate)
    except ValueError as exc:
        c.fail(f"{path}.rate_limit", str(exc))
        return None
    return str(rate)


def _parameters(c: _Checker, raw: Any, path: str) -> dict[str, ParamSpec]:
    specs: dict[str, ParamSpec] = {}
    for pname, body in c.section(raw, path, None).items():
        ppath = f"{path}.{pname}"
        spec = c.section(body, ppath, ("kind", "required", "default"))
        kind = c.typed(spec, "kind", ppath, str, "string")
        if kind not in PARAM_KINDS:
            c.fail(f"{ppath}.kind", f"must be one of {', '.join(PARAM_KINDS)}"
                   + did_you_mean(kind, list(PARAM_KINDS)))
        specs[str(pname)] = ParamSpec(kind=kind,
                                      required=c.typed(spec, "required", ppath, bool, False),
                                      default=spec.get("default"))
    return specs


def _workers(c: _Checker, raw: Any, types: Mapping[str, TaskType],
             priorities: tuple[str, ...]) -> dict[str, WorkerProfile]:
    section = c.section(raw, "workers", None)
    profiles: dict[str, WorkerProfile] = {}
    for name, body in section.items():
        path = f"workers.{name}"
        spec = c.section(body, path, ("types", "priorities", "concurrency"))
        wanted = spec.get("types", "all")
        if wanted == "all":
            wanted = list(types)
        elif not isinstance(wanted, list) or not wanted:
            c.fail(f"{path}.types", "must be \"all\" or a non-empty list of task types")
            wanted = []
        aliases = {t.alias: t.name for t in types.values() if t.alias}
        resolved = []
        for i, t in enumerate(wanted):
            full = aliases.get(str(t), str(t))
            if full not in types:
                c.fail(f"{path}.types[{i}]", f"unknown task type {t!r}"
                       + did_you_mean(str(t), list(types)))
            resolved.append(full)
        prios = c.typed(spec, "priorities", path, list, list(priorities))
        for i, p in enumerate(prios):
            if p not in priorities:
                c.fail(f"{path}.priorities[{i}]", f"unknown queue priority {p!r}"
                       + did_you_mean(str(p), list(priorities)))
        profiles[str(name)] = WorkerProfile(
            name=str(name), types=tuple(resolved),
            priorities=tuple(p for p in priorities if p in prios),
            concurrency=c.typed(spec, "concurrency", path, int, 1, minimum=1,
                                maximum=MAX_CONCURRENCY))
    return profiles


def _smtp(c: _Checker, raw: Any) -> SmtpSettings:
    section = c.section(raw, "smtp", ("url", "sender", "timeout"))
    url = c.url(section.get("url"), "smtp.url", ("smtp", "smtps"))
    return SmtpSettings(url=url, sender=c.typed(section, "sender", "smtp", str, "taskq@localhost"),
                        timeout=float(c.typed(section, "timeout", "smtp", (int, float), 10,
                                              minimum=0.1, maximum=MAX_SMTP_TIMEOUT)))


_ORIGIN = re.compile(r"^(\*|https?://[^/\s]+)$")


def _api(c: _Checker, raw: Any) -> ApiSettings:
    section = c.section(raw, "api", ("host", "port", "token", "cors_origins", "max_body_bytes"))
    default = ApiSettings()
    port = c.typed(section, "port", "api", int, default.port, minimum=1, maximum=65535)
    origins = c.typed(section, "cors_origins", "api", list, [])
    for i, origin in enumerate(origins):
        if not isinstance(origin, str) or not _ORIGIN.match(origin):
            c.fail(f"api.cors_origins[{i}]", "must be \"*\" or an origin like "
                   "https://app.example.com (scheme and host, no path)")
    # Blank is no token: " " must not count as auth for an open port; and a header's
    # surrounding spaces are not sent, so a token with them could never match.
    token = (c.typed(section, "token", "api", str, None) or "").strip()
    return ApiSettings(
        host=c.typed(section, "host", "api", str, default.host), port=port,
        token=token or None, cors_origins=tuple(str(o) for o in origins),
        max_body_bytes=c.typed(section, "max_body_bytes", "api", int, default.max_body_bytes,
                               minimum=1024, maximum=MAX_BODY_BYTES))


def _flower(c: _Checker, raw: Any) -> FlowerSettings:
    section = c.section(raw, "flower", ("port", "basic_auth"))
    port = c.typed(section, "port", "flower", int, FlowerSettings.port, minimum=1,
                   maximum=65535)
    auth = c.typed(section, "basic_auth", "flower", str, None)
    if auth is not None and not BASIC_AUTH.match(auth):
        c.fail("flower.basic_auth", "must look like user:password")
    return FlowerSettings(port=port, basic_auth=auth)
