"""A submit request, parsed from CLI options or an API body into one plain shape."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from taskq.errors import InvalidParameters, UsageError

API_KEYS = ("task_type", "priority", "parameters", "delay")


@dataclass(frozen=True)
class SubmitRequest:
    type: str
    priority: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0


def from_cli(type_name: str, priority: str | None, pairs: list[str], params_json: str | None,
             delay: float) -> SubmitRequest:
    """`--params JSON` first, then each `--param key=value` on top (values parsed as JSON
    when they parse, so `n=3` is a number and `to=a@b.c` stays a string)."""
    params: dict[str, Any] = {}
    if params_json:
        try:
            loaded = json.loads(params_json)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--params is not valid JSON: {exc.msg} "
                             f"at column {exc.colno}") from None
        if not isinstance(loaded, dict):
            raise UsageError("--params must be a JSON object")
        params.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {pair!r}: expected key=value")
        params[key] = _value(value)
    return SubmitRequest(type=type_name, priority=priority, params=params, delay=delay)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def from_api_body(body: Any, path: str = "body") -> SubmitRequest:
    """The sidecar's (and `submit --from`'s) JSON object: task_type, priority, parameters, delay."""
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
    delay = body.get("delay", 0) or 0
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        problems.append(f"{path}.delay: must be a number of seconds")
    if problems:
        raise InvalidParameters(problems)
    return SubmitRequest(type=str(type_name), priority=priority, params=dict(params),
                         delay=float(delay))
