"""A submit request, parsed from CLI options or an API body into one plain shape."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from taskq.errors import InvalidParameters, UsageError
from taskq.payload import MAX_DEPTH

API_KEYS = ("task_type", "priority", "parameters", "delay", "key", "after", "after_any")


# Longest allowed --delay: a year. Delayed tasks wait in the record store (taskq/store/delayed.py),
# not in a worker, so the bound only catches a mistake (a timestamp given as a delay).
MAX_DELAY = 366 * 24 * 3600.0


@dataclass(frozen=True)
class SubmitRequest:
    type: str
    priority: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0
    key: str | None = None  # an idempotency key (taskq/store/keys.py)
    after: tuple[str, ...] = ()  # ids (or unique prefixes) of tasks to wait for
    after_any: bool = False  # run when they end, however they end (taskq/store/dependencies.py)


def from_cli(type_name: str, priority: str | None, pairs: list[str], params_json: str | None,
             delay: float, key: str | None = None, after: tuple[str, ...] = (),
             after_any: bool = False) -> SubmitRequest:
    """`--params JSON` first, then each `--param key=value` on top (values parsed as JSON
    when they parse, so `n=3` is a number and `to=a@b.c` stays a string)."""
    params: dict[str, Any] = {}
    if params_json:
        loaded = parse_json(params_json, "--params")
        if not isinstance(loaded, dict):
            raise UsageError("--params must be a JSON object")
        params.update(loaded)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param {pair!r}: expected key=value")
        params[name] = _value(name, value)
    return SubmitRequest(type=type_name, priority=priority, params=params, delay=delay, key=key,
                         after=after, after_any=after_any)


def wait_timeout(seconds: float | None) -> float | None:
    """--timeout, checked before anything is queued: seconds ≥ 0, or None (no limit)."""
    if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
        raise UsageError(f"--timeout must be a number of seconds ≥ 0, got {seconds:g}")
    return seconds


def _value(key: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # not JSON: the text itself
    except (ValueError, RecursionError):  # JSON too deep or too long to read: refused
        return parse_json(text, f"--param {key}")


def parse_json(text: str | bytes, what: str = "") -> Any:
    """`text` read as JSON; UsageError starting with `what` (e.g. "--params", "body") when
    it is not JSON, or is nested too deeply or holds a number too long for the parser: one
    line, never a RecursionError's traceback."""
    prefix = f"{what}: " if what else ""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}" if exc.lineno > 1 else \
            f"column {exc.colno}"
        raise UsageError(f"{prefix}not valid JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise UsageError(f"{prefix}nested too deeply to read (parameters may have at most "
                         f"{MAX_DEPTH} levels)") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{prefix}not UTF-8 text: {exc.reason}") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise UsageError(f"{prefix}cannot be read as JSON: {str(exc).split(':')[0]}") from None


def from_api_body(body: Any, path: str = "body") -> SubmitRequest:
    """The sidecar's (and `submit --from`'s) JSON object: task_type, priority, parameters,
    delay, key, after (a list of task ids), after_any."""
    plain = _plain_body(body)
    if plain is not None:
        return plain
    if not isinstance(body, Mapping):
        raise InvalidParameters([f"{path}: must be a JSON object"])
    problems = [f"{path}.{key}: unknown field" for key in body if key not in API_KEYS]
    type_name = body.get("task_type")
    if not isinstance(type_name, str) or not type_name:
        problems.append(f"{path}.task_type: required, a task type name")
    priority = body.get("priority")
    if priority is not None and not isinstance(priority, str):
        problems.append(f"{path}.priority: must be a string")
    params = body.get("parameters", {})
    if not isinstance(params, Mapping):
        problems.append(f"{path}.parameters: must be a JSON object")
    delay = _seconds(body.get("delay", 0) or 0)
    if delay is None:
        problems.append(f"{path}.delay: must be a number of seconds")
    key = body.get("key")
    if key is not None and not isinstance(key, str):
        problems.append(f"{path}.key: must be a string")
    after, after_any = after_from_body(body, path, problems)
    if problems:
        raise InvalidParameters(problems)
    return SubmitRequest(type=str(type_name), priority=priority, params=dict(params),
                         delay=delay or 0.0, key=key, after=after, after_any=after_any)


# The fields a plain body may have (one with `after` goes field by field: dependencies).
_PLAIN_KEYS = frozenset(("task_type", "priority", "parameters", "delay", "key"))


def _plain_body(body: Any) -> SubmitRequest | None:
    """The request of a body with nothing to report and no delay, in a few checks (a bulk
    submit reads one a line); None: from_api_body looks at it field by field."""
    if type(body) is not dict or not _PLAIN_KEYS.issuperset(body) \
            or body.get("delay") is not None:
        return None
    type_name, priority, key = body.get("task_type"), body.get("priority"), body.get("key")
    params = body.get("parameters", {})
    if type(type_name) is str and type_name and type(params) is dict \
            and (priority is None or type(priority) is str) \
            and (key is None or type(key) is str):
        return SubmitRequest(type_name, priority, dict(params), 0.0, key)
    return None


def _seconds(value: Any) -> float | None:
    """A JSON number as a float (its range is checked with the request); None if it is not a
    number. An integer too large for a float reads as infinity, which the range refuses."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf


def after_from_body(body: Mapping[str, Any], path: str, problems: list[str]
                    ) -> tuple[tuple[str, ...], bool]:
    """(after, after_any) of an API body or a `--from` line; what is wrong joins `problems`."""
    after = body.get("after")
    after = () if after is None else after
    if not isinstance(after, list | tuple):
        problems.append(f"{path}.after: must be a list of task ids")
        after = ()
    after_any = body.get("after_any", False)
    if not isinstance(after_any, bool):
        problems.append(f"{path}.after_any: must be true or false")
    return tuple(after), after_any is True


def parse_after(text: str | None) -> tuple[str, ...]:
    """`--after ID[,ID...]` as a tuple of ids."""
    if text is None:
        return ()
    ids = tuple(part.strip() for part in text.split(",") if part.strip())
    if not ids:
        raise UsageError("--after: name at least one task id (or a unique prefix of one)")
    return ids
