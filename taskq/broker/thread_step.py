"""A worker step that runs a loop in a thread of the worker's main process while it consumes
(the due-task mover, the periodic scheduler)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from celery import bootsteps

if TYPE_CHECKING:
    from taskq.runtime import Runtime


class ThreadStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer step: `loop(runtime, stop)` in a daemon thread, until `stop` is set.

    Celery restarts consumer steps on a lost broker connection: the old thread, told to stop,
    ends after its pass; the new one has an Event of its own."""

    requires = ("celery.worker.consumer.tasks:Tasks",)
    thread_name = "taskq-step"

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, parent: Any) -> None:
        self._stop.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.loop,
                                        args=(parent.app.taskq_runtime, self._stop),
                                        daemon=True, name=self.thread_name)
        self._thread.start()

    def loop(self, runtime: Runtime, stop: threading.Event) -> None:
        raise NotImplementedError

    def stop(self, parent: Any) -> None:
        self._stop.set()

    def shutdown(self, parent: Any) -> None:
        self._stop.set()
