"""Task: the frozen record of one task as the Python API returns it (`status --json`'s fields)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from taskq import records
from taskq.records import iso_datetime, utc_time

if TYPE_CHECKING:
    from taskq.records import TaskRecord

_TIMES = ("submitted_at", "eta", "started_at", "finished_at", "next_attempt_at")


@dataclass(frozen=True)
class Task:
    """One task's record at the time it was read: the fields `taskq status --json` shows,
    with its times as aware UTC datetimes. Read it again (Client.get) to see it move on."""

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
    submitted_at: dt.datetime | None = None
    eta: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    next_attempt_at: dt.datetime | None = None
    worker: str | None = None
    retry_of: str | None = None
    retried_as: str | None = None
    key: str | None = None
    after: list[str] | None = None  # the tasks it waits for (submit --after)
    after_any: bool | None = None  # True: it runs however they end (--after-any)
    deduplicated: bool = False  # a submit's repeat of a key: this is the earlier task

    @property
    def final(self) -> bool:
        """True once the task is SUCCESS, FAILURE or REVOKED: its record changes no more."""
        return self.state in records.FINAL_STATES

    @classmethod
    def from_record(cls, record: TaskRecord) -> Task:
        """The Task of a stored record."""
        values = record.to_dict()
        for name in _TIMES:
            values[name] = _when(values[name])
        values["attempt_errors"] = [{**entry, "at": _when(entry.get("at"))}
                                    for entry in values["attempt_errors"]]
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data, exactly as `taskq status ID --json` prints it."""
        data = asdict(self)
        if not self.deduplicated:
            del data["deduplicated"]
        for name in _TIMES:
            data[name] = _iso(data[name])
        for entry in data["attempt_errors"]:
            entry["at"] = _iso(entry.get("at"))
        return data


def _when(ts: float | None) -> dt.datetime | None:
    return None if ts is None else utc_time(ts)


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else iso_datetime(when)


def record_json(record: TaskRecord) -> dict[str, Any]:
    """A record as `status --json` prints it and the API returns it: Task.to_json()."""
    return Task.from_record(record).to_json()
