"""What every system in the benchmark provides: enqueue, a worker process, results to read.

A side names the figures it can measure in `measures`; the others are n/a for it, and the
methods behind them keep the defaults here, which refuse to be called."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from taskq.bench import measure
from taskq.bench.targets import BROKERS, Target
from taskq.errors import TaskqError

# What every side measures: the scenarios the peers share.
COMMON = frozenset({"enqueue_single_in_process_per_s", "drain_per_s", "worker_ready_s",
                    "latency_in_process_p50_ms", "latency_in_process_p99_ms"})


class Side:
    """One system on one broker: its client in this process, its worker as a process."""

    name = ""
    measures: frozenset[str] = COMMON
    brokers: tuple[str, ...] = BROKERS

    def __init__(self, env: Mapping[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.worker: subprocess.Popen[bytes] | None = None
        self.worker_log = logs / "worker.log"

    def launch(self, argv: Sequence[str], log_name: str, cwd: Path | None = None) -> float:
        """Start the worker; returns the wall-clock time it was started at."""
        started = time.time()
        self.worker_log = self.logs / log_name
        self.worker = measure.start(argv, self.env, str(self.worker_log), cwd)
        return started

    def worker_alive(self) -> None:
        """Raise, with the end of its log, if the worker has exited: a drain would wait for
        it until its timeout."""
        if self.worker is not None and self.worker.poll() is not None:
            tail = self.worker_log.read_text(errors="replace")[-1500:]
            raise TaskqError(f"benchmark: the {self.name} worker exited "
                             f"{self.worker.returncode}:\n{tail}")

    def stop_worker(self) -> None:
        if self.worker is not None:
            measure.stop(self.worker)
            self.worker = None

    # Every side has these.
    def enqueue_single(self, n: int) -> tuple[list[Any], float]:
        """Send `n` no-ops one call each; (their handles, seconds)."""
        raise NotImplementedError

    def purge(self) -> None:
        raise NotImplementedError

    def start_worker(self) -> float:
        raise NotImplementedError

    def finish_times(self, handles: list[Any]) -> list[float] | None:
        """When each task finished (epoch seconds), or None while one has not."""
        raise NotImplementedError

    def round_trip(self) -> float:
        """Seconds from sending one no-op to holding its result."""
        raise NotImplementedError

    def cleanup(self) -> None:
        raise NotImplementedError

    # Only the sides whose `measures` name the figure.
    def enqueue_bulk(self, n: int) -> tuple[list[Any], float]:
        raise NotImplementedError

    def priority(self, lows: int, ms: float, probes: int) -> int:
        raise NotImplementedError

    def stored_bytes(self, handle: Any) -> int:
        raise NotImplementedError

    def help_argv(self) -> list[str]:
        raise NotImplementedError

    def status_argv(self, handle: Any) -> list[str]:
        raise NotImplementedError

    def submit_argv(self) -> list[str]:
        """A command that submits one no-op, as a user types it."""
        raise NotImplementedError

    def wait_argv(self) -> list[str]:
        """A command that submits one no-op and waits for its result."""
        raise NotImplementedError


class PeerSide(Side):
    """A system taskq is compared with, made from the broker's URLs alone."""

    def __init__(self, target: Target, env: Mapping[str, str], logs: Path) -> None:
        super().__init__(env, logs)
        self.target = target
