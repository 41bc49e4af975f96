"""The benchmark's scenarios as taskq runs them: its submit paths, its worker, its records."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from taskq import records
from taskq.bench import measure, targets
from taskq.bench.side import COMMON, Side
from taskq.records import TaskRecord
from taskq.request import SubmitRequest
from taskq.runtime import Runtime

NOOP = SubmitRequest(type="noop")


class TaskqSide(Side):
    """taskq with all its features on: records, events, strict priority."""

    name = "taskq"
    measures = COMMON | {"enqueue_bulk_in_process_per_s", "submit_process_s",
                         "submit_wait_p50_ms", "submit_wait_p99_ms", "priority_overtakes",
                         "stored_bytes", "help_s", "status_s"}

    def __init__(self, runtime: Runtime, env: dict[str, str], logs: Path) -> None:
        self.rt = runtime
        super().__init__(env, logs)

    def enqueue_single(self, n: int) -> tuple[list[str], float]:
        from taskq.submit import submit

        return measure.timed(lambda: [submit(self.rt, NOOP).id for _ in range(n)])

    def enqueue_bulk(self, n: int) -> tuple[list[str], float]:
        """The bulk path as `taskq submit --from` takes it: validate all, then send."""
        from taskq.bulk import submit_all
        from taskq.submit import prepare

        def send() -> list[str]:
            batch = [prepare(self.rt.settings, NOOP) for _ in range(n)]
            return [r.id for r in submit_all(self.rt, batch)]
        return measure.timed(send)

    def purge(self) -> None:
        targets.purge(self.rt.celery, self.rt.celery.amqp.queues)

    def start_worker(self) -> float:
        return self.launch([sys.executable, "-m", "taskq", "worker", "-c", "2", "--type",
                            "noop,spin", "--loglevel", "WARNING"], "taskq-worker.log")

    def finish_times(self, ids: list[str]) -> list[float] | None:
        """Every task's finished_at, or None while one is not finished."""
        client = self.rt.store.client
        if client.hget(self.rt.store.key(ids[-1]), "finished_at") is None:
            return None
        pipe = client.pipeline(transaction=False)
        for task_id in ids:
            pipe.hget(self.rt.store.key(task_id), "finished_at")
        values = pipe.execute()
        return None if None in values else [float(v) for v in values]

    def round_trip(self) -> float:
        """Submit one no-op and wait for its record to be final, as `submit --wait` does."""
        from taskq.submit import submit

        start = time.perf_counter()
        record = submit(self.rt, NOOP)
        self.rt.store.wait(record.id, timeout=30)
        return time.perf_counter() - start

    def priority(self, lows: int, ms: float, probes: int) -> int:
        """Low tasks that start after a high one is submitted (its submit returned: the task is
        recorded and published) and before it starts, summed over `probes` high tasks sent one
        after another while the lows run."""
        from taskq.bulk import submit_all
        from taskq.submit import prepare

        low = SubmitRequest(type="spin", priority="low", params={"ms": ms})
        batch = [prepare(self.rt.settings, low) for _ in range(lows)]
        submit_all(self.rt, batch)
        measure.poll(lambda: self._started(batch[0]), 30, "first low task")
        windows = []
        for _ in range(probes):
            high = self._submit_high(ms)
            submitted = time.time()
            done = self.rt.store.wait(high.id, timeout=60)
            assert done.started_at is not None
            windows.append((submitted, done.started_at))
        self.purge()
        return measure.overtakes(self._start_times(batch), windows)

    def _submit_high(self, ms: float) -> TaskRecord:
        from taskq.submit import submit

        return submit(self.rt, SubmitRequest(type="spin", priority="high", params={"ms": ms}))

    def _started(self, record: TaskRecord) -> bool | None:
        state = self.rt.store.client.hget(self.rt.store.key(record.id), "state")
        return True if state and state != records.QUEUED.encode() else None

    def _start_times(self, batch: list[TaskRecord]) -> list[float]:
        pipe = self.rt.store.client.pipeline(transaction=False)
        for record in batch:
            pipe.hget(self.rt.store.key(record.id), "started_at")
        return [float(v) for v in pipe.execute() if v is not None]

    def help_argv(self) -> list[str]:
        return [sys.executable, "-m", "taskq", "--help"]

    def submit_argv(self) -> list[str]:
        return [sys.executable, "-m", "taskq", "submit", "--type", "noop"]

    def wait_argv(self) -> list[str]:
        return [*self.submit_argv(), "--wait", "--timeout", "30"]

    def status_argv(self, task_id: str) -> list[str]:
        return [sys.executable, "-m", "taskq", "status", task_id]

    def stored_bytes(self, task_id: str) -> int:
        """What a finished task's record costs in Redis (MEMORY USAGE of its hash)."""
        return int(self.rt.store.client.memory_usage(self.rt.store.key(task_id)) or 0)

    def cleanup(self) -> None:
        client = self.rt.store.client
        prefix = self.rt.settings.key_prefix
        for pattern in (f"{prefix}:*", f"{prefix}.*", f"_kombu.binding*.{prefix}.*"):
            measure.delete_matching(client, pattern)
