"""Retry policy arithmetic: exponential backoff with a cap and optional full jitter."""

from __future__ import annotations

import random
from collections.abc import Callable

from taskq.config import RetryPolicy


def backoff_delay(policy: RetryPolicy, retries_done: int,
                  rand: Callable[[], float] = random.random) -> float:
    """Seconds before the next attempt, after `retries_done` retries (0 for the first retry).

    backoff * 2**retries_done, capped at backoff_max; with jitter, uniform in [0, that]
    ("full jitter"), so that many tasks failing together do not retry together.
    """
    delay = min(policy.backoff_max, policy.backoff * (2 ** retries_done))
    return rand() * delay if policy.jitter else delay


def exhausted(policy: RetryPolicy, retries_done: int) -> bool:
    return retries_done >= policy.max_retries
