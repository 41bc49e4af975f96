"""The benchmark's scenarios as a Huey app runs them (`huey_app.py`): one call a task (Huey has
no bulk enqueue), `huey_consumer -w 2 -k process` for the worker."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from taskq.bench import huey_app, measure
from taskq.bench.side import COMMON, PeerSide
from taskq.bench.targets import Target

WORKER_MODULE = "huey_bench_app"


class HueySide(PeerSide):
    """Huey on Redis, results stored (and waiters notified) in the same Redis."""

    name = "huey"
    measures = COMMON | {"help_s"}
    brokers = ("embedded", "redis")

    def __init__(self, target: Target, env: Mapping[str, str], logs: Path) -> None:
        super().__init__(target, env, logs)
        self.app_name = f"hueybench{uuid.uuid4().hex[:8]}"
        self.huey, self.noop = huey_app.make_huey(target.peer_redis, self.app_name)
        (logs / f"{WORKER_MODULE}.py").write_text(huey_app.MODULE.format(
            url=target.peer_redis, name=self.app_name), encoding="utf-8")

    @property
    def storage(self) -> Any:
        return self.huey.storage

    def enqueue_single(self, n: int) -> tuple[list[Any], float]:
        return measure.timed(lambda: [self.noop() for _ in range(n)])

    def purge(self) -> None:
        self.storage.flush_queue()

    def start_worker(self) -> float:
        return self.launch([sys.executable, "-m", "huey.bin.huey_consumer",
                            f"{WORKER_MODULE}.huey", "-w", "2", "-k", "process", "-q"],
                           "huey-consumer.log", cwd=self.logs)

    def finish_times(self, handles: list[Any]) -> list[float] | None:
        if not self.storage.has_data_for_key(handles[-1].id):
            return None
        ids = [result.id for result in handles]
        found = self.storage.peek_many(ids)
        if len(found) < len(ids):
            return None
        return [float(self.huey.serializer.deserialize(found[i])) for i in ids]

    def round_trip(self) -> float:
        start = time.perf_counter()
        self.noop().get(blocking=True, timeout=30)
        return time.perf_counter() - start

    def help_argv(self) -> list[str]:
        return [sys.executable, "-m", "huey.bin.huey_consumer", "--help"]

    def cleanup(self) -> None:
        self.storage.flush_queue()
        self.storage.flush_results()
        self.storage.flush_schedule()
        measure.delete_matching(self.storage.conn, f"huey.*.{self.app_name}*")
