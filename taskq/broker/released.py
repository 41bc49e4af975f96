"""Tasks their dependencies released (taskq/store/dependencies.py), queued or revoked: the
list of released ids is drained by whoever made the final write that released them (the
store calls back, `TaskStore.on_released`, set by the runtime) and by every worker's
heartbeat once a minute (a process killed between the two)."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from taskq import records
from taskq.broker.publish.base import celery_send
from taskq.store import text
from taskq.store.dependencies import released_key

if TYPE_CHECKING:
    from taskq.runtime import Runtime

log = logging.getLogger(__name__)

_draining = threading.local()


def release(runtime: Runtime) -> None:
    """Queue, or revoke, every released task. Revoking one releases its own waiters: they
    join the list and are drained by the same loop (a call made meanwhile by the write
    itself returns at once)."""
    if getattr(_draining, "active", False):
        return
    _draining.active = True
    try:
        _drain(runtime)
    finally:
        _draining.active = False


def release_quietly(runtime: Runtime) -> None:
    """release() after a final write, whose caller (a worker's, a cancel's) must not fail
    for it: what is left on the list is drained later (a worker's heartbeat)."""
    try:
        release(runtime)
    except Exception as exc:  # noqa: BLE001 - the task stays on the list: nothing is lost
        log.warning("released tasks left to queue later: %s", exc)


def _drain(runtime: Runtime) -> None:
    store = runtime.store
    key = released_key(store.prefix)
    while True:
        with store.reachable():
            popped = store.client.lpop(key)
        if popped is None:
            return
        task_id = text(popped)
        try:
            _settle(runtime, task_id)
        except BaseException:
            with store.reachable():
                store.client.rpush(key, task_id)  # tried again by the next drain
            raise


def _settle(runtime: Runtime, task_id: str) -> None:
    store = runtime.store
    with store.reachable():
        failed = store.client.hget(store.key(task_id), "after_failed")
    if failed is not None:
        store.transition(task_id, records.REVOKED, final=True, only_from=(records.WAITING,),
                         finished_at=time.time(), error=f"dependency {text(failed)}",
                         next_attempt_at=None)
        return
    outcome, _ = store.transition(task_id, records.QUEUED, only_from=(records.WAITING,))
    if outcome != 1:
        return  # cancelled meanwhile, or queued by another drain
    try:
        celery_send(runtime, store.get(task_id))
    except BaseException:
        # Not sent: back to WAITING, so the next drain (the id goes back on the list) sends it.
        store.transition(task_id, records.WAITING, only_from=(records.QUEUED,))
        raise
