"""Custom task types used by the integration tests: real CPU work, no sleeping."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path


def spin(ms: float) -> dict[str, float]:
    """Hash in a loop for about `ms` milliseconds of CPU time: a stand-in for real work
    whose length the test controls, without sleeping."""
    digest = b"taskq"
    start = time.process_time()
    rounds = 0
    while (time.process_time() - start) * 1000 < ms:
        for _ in range(200):
            digest = hashlib.sha256(digest).digest()
        rounds += 200
    return {"rounds": rounds}


def flaky(marker_dir: str, failures: int) -> dict[str, int]:
    """Fail with a transient error the first `failures` times it runs for a marker dir."""
    from taskq.errors import TransientError

    path = Path(marker_dir)
    path.mkdir(parents=True, exist_ok=True)
    runs = len(list(path.iterdir())) + 1
    (path / f"run-{runs}-{os.getpid()}").touch()
    if runs <= failures:
        raise TransientError(f"failing on purpose, run {runs} of {failures}")
    return {"runs": runs}


def slow_flaky(marker_dir: str, failures: int, ms: float) -> dict[str, int]:
    """Spin for `ms`, then fail transiently the first `failures` times (as flaky)."""
    spin(ms)
    return flaky(marker_dir, failures)


def marked(marker_dir: str, ms: float) -> dict[str, int]:
    """Leave a file named after this run and its process in `marker_dir`, then spin for `ms`:
    a side effect that shows the work ran, whatever the record says."""
    path = Path(marker_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"run-{time.time_ns()}-{os.getpid()}").touch()
    spin(ms)
    return {"pid": os.getpid()}


def crash(code: int) -> None:
    """Fail permanently with a plain exception (no retry)."""
    raise ValueError(f"bad input {code}")


def stubborn(ms: float) -> dict[str, float]:
    """Like spin, but shrugs off the soft time limit's exception, so only the hard one stops
    it."""
    start = time.monotonic()
    while (time.monotonic() - start) * 1000 < ms:
        try:
            spin(50)
        except Exception:  # noqa: BLE001, S110 - the soft limit's exception, on purpose
            pass
    return {"ms": ms}


def stubborn_later(marker_dir: str, ms: float) -> dict[str, float]:
    """Fail transiently on the first run (as flaky), then run as stubborn."""
    flaky(marker_dir, 1)
    return stubborn(ms)
