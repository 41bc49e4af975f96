"""Timing helpers for the benchmark: rates, percentiles, command start-up, polling."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from taskq.errors import TaskqError

T = TypeVar("T")
POLL = 0.02


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct` percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def overtakes(starts: Sequence[float], windows: Sequence[tuple[float, float]]) -> int:
    """How many of `starts` fall inside one of the (high task submitted, high task started)
    `windows`: low tasks that started while a high one waited."""
    return sum(1 for t in starts for opened, closed in windows if opened < t < closed)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(action: Callable[[], T]) -> tuple[T, float]:
    """(result, seconds) of `action()`."""
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def command_seconds(argv: Sequence[str], env: Mapping[str, str], runs: int) -> float:
    """Median wall time of running `argv` to completion (it must exit 0), after one untimed
    run that warms the file and bytecode caches."""
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run(list(argv), env=dict(env), capture_output=True, check=False,
                              timeout=60)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: "
                               f"{done.stderr.decode(errors='replace')[-500:]}")
    return statistics.median(times[1:])


def poll(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Call `check` until it returns something other than None (polling for readiness)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise TaskqError(f"benchmark: {what} not done within {timeout:g} s")
        time.sleep(POLL)


def start(argv: Sequence[str], env: Mapping[str, str], log: str) -> subprocess.Popen[bytes]:
    """Start a worker in its own process group, its output in `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(list(argv), env=dict(env), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM (warm shutdown), then SIGKILL of its group if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class WorkerSide:
    """What both sides of the benchmark share: one worker process, started and stopped."""

    def __init__(self, env: Mapping[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.worker: subprocess.Popen[bytes] | None = None

    def launch(self, argv: Sequence[str], log_name: str) -> float:
        """Start the worker; returns the wall-clock time it was started at."""
        started = time.time()
        self.worker = start(argv, self.env, str(self.logs / log_name))
        return started

    def stop_worker(self) -> None:
        if self.worker is not None:
            stop(self.worker)
            self.worker = None
