"""The Python API: `Client` submits, reads, waits for and cancels tasks as the CLI does."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskq import config, records
from taskq.config import Settings
from taskq.errors import InvalidParameters, TaskFailed, UsageError
from taskq.request import SubmitRequest
from taskq.task import Task

if TYPE_CHECKING:
    from types import TracebackType

    from taskq.client_schedules import Schedules
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

__all__ = ["Client", "SubmitRequest", "Task"]


class Client:
    """Submits and follows tasks from Python, through the same code as `taskq submit`.

    Built from the settings the CLI reads (the config file, then TASKQ_* variables, then
    `overrides` such as ``broker_url="redis://..."``); nothing connects until the first call.
    One client can be shared between threads: submits take turns on its connection, reads
    and waits run side by side. Close it (or use it as a context manager) when done.
    """

    def __init__(self, config: str | Path | Settings | None = None, **overrides: str | None
                 ) -> None:
        """`config`: a config file's path, or settings already loaded (then no overrides)."""
        self.settings = _settings(config, overrides)
        self._runtime: Runtime | None = None
        self._closed = False
        self._lock = threading.Lock()  # making the runtime, closing
        self._publishing = threading.Lock()  # one submit at a time on the connection

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the client's connections; a closed client refuses further calls."""
        with self._lock:
            runtime, self._runtime, self._closed = self._runtime, None, True
        if runtime is not None:
            from taskq.broker.publish import close

            close(runtime)

    @property
    def runtime(self) -> Runtime:
        """The deployment behind the client, made on first use (no I/O until a call needs it)."""
        with self._lock:
            if self._closed:
                raise UsageError("this taskq Client is closed")
            if self._runtime is None:
                from taskq.runtime import Runtime

                runtime = Runtime(self.settings)
                runtime.store  # noqa: B018 - made once here, not by two threads at a time
                runtime.celery  # noqa: B018
                self._runtime = runtime
            return self._runtime

    @property
    def schedules(self) -> Schedules:
        """The deployment's schedules: list, get, add, pause, resume, remove, run_now."""
        from taskq.client_schedules import Schedules

        return Schedules(self)

    def submit(self, type: str, params: Mapping[str, Any] | None = None, *,  # noqa: A002
               priority: str | None = None, delay: float = 0, key: str | None = None,
               after: str | Iterable[str] | None = None, after_any: bool = False) -> Task:
        """Validate, record and queue one task; returns its record (state QUEUED or SCHEDULED,
        or WAITING with `after`: the ids, or unique prefixes, of tasks it waits for; it is
        queued once they all end SUCCESS, REVOKED if one does not, unless `after_any`).

        Raises InvalidParameters (every problem listed) or UsageError for a bad request, and
        BrokerUnavailable (NotQueued) when the broker or the backend cannot take the task.
        """
        from taskq.submit import submit

        if params is not None and not isinstance(params, Mapping):
            raise InvalidParameters([f"parameters: must be a mapping of names to values, "
                                     f"got {builtins.type(params).__name__}"])
        request = SubmitRequest(type=type, priority=priority, params=dict(params or {}),
                                delay=_seconds(delay), key=key, after=_ids(after),
                                after_any=after_any)
        runtime = self.runtime
        with self._publishing:
            return Task.from_record(submit(runtime, request))

    def submit_many(self, requests: Iterable[SubmitRequest | Mapping[str, Any]]
                    ) -> builtins.list[Task]:
        """Submit many tasks, all validated before any is queued; in order.

        Each request is a SubmitRequest or a mapping as `taskq submit --from` reads a line:
        {"task_type", "priority", "parameters", "delay"}. InvalidParameters names each bad
        one as requests[N]; NotQueued says which were not queued if the broker failed.
        """
        from taskq import bulk

        settings = self.settings
        built = bulk.prepare_labelled(
            (f"requests[{n}]", partial(_prepare, settings, item))
            for n, item in enumerate(requests))
        runtime = self.runtime
        with self._publishing:
            bulk.submit_all(runtime, built)
        return [Task.from_record(record) for record in built]

    def get(self, task_id: str) -> Task:
        """A task's record now (`taskq status`); UnknownTask if there is none."""
        return Task.from_record(self.runtime.store.get(task_id))

    status = get

    def wait(self, task_id: str, timeout: float | None = None) -> Task:
        """Block until the task is final and return its record when it succeeded.

        Raises TaskFailed when it ended FAILURE or REVOKED (`--wait` exits 5) and WaitTimeout,
        a TimeoutError, when `timeout` seconds pass first (`--wait --timeout` exits 6).
        """
        from taskq.request import wait_timeout

        record = self.runtime.store.wait(task_id, wait_timeout(timeout))
        if record.state != records.SUCCESS:
            raise TaskFailed(record.id, record.state, record.error)
        return Task.from_record(record)

    def cancel(self, task_id: str, terminate: bool = False) -> Task:
        """Cancel a waiting task (a running one too with `terminate`); returns its record."""
        from taskq import control

        return Task.from_record(control.cancel(self.runtime, task_id, terminate))

    def retry(self, task_id: str) -> Task:
        """Submit a failed task again as a new task linked to it; returns the new task."""
        from taskq import control

        runtime = self.runtime
        with self._publishing:
            return Task.from_record(control.retry(runtime, task_id))

    def list(self, state: str | Iterable[str] | None = None,
             type: str | Iterable[str] | None = None,  # noqa: A002
             priority: str | Iterable[str] | None = None, since: str | None = None,
             limit: int = 20) -> builtins.list[Task]:
        """Tasks newest first, with `taskq list`'s filters (since: "10m", "2h", "1d", ...)."""
        from taskq.store import listing

        runtime = self.runtime
        query = listing.build_query(self.settings, _names(state), _names(type),
                                    _names(priority), since, limit)
        return [Task.from_record(r) for r in listing.list_tasks(runtime, query)]


def _settings(source: str | Path | Settings | None, overrides: Mapping[str, str | None]
              ) -> Settings:
    if isinstance(source, Settings):
        if overrides:
            raise UsageError("Client(settings, ...): overrides apply to a config file, not "
                             "to settings already loaded")
        return source
    return config.load(path=Path(source) if source is not None else None, overrides=overrides)


def _prepare(settings: Settings, item: SubmitRequest | Mapping[str, Any]) -> records.TaskRecord:
    from taskq import request, submit

    if not isinstance(item, SubmitRequest):
        item = request.from_api_body(item, path="request")
    return submit.prepare(settings, item)


def _names(value: str | Iterable[str] | None) -> builtins.list[str]:
    items = [value] if isinstance(value, str) else builtins.list(value or [])
    return [v.strip() for item in items for v in item.split(",") if v.strip()]


def _seconds(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"delay={value!r}: must be a number of seconds")
    return float(value)


def _ids(after: str | Iterable[str] | None) -> tuple[str, ...]:
    """after= as ids: one id, comma-separated ids, or an iterable of ids."""
    items = [after] if isinstance(after, str) else builtins.list(after or ())
    ids: builtins.list[Any] = []
    for item in items:  # anything but text is left for the request's check to name
        ids += [p.strip() for p in item.split(",") if p.strip()] if isinstance(item, str) \
            else [item]
    return tuple(ids)
