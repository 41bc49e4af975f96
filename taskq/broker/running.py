"""One running attempt per task while its worker can reach the record store.

A broker can deliver the same attempt twice while its first run is still going: RabbitMQ
requeues what a connection held when the connection is lost (the worker reconnects and goes on
running the task), and a Redis broker's lease runs out when a worker is cut off from the broker
longer than recovery.LEASE. Fences (taskq/store/__init__.py) make the second run's writes lose,
but its work would still be done twice at once. So the STARTED write of a worker's run names
its holder (worker and pool process) and takes the attempt's run lease in the record store; the
worker renews the leases of its running tasks every RENEW_EVERY seconds, from its main process.
A delivery of an attempt whose lease another holder keeps is not run: its worker holds it
unacknowledged (`Waiting`) and looks again every RECHECK seconds. It is dropped once the first
run has ended (the record moved on: final, or retrying), and runs once the lease has run out
(RUN_LEASE without renewal: the first holder's worker is gone or cannot reach the store).

Checked against Celery 5.7 (celery.worker.state) and redis-py 8.1 (Script);
tests/unit/test_library_internals.py fails when one changes shape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celery import bootsteps
from celery.worker import state
from redis.commands.core import Script

from taskq import records
from taskq.store import RUN_LEASE

if TYPE_CHECKING:
    from taskq.store import TaskStore

RENEW_EVERY = 2.0  # seconds between renewals of a worker's run leases
RECHECK = 1.0  # seconds between looks at the attempt of a delivery that waits

log = logging.getLogger(__name__)

# Renew the run leases a worker still holds. KEYS: run keys. ARGV: the value each must have
# (its holder's), then the lease in ms. Returns how many were renewed.
_RENEW_LUA = b"""
local renewed = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i] then
    redis.call('PEXPIRE', KEYS[i], ARGV[#ARGV])
    renewed = renewed + 1
  end
end
return renewed
"""

# Let go of a run lease if it is still this holder's. KEYS: run key. ARGV: its value.
_RELEASE_LUA = b"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Hashed once; each call sends EVALSHA over the client it is given (EVAL once on NOSCRIPT).
_RENEW = Script(None, _RENEW_LUA)  # type: ignore[arg-type]  # bytes: no client needed
_RELEASE = Script(None, _RELEASE_LUA)  # type: ignore[arg-type]


def holder(hostname: str, pid: int) -> str:
    """Who runs an attempt: a worker and its pool process (a process runs one task at once)."""
    return f"{hostname}/{pid}"


def lease_value(attempt: int, who: str) -> str:
    """What a run lease holds while attempt `attempt` runs on `who` (as _UPDATE writes it)."""
    return f"{attempt}:{who}"


def attempt_of(request: Any) -> int:
    """The attempt a Celery request of the worker's main process delivers."""
    return int(request.request_dict.get("retries") or 0) + 1


def renew(store: TaskStore, hostname: str, requests: Sequence[Any]) -> int:
    """Renew the run leases of `requests` (running in this worker's pool); how many."""
    keys, values = [], []
    for request in requests:
        if request.worker_pid is None:  # not accepted by a process yet: nothing claimed
            continue
        keys.append(store.run_key(request.id))
        values.append(lease_value(attempt_of(request), holder(hostname, request.worker_pid)))
    if not keys:
        return 0
    return int(_RENEW(keys=keys, args=[*values, int(RUN_LEASE * 1000)], client=store.client))


def release(store: TaskStore, task_id: str, attempt: int, who: str) -> None:
    """Let go of the run lease `who` holds for `attempt` (its process is gone), so that the
    attempt's next delivery runs at once instead of after RUN_LEASE."""
    _RELEASE(keys=[store.run_key(task_id)], args=[lease_value(attempt, who)],
             client=store.client)


def running_elsewhere(store: TaskStore, attempts: Sequence[tuple[str, int]]) -> list[bool]:
    """For each (task id, attempt): whether that attempt still runs and holds its lease."""
    pipe = store.client.pipeline(transaction=False)
    for task_id, _ in attempts:
        pipe.get(store.run_key(task_id))
        pipe.hget(store.key(task_id), "state")
    found = pipe.execute()
    out = []
    for index, (_, attempt) in enumerate(attempts):
        lease, current = found[2 * index], found[2 * index + 1]
        out.append(current in (records.STARTED, records.STARTED.encode()) and lease is not None
                   and _text(lease).startswith(f"{attempt}:"))
    return out


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


@dataclass
class _Held:
    message: Any
    task_id: str
    attempt: int


class Waiting:
    """Deliveries whose attempt runs elsewhere, held unacknowledged by this worker (on Redis
    its broker lease keeps them) until that run ends; a look every RECHECK seconds hands each
    one whose attempt no longer runs to Celery again, when a process is free: its STARTED
    write then drops it (the record moved on) or runs it (the lease ran out)."""

    def __init__(self) -> None:
        self._held: list[_Held] = []
        self._c: Any = None
        self._entry: Any = None

    def __len__(self) -> int:
        return len(self._held)

    def start(self, c: Any) -> None:
        """The consumer (re)started: what was held went back with the old connection."""
        self.stop()
        self._c = c

    def stop(self) -> None:
        """Hand nothing more to Celery; the messages held go back when their channel closes
        (RabbitMQ requeues them, kombu restores them on Redis)."""
        self._c = None
        self._held.clear()
        if self._entry is not None:
            self._entry.cancel()
            self._entry = None

    def hold(self, message: Any, task_id: str, attempt: int) -> None:
        """Keep `message` (its request has left Celery's books) and look again later."""
        if self._c is None:  # stopping: leave it to its channel's close
            return
        if not getattr(message, "taskq_waited", False):
            message.taskq_waited = True
            log.warning("task %s: attempt %d is running on another worker or process; this "
                        "delivery waits until that run ends", task_id, attempt)
        self._held.append(_Held(message, task_id, attempt))
        self._schedule()
        settled = getattr(self._c.task_consumer, "on_settled", None)
        if settled is not None:  # a process is free
            settled()

    def _schedule(self) -> None:
        if self._entry is None and self._c is not None:
            self._entry = self._c.timer.call_after(RECHECK, self._look)

    def _look(self) -> None:
        self._entry = None
        c = self._c
        if c is None or not self._held:
            return
        try:
            busy = running_elsewhere(c.app.taskq_runtime.store,
                                     [(h.task_id, h.attempt) for h in self._held])
        except Exception:  # noqa: BLE001 - the store is unreachable: look again later
            log.debug("could not look at waiting deliveries", exc_info=True)
            self._schedule()
            return
        ready = [held for held, still in zip(self._held, busy, strict=True) if not still]
        for held in ready:
            if _free(c) <= 0:
                break
            self._held.remove(held)
            try:
                c.task_consumer.on_message(held.message)
            except Exception:  # noqa: BLE001 - its channel is gone: it went back with it
                log.debug("could not hand a waiting delivery over", exc_info=True)
        self._schedule()


def _free(c: Any) -> int:
    limit = getattr(c.controller, "max_concurrency", None) or c.pool.num_processes
    return int(limit) - len(state.reserved_requests)


class RunLeases(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer step: renews the run leases of this worker's running tasks, from a thread of
    its own (a busy event loop must not let them run out), until the pool has finished them
    (a warm shutdown ends it last); and keeps the deliveries that wait (`Waiting`)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.waiting = Waiting()

    def start(self, c: Any) -> None:
        runtime = getattr(c.app, "taskq_runtime", None)
        if runtime is None:  # an app without taskq's records
            return
        c.app.taskq_waiting = self.waiting  # read by the requests (taskq/broker/delivery.py)
        self.waiting.start(c)
        if self._thread is None:  # (a reconnect keeps it: the store is another connection)
            self._thread = threading.Thread(
                target=self._run, args=(runtime.store, c.hostname, self._stop), daemon=True,
                name="taskq-run-leases")
            self._thread.start()

    def stop(self, c: Any) -> None:
        self.waiting.stop()

    def shutdown(self, c: Any) -> None:
        # After the pool has finished its tasks (a warm shutdown): no lease left to keep.
        self.waiting.stop()
        self._stop.set()

    @staticmethod
    def _run(store: TaskStore, hostname: str, stop: threading.Event) -> None:
        while not stop.wait(RENEW_EVERY):
            try:
                renew(store, hostname, tuple(state.active_requests))
            except Exception:  # noqa: BLE001 - store unreachable, or the set changed while
                log.debug("run lease renewal failed", exc_info=True)  # read: next round
