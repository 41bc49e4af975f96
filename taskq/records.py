"""The task record: what taskq keeps about every task from submit to its final state."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from taskq import json_fast
from taskq.random_hex import hex32

QUEUED = "QUEUED"
SCHEDULED = "SCHEDULED"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
WAITING = "WAITING"  # for the tasks it depends on to end (taskq/store/dependencies.py)
STATES = (WAITING, QUEUED, SCHEDULED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED)
FINAL_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
_JSON_FIELDS = ("params", "result", "attempt_errors", "progress", "after", "after_any")
_NAMING_FIELDS = ("id", "type", "priority", "queue", "state")  # the rest: "" reads as unset
_FLOAT_FIELDS = ("submitted_at", "started_at", "finished_at", "eta", "next_attempt_at")


ID_LENGTH = 36  # a UUID as text
MIN_ID_PREFIX = 6  # the shortest prefix taken for an id (as git takes short hashes)


def is_id_prefix(text: str) -> bool:
    """Whether `text` may be the start of a task id rather than a whole one: at least
    MIN_ID_PREFIX and fewer than ID_LENGTH hexadecimal digits and dashes."""
    return (MIN_ID_PREFIX <= len(text) < ID_LENGTH
            and all(c in "0123456789abcdef-" for c in text.lower()))


def new_id() -> str:
    """A new task id: a random (version 4) UUID as text, as str(uuid.uuid4()) makes it, at
    a third of its cost (a tenth of a bulk submit's CPU went to uuid4)."""
    h = hex32()
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
    key: str | None = None  # the idempotency key it was submitted with
    after: list[str] | None = None  # the ids of the tasks it waits for (dependencies.py)
    after_any: bool | None = None  # True: it runs however those end
    # Not stored: set on the record a submit returns when its key named an earlier task.
    deduplicated: bool = field(default=False, compare=False)

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        """The stored fields, and `deduplicated` only on a submit's repeat of a key."""
        data = asdict(self)
        if not self.deduplicated:
            del data["deduplicated"]
        return data

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> TaskRecord:
        """The record a hash holds. Never fails on an odd field (written by another program,
        an older taskq or by hand): what cannot be read is left at its default, or for
        `result` shown as the text stored (see read_json)."""
        values: dict[str, Any] = {k: v for k, v in data.items()
                                  if k in STORED_FIELDS and (v != "" or k in _NAMING_FIELDS)}
        for name in _NAMING_FIELDS:
            values.setdefault(name, "")
        for name in _JSON_FIELDS:
            if name in values:
                values[name] = _READERS[name](values[name])
        for name in _FLOAT_FIELDS:
            if name in values:
                values[name] = read_time(values[name])
        values["attempts"] = read_count(values.get("attempts"))
        return cls(**values)


# Reading stored fields: each reader returns what can be shown of a field, never raises.

READ_DEPTH = 100  # levels of a stored JSON value shown as data; deeper ones as their text
_LATEST_TIME = 253402300800.0  # 10000-01-01: later times cannot be shown as dates


def read_json(text: str) -> Any:
    """A stored JSON value; its text itself when it is not JSON or is nested deeper than
    READ_DEPTH (rendering it would exhaust the recursion limit, as parsing it may)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, too deep, a number too long
        return text
    # Counting brackets is quick, and when there are few the value cannot be deep.
    few = text.count("[") + text.count("{") <= READ_DEPTH
    return value if few or not _deeper_than(value, READ_DEPTH) else text


def _deeper_than(value: Any, limit: int) -> bool:
    """True if `value` has more than `limit` levels of lists and objects (iterative)."""
    level: list[tuple[Any, int]] = [(value, 1)]
    while level:
        item, depth = level.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            level.extend((child, depth + 1) for child in children
                         if isinstance(child, dict | list))
    return False


def _read_params(text: str) -> dict[str, Any]:
    value = read_json(text)
    return value if isinstance(value, dict) else {}


def _read_attempt_errors(text: str) -> list[dict[str, Any]]:
    value = read_json(text)
    entries = [dict(e) for e in value if isinstance(e, dict)] if isinstance(value, list) else []
    for entry in entries:
        entry["at"] = read_time(entry.get("at"))
    return entries


def _read_progress(text: str) -> dict[str, Any] | None:
    value = read_json(text)
    if isinstance(value, dict) and all(isinstance(value.get(k), int) and
                                       not isinstance(value.get(k), bool)
                                       for k in ("done", "total")):
        return value
    return None


def _read_after(text: str) -> list[str] | None:
    value = read_json(text)
    return [str(v) for v in value] if isinstance(value, list) else None


def _read_flag(text: str) -> bool | None:
    return True if read_json(text) is True else None


_READERS = {"params": _read_params, "result": read_json,
            "attempt_errors": _read_attempt_errors, "progress": _read_progress,
            "after": _read_after, "after_any": _read_flag}


def iso_time(ts: float | None) -> str | None:
    """An epoch time as every --json output and the API show times: ISO 8601, UTC, to the
    millisecond, with Z (as the Python API's Task.to_json shows its datetimes)."""
    return None if ts is None else iso_datetime(utc_time(ts))


def utc_time(ts: float) -> dt.datetime:
    """An epoch time as an aware UTC datetime (to the microsecond)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def iso_datetime(when: dt.datetime) -> str:
    """A datetime as iso_time shows it: 2026-01-02T03:04:05.678Z."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + \
        f".{when.microsecond // 1000:03d}Z"


def read_time(value: Any) -> float | None:
    """A stored epoch time; None unless it is a number that can be shown as a date."""
    try:
        found = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return found if 0 <= found < _LATEST_TIME else None


def read_count(value: Any) -> int:
    """A stored count (attempts, done, failed); 0 unless it is a whole number ≥ 0."""
    try:
        found = int(value or 0)
    except (TypeError, ValueError):
        return 0
    return found if found >= 0 else 0


# json.dumps with options builds an encoder per call (~3 us); a new record has two fields.
_to_json = json.JSONEncoder(separators=(",", ":"), default=str).encode


def to_hash(values: dict[str, Any]) -> dict[str, str]:
    """Encode record fields for a Redis hash: JSON for structured ones, str otherwise, and
    an empty string for None, which clears the field (it reads as its default)."""
    return {name: "" if value is None and name not in _JSON_FIELDS else _encoded(name, value)
            for name, value in values.items()}


def hash_pairs(record: TaskRecord) -> list[str]:
    """A record's fields, as to_hash encodes them, as a flat [field, value, ...] list,
    without the empty ones (a missing field reads as its default)."""
    out: list[str] = []
    values = vars(record)
    for name, structured in _STORED:
        value = values[name]
        if value is not None:
            out += (name, _structured(name, value) if structured else str(value))
    return out


def _structured(name: str, value: Any) -> str:
    if name == "params":  # checked at submit: no cycles
        return json_fast.compact(value)
    return "[]" if type(value) is list and not value else _to_json(value)


def _encoded(name: str, value: Any) -> str:
    return _to_json(value) if name in _JSON_FIELDS else str(value)


# The fields a record hash holds (and `status` shows): all but `deduplicated`.
STORED_FIELDS = tuple(name for name in TaskRecord.__dataclass_fields__ if name != "deduplicated")
_STORED = tuple((name, name in _JSON_FIELDS) for name in STORED_FIELDS)  # for hash_pairs
