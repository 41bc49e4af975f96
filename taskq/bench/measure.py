"""Timing helpers for the benchmark: rates, percentiles, command start-up, polling."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

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


def command_times(argv: Sequence[str], env: Mapping[str, str], runs: int, warm: int = 0,
                  timeout: float = 60) -> list[float]:
    """The wall time of each of `runs` runs of `argv` (each must exit 0), after `warm`
    untimed ones; its output is read and dropped, as a pipe would."""
    times = []
    for _ in range(warm + runs):
        start = time.perf_counter()
        done = subprocess.run(list(argv), env=dict(env), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, check=False, timeout=timeout)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise TaskqError(f"benchmark: {' '.join(argv)} exited {done.returncode}: "
                             f"{done.stderr.decode(errors='replace')[-500:]}")
    return times[warm:]


def delete_matching(client: Any, pattern: str, batch: int = 1000) -> None:
    """Delete every key matching `pattern`, `batch` keys a call (a run leaves 100,000s)."""
    keys: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=batch):
        keys.append(key)
        if len(keys) >= batch:
            client.delete(*keys)
            keys.clear()
    if keys:
        client.delete(*keys)


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


def start(argv: Sequence[str], env: Mapping[str, str], log: str,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a worker in its own process group, its output in `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(list(argv), env=dict(env), stdout=out, cwd=cwd,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM (warm shutdown), then SIGKILL of its group if it hangs; a child left behind
    by a main process that exited is killed with its group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
