"""The benchmark's work, shared by taskq's task types and the plain Celery app's tasks."""

from __future__ import annotations

import hashlib
import time


def noop() -> None:
    """A task that does nothing: what is left is the queue's own cost."""


def spin(ms: float) -> float:
    """Burn about `ms` milliseconds of CPU (no sleeping); returns the wall time it started."""
    started = time.time()
    digest = b"bench"
    begin = time.process_time()
    while (time.process_time() - begin) * 1000 < ms:
        for _ in range(100):
            digest = hashlib.sha256(digest).digest()
    return started


def stamp() -> float:
    """A no-op that returns the time it ran: the peers' result (Huey stores no None result),
    which the drain reads its finish times from."""
    return time.time()
