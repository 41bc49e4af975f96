"""The worker's hooks for poison messages (taskq/broker/poison.py): a message Celery cannot
decode or hand to a pool process fails its task, is acknowledged, and frees what it held.

Checked against Celery 5.7 and billiard 4.3: Celery's consumer acknowledges (or rejects) a
message it cannot decode, and leaves its task's record alone; a task whose arguments cannot be
pickled for a pool process (parameters nested ~1000 deep: RecursionError) raises out of
`WorkController._process_task` with the message unacknowledged, the pool semaphore taken and
the request counted as reserved, so that process slot is lost for good.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps
from celery.worker import state

from taskq.broker import poison
from taskq.broker.poison import Poison

log = logging.getLogger(__name__)


def quarantine(app: Any, found: Poison, worker: str | None) -> None:
    """Fail the poison message's task (the message is settled by the caller)."""
    runtime = getattr(app, "taskq_runtime", None)
    if runtime is None:  # an app without taskq's records: only the log says it
        log.error("task %s: %s", found.task_id, found.reason)
        return
    poison.quarantine(runtime.store, found, worker)


class HandOverGuard(bootsteps.Step):  # type: ignore[misc]
    """Worker step: a request that cannot be handed to a pool process is poison."""

    requires = ("celery.worker.components:Pool",)

    def create(self, w: Any) -> None:
        inner = w._process_task
        uses_semaphore = w.process_task != inner  # _process_task_sem takes a slot first

        def process_task(req: Any) -> Any:
            try:
                return inner(req)
            except OSError:  # the pool's pipes, not the message: Celery's own handling
                raise
            except Exception as exc:  # noqa: BLE001 - what the message makes fail is poison
                _drop(w, req, exc, uses_semaphore)
                return None

        w._process_task = process_task  # what _process_task_sem calls
        if not uses_semaphore:
            w.process_task = process_task


def _drop(w: Any, req: Any, exc: BaseException, uses_semaphore: bool) -> None:
    """Undo what taking `req` held (a pool slot, the pool's job, its reservation), fail its
    task and acknowledge its message."""
    if uses_semaphore:
        w._quick_release()
    cache = getattr(getattr(w.pool, "_pool", None), "_cache", None) or {}
    for job, result in list(cache.items()):  # the job apply_async registered, never sent
        if getattr(result, "correlation_id", None) == req.id and not result._accepted:
            cache.pop(job, None)
    state.task_ready(req)
    queue = (req.delivery_info or {}).get("routing_key")
    try:
        quarantine(w.app, Poison(req.id, queue, "handed to a process", exc), w.hostname)
    except Exception:  # noqa: BLE001 - the backend is down: the message comes back later
        log.exception("could not record poison message %s", req.id)
        req.reject(requeue=True)
        return
    req.acknowledge()


class DecodeGuard(bootsteps.Step):  # type: ignore[misc]
    """Consumer step: a message Celery cannot decode, or whose task is unknown or invalid,
    fails its task before Celery acknowledges (or rejects) the message as it always has."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        # Set before the Tasks step starts: it captures these when it builds its handlers.
        on_decode_error, on_invalid = parent.on_decode_error, parent.on_invalid_task
        on_unknown_task, on_unknown = parent.on_unknown_task, parent.on_unknown_message

        def decode_error(message: Any, exc: BaseException) -> None:
            _fail(parent, message, "decoded", exc)
            on_decode_error(message, exc)

        def invalid_task(body: Any, message: Any, exc: BaseException) -> None:
            _fail(parent, message, "decoded", exc)
            on_invalid(body, message, exc)

        def unknown_task(body: Any, message: Any, exc: BaseException) -> None:
            _fail(parent, message, "matched to a task", exc)
            on_unknown_task(body, message, exc)

        def unknown_message(body: Any, message: Any) -> None:
            _fail(parent, message, "read as a task", ValueError("no task header"))
            on_unknown(body, message)

        parent.on_decode_error, parent.on_invalid_task = decode_error, invalid_task
        parent.on_unknown_task, parent.on_unknown_message = unknown_task, unknown_message


def of_message(message: Any, stage: str, exc: BaseException) -> Poison:
    """The Poison a kombu message is: its task id and queue as far as they can be read."""
    headers = message.headers if isinstance(message.headers, dict) else {}
    properties = message.properties if isinstance(message.properties, dict) else {}
    task_id = headers.get("id") or properties.get("correlation_id")
    queue = (message.delivery_info or {}).get("routing_key")
    return Poison(task_id if isinstance(task_id, str) else None,
                  queue if isinstance(queue, str) else None, stage, exc)


def _fail(c: Any, message: Any, stage: str, exc: BaseException) -> None:
    found = of_message(message, stage, exc)
    try:
        quarantine(c.app, found, c.hostname)
    except Exception:  # noqa: BLE001 - Celery still settles the message, as it always has
        log.exception("could not record poison message %s", found.task_id)
