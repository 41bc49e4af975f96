"""Every error a user can see: its message, its CLI exit code and its HTTP status."""

from __future__ import annotations

import difflib
from enum import IntEnum
from typing import ClassVar

from taskq.urls import mask_url


class ExitCode(IntEnum):
    """The CLI's exit statuses, documented in the README."""

    OK = 0
    ERROR = 1
    USAGE = 2
    CONFIG = 3
    UNKNOWN_TASK = 4
    TASK_FAILED = 5
    TIMEOUT = 6
    BROKER_UNAVAILABLE = 7
    CONFLICT = 8
    INTERRUPTED = 130


class TaskqError(Exception):
    """Raised for any failure that taskq reports to a user rather than as a traceback."""

    exit_code: ClassVar[ExitCode] = ExitCode.ERROR
    http_status: ClassVar[int] = 500
    code: ClassVar[str] = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message}


class UsageError(TaskqError):
    """Raised when a command is called with arguments that make no sense together."""

    exit_code = ExitCode.USAGE
    http_status = 400
    code = "bad_request"


class InvalidParameters(UsageError):
    """Raised when a task's parameters do not match its type's schema; lists every problem."""

    code = "invalid_parameters"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid parameters: " + "; ".join(self.problems))

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "problems": self.problems}


class InvalidSchedule(InvalidParameters):
    """Raised when a schedule to add is not valid (name, type, cron, interval, ...); lists
    every problem."""

    code = "invalid_schedule"

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        self.message = "invalid schedule: " + "; ".join(self.problems)
        self.args = (self.message,)


class AmbiguousId(UsageError):
    """Raised when an id prefix names more than one task; lists them (up to a few)."""

    code = "ambiguous_id"

    def __init__(self, prefix: str, candidates: list[str]) -> None:
        self.candidates = list(candidates)
        super().__init__(f"task id prefix {prefix!r} names more than one task: "
                         f"{', '.join(self.candidates)}; give more characters")


class ConfigError(TaskqError):
    """Raised when the configuration cannot be loaded or is invalid; lists every problem."""

    exit_code = ExitCode.CONFIG
    code = "config_error"

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        joined = "\n  ".join(self.problems)
        super().__init__(f"invalid configuration in {source}:\n  {joined}")


class UnknownTask(TaskqError):
    """Raised when a task id has no record: it was never submitted here, or its record expired."""

    exit_code = ExitCode.UNKNOWN_TASK
    http_status = 404
    code = "unknown_task"

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"unknown task id {task_id!r}: no task with this id was submitted "
                         "(or its record has expired)")


class TaskFailed(TaskqError):
    """Raised by a waiting command when the task it waited for ended in FAILURE or REVOKED."""

    exit_code = ExitCode.TASK_FAILED
    http_status = 200
    code = "task_failed"

    def __init__(self, task_id: str, state: str, error: str | None) -> None:
        self.task_id = task_id
        self.state = state
        detail = f": {error}" if error else ""
        super().__init__(f"task {task_id} ended {state}{detail}")


class WaitTimeout(TaskqError, TimeoutError):
    """Raised when a task did not reach a final state within the time a caller would wait
    (a TimeoutError too, for Python callers of Client.wait)."""

    exit_code = ExitCode.TIMEOUT
    http_status = 504
    code = "timeout"

    def __init__(self, task_id: str, seconds: float, state: str) -> None:
        self.task_id = task_id
        super().__init__(f"timed out after {seconds:g} s waiting for task {task_id} "
                         f"(still {state})")


class BrokerUnavailable(TaskqError):
    """Raised when the broker or the result backend cannot be reached; names the URL, masked."""

    exit_code = ExitCode.BROKER_UNAVAILABLE
    http_status = 503
    code = "broker_unavailable"

    def __init__(self, what: str, url: str, reason: str) -> None:
        self.what = what
        self.url = url
        super().__init__(f"{what} unreachable at {url} ({reason}); check that it is running "
                         "and that the URL and credentials are right")


class NotQueued(BrokerUnavailable):
    """Raised when the broker did not take every task of a submit (unreachable, a refusal, no
    confirm in time); says how many were queued and names those that were not."""

    def __init__(self, problem: str, queued: int, unqueued: list[str], which: str = "") -> None:
        """`which`: the tasks not queued in the caller's terms (e.g. "lines 3-9")."""
        self.problem = problem
        self.queued = queued
        self.unqueued = list(unqueued)
        if queued == 0 and len(unqueued) == 1:
            counts = "the task was not queued"
        else:
            counts = (f"{queued} of {queued + len(unqueued)} tasks queued, "
                      f"{len(unqueued)} not queued")
        TaskqError.__init__(self, f"{problem}; {counts}" + (f" ({which})" if which else ""))

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "queued": self.queued, "not_queued": self.unqueued}


class BrokerNotRunning(BrokerUnavailable):
    """Raised when a read command finds no embedded broker running: reads never start it."""

    def __init__(self, url: str) -> None:
        self.what = "embedded broker"
        self.url = url
        TaskqError.__init__(self, f"no embedded broker is running ({url}), so there are no "
                            "tasks to read: `taskq up` starts it (so does `taskq submit`)")


class AlreadyRunning(TaskqError):
    """Raised when `taskq up` is started while another one runs with the same home."""

    exit_code = ExitCode.CONFLICT
    http_status = 409
    code = "already_running"

    def __init__(self, pid: int) -> None:
        self.pid = pid
        super().__init__(f"taskq up is already running (pid {pid}); `taskq up --status` "
                         "shows it, `taskq down` stops it")


class StartFailed(TaskqError):
    """Raised when a detached `taskq up -d` did not get every worker ready; nothing is left
    running."""

    code = "start_failed"


class Conflict(TaskqError):
    """Raised when an action does not apply to a task in its current state."""

    exit_code = ExitCode.CONFLICT
    http_status = 409
    code = "conflict"


class NotFound(TaskqError):
    """Raised when a named thing (worker profile, route) does not exist."""

    exit_code = ExitCode.USAGE
    http_status = 404
    code = "not_found"


def reason(exc: BaseException) -> str:
    """What went wrong, for a one-line message: the exception's first line (its type when it
    has no message), with any password in a URL masked."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return mask_url(text) or text


# Outcomes raised by the work itself (no CLI meaning): they steer retries.

class TransientError(Exception):
    """Raised by work when the same call may succeed later (4xx SMTP reply, refused connection)."""


class PermanentError(Exception):
    """Raised by work when retrying cannot help (5xx SMTP reply, missing file, bad input)."""


def did_you_mean(word: str, options: list[str]) -> str:
    """" (did you mean 'x'?)" when one of `options` is close to `word`, else nothing."""
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
