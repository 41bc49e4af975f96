"""The task record: what taskq keeps about every task from submit to its final state."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

QUEUED = "QUEUED"
SCHEDULED = "SCHEDULED"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
STATES = (QUEUED, SCHEDULED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED)
FINAL_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
_JSON_FIELDS = ("params", "result", "attempt_errors", "progress")
_FLOAT_FIELDS = ("submitted_at", "started_at", "finished_at", "eta", "next_attempt_at")


def new_id() -> str:
    """A new task id: a random (version 4) UUID as text, as str(uuid.uuid4()) makes it, at
    a third of its cost (a tenth of a bulk submit's CPU went to uuid4)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


@dataclass
class TaskRecord:
    id: str
    type: str
    priority: str
    queue: str
    state: str
    params: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    result: Any = None
    error: str | None = None
    exc_type: str | None = None
    traceback: str | None = None
    attempt_errors: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, Any] | None = None
    submitted_at: float | None = None
    eta: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    next_attempt_at: float | None = None
    worker: str | None = None
    retry_of: str | None = None
    retried_as: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> TaskRecord:
        values: dict[str, Any] = dict(data)
        for name in _JSON_FIELDS:
            if name in values:
                values[name] = json.loads(values[name])
        for name in _FLOAT_FIELDS:
            if name in values:
                values[name] = float(values[name])
        values["attempts"] = int(values.get("attempts", 0))
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in values.items() if k in known})


# json.dumps with options builds an encoder per call (~3 us); a new record has two fields.
_to_json = json.JSONEncoder(separators=(",", ":"), default=str).encode


def to_hash(values: dict[str, Any]) -> dict[str, str]:
    """Encode record fields for a Redis hash: JSON for structured ones, str otherwise."""
    return {name: _encoded(name, value) for name, value in values.items()
            if value is not None or name in _JSON_FIELDS}


def hash_pairs(record: TaskRecord) -> list[str]:
    """A record's fields, as to_hash encodes them, as a flat [field, value, ...] list,
    without the empty ones (a missing field reads as its default)."""
    out: list[str] = []
    for name in _FIELD_NAMES:
        value = getattr(record, name)
        if value is not None:
            out += (name, _encoded(name, value))
    return out


def _encoded(name: str, value: Any) -> str:
    return _to_json(value) if name in _JSON_FIELDS else str(value)


_FIELD_NAMES = tuple(TaskRecord.__dataclass_fields__)
