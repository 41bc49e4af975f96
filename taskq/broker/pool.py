"""The worker's process pool: Celery's prefork pool, minus the loss of a task handed over at a
stop.

When the consumer closes (a warm shutdown, or a lost broker connection), Celery flushes the
pool: every job no process has acknowledged yet is dropped from the pool's books, on the
grounds that the broker will deliver it again. But a job whose payload was already written to
(or is being written to) a process's pipe runs there all the same. Dropped from the books, its
result is never read: its task's record becomes SUCCESS while its message is never
acknowledged (RabbitMQ and Redis hand it out again), and at a warm shutdown the process,
which waits for the main process to read every result it sent before exiting, stalls the
pool's join for 30 s (billiard's limit), long enough for a supervisor to SIGKILL the worker
with the acks it still held. This pool keeps such a job in its books: it is treated as the
running task it is, its result read and its message acknowledged.

Checked against Celery 5.7 (AsynPool.flush) and billiard 4.3 (the job cache, ApplyResult's
_accepted, _write_to and _job); tests/unit/test_library_internals.py fails when one changes shape.
"""

from __future__ import annotations

from typing import Any

from celery.concurrency.asynpool import AsynPool
from celery.concurrency.prefork import TaskPool as PreforkPool


class HandedOverPool(AsynPool):  # type: ignore[misc]
    """Celery's AsynPool whose flush keeps the jobs a process has begun to receive."""

    def flush(self) -> None:
        handed = [job for job in tuple(self._cache.values())
                  if not job._accepted and job._write_to is not None]
        super().flush()  # drops them, and finishes writing those half written
        for job in handed:
            self._cache.setdefault(job._job, job)
            proc: Any = job._write_to
            if proc._is_alive():  # it runs that job: give it no other
                self._busy_workers.add(proc.inqW_fd)


class TaskPool(PreforkPool):  # type: ignore[misc]
    """The prefork pool (`-P prefork`) with HandedOverPool as its process pool."""

    Pool = HandedOverPool
