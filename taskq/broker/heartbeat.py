"""Workers announce themselves in Redis and keep a heartbeat; readers tell online from gone."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from celery import bootsteps

from taskq.store.heartbeats import INTERVAL, LOOP_TICK

if TYPE_CHECKING:
    from taskq.config import Settings
    from taskq.store import TaskStore

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

KEEP_GONE = 24 * 3600  # how long a stopped or gone worker stays listed
TRIM_EVERY = 30  # beats between retention trims of the record indexes (once a minute)


class Heartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer step: registers the worker once it consumes, then beats every INTERVAL.

    The beat comes from a thread, so it goes on while the worker's main loop waits on the
    broker (a blocking read on a connection that went silent: a partition); each beat also
    writes when that loop last turned (`loop_at`), so readers tell a worker that is alive
    but takes no work from one that works (store/workers.py, STALLED). A reconnect after a clean
    close restarts the consumer's steps, this one too: no beats until it is back (gone).
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop_at = time.time()
        self._tick: Any = None

    def start(self, parent: Any) -> None:
        app = parent.app
        store: TaskStore = app.taskq_runtime.store
        key = store.worker_key(parent.hostname)
        plan = app.taskq_plan
        store.client.hset(key, mapping={
            "hostname": parent.hostname, "host": socket.gethostname(), "pid": os.getpid(),
            "profile": plan.name, "queues": json.dumps(plan.queues),
            "concurrency": plan.concurrency, "started_at": time.time(),
            "heartbeat_at": time.time(), "loop_at": time.time(), "state": "online"})
        store.client.sadd(store.workers_key, parent.hostname)
        self._ticked()
        self._tick = parent.timer.call_repeatedly(LOOP_TICK, self._ticked)
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, args=(store, key, app.taskq_settings),
                                        daemon=True, name="taskq-heartbeat")
        self._thread.start()

    def _beat(self, store: TaskStore, key: str, settings: Settings) -> None:
        from taskq.store import retention

        beats = 0
        while not self._stop.wait(INTERVAL):
            beats += 1
            try:
                pipe = store.client.pipeline(transaction=False)
                pipe.hset(key, mapping={"heartbeat_at": time.time(), "loop_at": self._loop_at})
                pipe.expire(key, KEEP_GONE)  # a SIGKILLed worker stays listed (gone) a day
                pipe.execute()
                if beats % TRIM_EVERY == 1:
                    retention.trim(store, settings)
                    if store.on_released is not None:  # left by a process killed mid-release
                        store.on_released()
            except Exception:  # noqa: BLE001 - a missed beat is retried on the next tick
                continue

    def _ticked(self) -> None:
        self._loop_at = time.time()

    def stop(self, parent: Any) -> None:
        self._stop.set()
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None

    def shutdown(self, parent: Any) -> None:
        self._stop.set()
        store: TaskStore = parent.app.taskq_runtime.store
        key = store.worker_key(parent.hostname)
        try:
            store.client.hset(key, mapping={"state": "stopped", "stopped_at": time.time()})
            store.client.expire(key, KEEP_GONE)
        except Exception:  # noqa: BLE001 - the broker may be gone at shutdown; nothing to do
            pass
