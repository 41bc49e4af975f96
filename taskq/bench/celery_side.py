"""The benchmark's scenarios as a plain Celery app with default settings runs them."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from taskq.bench import measure, targets
from taskq.bench.plain import make_app
from taskq.bench.side import COMMON, PeerSide


class CelerySide(PeerSide):
    """Celery as it comes: a Redis result backend, default prefetch, acks and queue."""

    name = "celery"
    measures = COMMON | {"enqueue_bulk_in_process_per_s", "submit_process_s",
                         "priority_overtakes", "stored_bytes", "help_s", "status_s"}

    def __init__(self, target: targets.Target, env: Mapping[str, str], logs: Path) -> None:
        self.queue = f"plain-{uuid.uuid4().hex[:8]}"
        self.args = [target.plain_broker, target.plain_backend, self.queue]
        self.app = make_app(target.plain_broker, target.plain_backend, self.queue)
        super().__init__(target, env, logs)
        self.amqp = target.plain_broker.startswith("amqp")
        self.ids: list[str] = []

    @property
    def noop(self) -> Any:
        return self.app.tasks["plain.noop"]

    def enqueue_single(self, n: int) -> tuple[list[str], float]:
        return measure.timed(lambda: [self._keep(self.noop.apply_async()) for _ in range(n)])

    def enqueue_bulk(self, n: int) -> tuple[list[str], float]:
        """Celery has no bulk path: its fastest is apply_async on one shared producer."""
        def send() -> list[str]:
            with self.app.producer_or_acquire() as producer:
                return [self._keep(self.noop.apply_async(producer=producer))
                        for _ in range(n)]
        return measure.timed(send)

    def _keep(self, result: Any) -> str:
        self.ids.append(result.id)
        return str(result.id)

    def purge(self) -> None:
        targets.purge(self.app, [self.queue])

    def start_worker(self) -> float:
        return self.launch([sys.executable, "-m", "taskq.bench.plain", *self.args, "worker",
                            "-c", "2", "-P", "prefork", "-l", "WARNING"], "celery-worker.log")

    def finish_times(self, ids: list[str]) -> list[float] | None:
        client = self.app.backend.client
        keys = [self.app.backend.get_key_for_task(i) for i in ids]
        if not client.exists(keys[-1]):
            return None
        raws = client.mget(keys)
        if not all(raws):
            return None
        return [_epoch(self.app.backend.decode_result(raw)["date_done"]) for raw in raws]

    def round_trip(self) -> float:
        start = time.perf_counter()
        result = self.noop.apply_async()
        result.get(timeout=30)
        self.ids.append(result.id)
        return time.perf_counter() - start

    def priority(self, lows: int, ms: float, probes: int) -> int:
        """Celery's own message priority on the one default queue (on RabbitMQ it needs
        x-max-priority, which is not a default, so it has no effect there)."""
        spin = self.app.tasks["plain.spin"]
        high_pri, low_pri = (9, 0) if self.amqp else (0, 9)
        results = [spin.apply_async((ms,), priority=low_pri) for _ in range(lows)]
        self.ids += [r.id for r in results]
        measure.poll(lambda: True if results[0].ready() else None, 30, "first low task")
        windows = []
        for _ in range(probes):
            high = spin.apply_async((ms,), priority=high_pri)
            submitted = time.time()
            self.ids.append(high.id)
            windows.append((submitted, high.get(timeout=60)["started"]))
        self.purge()
        time.sleep(0.5)  # prefetched tasks still run after the purge: let them store results
        starts = [self._started(r) for r in results]
        return measure.overtakes([t for t in starts if t is not None], windows)

    def _started(self, result: Any) -> float | None:
        meta = self.app.backend.get_task_meta(result.id)
        return meta["result"]["started"] if meta.get("status") == "SUCCESS" else None

    def help_argv(self) -> list[str]:
        return [str(Path(sys.executable).parent / "celery"), "--help"]

    def status_argv(self, task_id: str) -> list[str]:
        return [sys.executable, "-m", "taskq.bench.plain", *self.args, "result", task_id]

    def submit_argv(self) -> list[str]:
        return [sys.executable, "-m", "taskq.bench.plain", *self.args, "call", "plain.noop"]

    def stored_bytes(self, task_id: str) -> int:
        key = self.app.backend.get_key_for_task(task_id)
        return int(self.app.backend.client.memory_usage(key) or 0)

    def cleanup(self) -> None:
        self.purge()
        client = self.app.backend.client
        for start in range(0, len(self.ids), 1000):
            keys = [self.app.backend.get_key_for_task(i) for i in self.ids[start:start + 1000]]
            client.delete(*keys)
        # kombu's Redis transport keeps the queue's bindings in keys of their own.
        measure.delete_matching(client, f"_kombu.binding*.{self.queue}")
        self.app.close()


def _epoch(iso: str) -> float:
    when = datetime.fromisoformat(iso)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
