"""Workers as taskq sees them: from their heartbeat records and the tasks they are running."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taskq import records
from taskq.store import decoded, text
from taskq.store.heartbeats import GONE_AFTER, STALLED_AFTER

if TYPE_CHECKING:
    from taskq.runtime import Runtime
    from taskq.store import TaskStore

ONLINE, BUSY, GONE, STOPPED, STALLED = "online", "busy", "gone", "stopped", "stalled"


@dataclass
class CurrentTask:
    id: str
    type: str
    started_at: float | None


@dataclass
class WorkerInfo:
    """One worker: who it is, what it reads, what it is doing, how it has done."""

    hostname: str
    host: str
    profile: str
    pid: int
    queues: list[str]
    concurrency: int
    state: str
    started_at: float | None
    heartbeat_at: float | None
    loop_at: float | None = None  # the last tick of its main loop (None: an older worker)
    done: int = 0
    failed: int = 0
    current: list[CurrentTask] = field(default_factory=list)


def list_workers(runtime: Runtime, now: float | None = None,
                 current: bool = True) -> list[WorkerInfo]:
    """Every worker seen in the last day: online, busy, stopped, or gone (no heartbeat);
    with the tasks each is running unless `current` is False (one read fewer)."""
    store = runtime.store
    now = now or time.time()
    with store.reachable():
        names = sorted(text(n) for n in store.client.smembers(store.workers_key))
        pipe = store.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(store.worker_key(name))
        hashes = pipe.execute()
    expired = [n for n, h in zip(names, hashes, strict=True) if not h]
    if expired:
        with store.reachable():
            store.client.srem(store.workers_key, *expired)
    running = running_tasks(runtime) if current else {}
    return [_info(decoded(h), running, now)
            for h in hashes if h]


def _info(data: dict[str, str], running: dict[str, list[CurrentTask]], now: float) -> WorkerInfo:
    heartbeat = _float(data.get("heartbeat_at"))
    loop = _float(data.get("loop_at"))
    current = running.get(data["hostname"], [])
    if data.get("state") == STOPPED:
        state = STOPPED
    elif heartbeat is None or now - heartbeat > GONE_AFTER:
        state = GONE
    elif loop is not None and now - loop > STALLED_AFTER:
        state = STALLED
    else:
        state = BUSY if current else ONLINE
    return WorkerInfo(
        hostname=data["hostname"], host=data.get("host", ""), profile=data.get("profile", ""),
        pid=int(data.get("pid", 0)), queues=json.loads(data.get("queues", "[]")),
        concurrency=int(data.get("concurrency", 0)), state=state,
        started_at=_float(data.get("started_at")), heartbeat_at=heartbeat, loop_at=loop,
        done=int(data.get("done", 0)), failed=int(data.get("failed", 0)),
        current=current if state != STOPPED else [])


def running_tasks(runtime: Runtime) -> dict[str, list[CurrentTask]]:
    """STARTED tasks by worker hostname, from the STARTED index sets (as many as are running)."""
    store = runtime.store
    settings = runtime.settings
    pipe = store.client.pipeline(transaction=False)
    for t, p in itertools.product(settings.task_types, settings.priorities):
        pipe.zrange(store.cell_key(records.STARTED, t, p), 0, -1)
    with store.reachable():
        ids = [text(m) for found in pipe.execute() for m in found]
    return _by_worker(store, ids)


def _by_worker(store: TaskStore, ids: list[str]) -> dict[str, list[CurrentTask]]:
    pipe = store.client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hmget(store.key(task_id), "worker", "type", "started_at")
    with store.reachable():
        rows = pipe.execute()
    out: dict[str, list[CurrentTask]] = {}
    for task_id, (worker, type_name, started) in zip(ids, rows, strict=True):
        if worker:
            out.setdefault(text(worker), []).append(
                CurrentTask(task_id, text(type_name), _float(started)))
    return out


def consumers_by_queue(workers: list[WorkerInfo]) -> dict[str, int]:
    """How many live workers read each queue (Redis brokers cannot say)."""
    counts: dict[str, int] = {}
    for worker in workers:
        if worker.state in (ONLINE, BUSY):
            for queue in worker.queues:
                counts[queue] = counts.get(queue, 0) + 1
    return counts


def worker_json(worker: WorkerInfo, now: float | None = None) -> dict[str, Any]:
    from dataclasses import asdict

    now = now or time.time()
    data = asdict(worker)
    for task in data["current"]:
        task["running_for"] = round(now - task["started_at"], 3) if task["started_at"] else None
        task["started_at"] = records.iso_time(task["started_at"])
    data["heartbeat_age"] = round(now - worker.heartbeat_at, 3) if worker.heartbeat_at else None
    data["loop_age"] = round(now - worker.loop_at, 3) if worker.loop_at else None
    data["loop_at"] = records.iso_time(worker.loop_at)
    data["started_at"] = records.iso_time(worker.started_at)
    data["heartbeat_at"] = records.iso_time(worker.heartbeat_at)
    return data


def _float(value: Any) -> float | None:
    return records.read_time(text(value)) if value not in (None, b"", "") else None


