"""The benchmark's scenarios as a Dramatiq app runs them (`dramatiq_app.py`): `send` one at a
time, a `group` for the bulk path, `dramatiq --processes 2 --threads 1` for the worker."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from taskq.bench import dramatiq_app, measure
from taskq.bench.side import COMMON, PeerSide
from taskq.bench.targets import Target

WORKER_MODULE = "dramatiq_bench_app"


class DramatiqSide(PeerSide):
    """Dramatiq on Redis or RabbitMQ, results stored in Redis by its results middleware."""

    name = "dramatiq"
    measures = COMMON | {"enqueue_bulk_in_process_per_s", "stored_bytes", "help_s"}

    def __init__(self, target: Target, env: Mapping[str, str], logs: Path) -> None:
        super().__init__(target, env, logs)
        self.queue = f"dqbench_{uuid.uuid4().hex[:8]}"
        broker_url = target.peer_amqp or target.peer_redis
        self.amqp = target.peer_amqp is not None
        self.broker = dramatiq_app.make_broker(broker_url, target.peer_redis, self.queue)
        self.actor = self.broker.get_actor(dramatiq_app.ACTOR)
        self.backend = self._results_backend()
        (logs / f"{WORKER_MODULE}.py").write_text(dramatiq_app.MODULE.format(
            broker_url=broker_url, results_url=target.peer_redis, namespace=self.queue),
            encoding="utf-8")

    def _results_backend(self) -> Any:
        from dramatiq.results import Results

        found = [m.backend for m in self.broker.middleware if isinstance(m, Results)]
        return found[0]

    def enqueue_single(self, n: int) -> tuple[list[Any], float]:
        return measure.timed(lambda: [self.actor.send() for _ in range(n)])

    def enqueue_bulk(self, n: int) -> tuple[list[Any], float]:
        """Dramatiq's group: `group(messages).run()` (it enqueues them one by one)."""
        from dramatiq import group

        def send() -> list[Any]:
            batch = group([self.actor.message() for _ in range(n)], broker=self.broker)
            batch.run()
            return list(batch.children)
        return measure.timed(send)

    def purge(self) -> None:
        self.broker.flush(self.queue)

    def start_worker(self) -> float:
        return self.launch([sys.executable, "-m", "dramatiq", f"{WORKER_MODULE}:broker",
                            "--processes", "2", "--threads", "1", "--path", str(self.logs)],
                           "dramatiq-worker.log")

    def finish_times(self, handles: list[Any]) -> list[float] | None:
        client = self.backend.client
        if not client.exists(self.backend.build_message_key(handles[-1])):
            return None
        pipe = client.pipeline(transaction=False)
        for message in handles:
            pipe.lindex(self.backend.build_message_key(message), 0)
        raws = pipe.execute()
        if not all(raws):
            return None
        return [float(self.backend.unwrap_result(self.backend.encoder.decode(raw)))
                for raw in raws]

    def round_trip(self) -> float:
        start = time.perf_counter()
        message = self.actor.send()
        message.get_result(backend=self.backend, block=True, timeout=30_000)
        return time.perf_counter() - start

    def stored_bytes(self, handle: Any) -> int:
        key = self.backend.build_message_key(handle)
        return int(self.backend.client.memory_usage(key) or 0)

    def help_argv(self) -> list[str]:
        return [sys.executable, "-m", "dramatiq", "--help"]

    def cleanup(self) -> None:
        self.purge()
        measure.delete_matching(self.backend.client, f"{self.queue}*")
        if self.amqp:  # the queues would outlive a vhost given with --amqp-url
            channel = self.broker.channel
            for name in (self.queue, f"{self.queue}.DQ", f"{self.queue}.XQ"):
                channel.queue_delete(name)
        self.broker.close()
