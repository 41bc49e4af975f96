"""Helpers for tests of `taskq up`: fewer worker profiles, and which processes are left."""

from __future__ import annotations

import time
from collections.abc import Callable

import psutil
import yaml

READY_TIMEOUT = 60.0  # seconds `taskq up` may take to start on a loaded machine


def keep_profiles(deployment, *names: str) -> None:
    """Only these worker profiles in the deployment's config (fewer processes to start)."""
    path = deployment.env["TASKQ_CONFIG"]
    with open(path) as f:
        raw = yaml.safe_load(f)
    raw["workers"] = {name: raw["workers"][name] for name in names}
    with open(path, "w") as f:
        yaml.safe_dump(raw, f)


def stack_processes(deployment, pid: int) -> list[psutil.Process]:
    """Every process the `taskq up` of pid runs: its workers, their pool processes and the
    embedded broker."""
    found = psutil.Process(pid).children(recursive=True)
    broker = deployment.runtime.embedded.pid()
    assert broker is not None
    return [*found, psutil.Process(broker)]


def left_running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (is_running also tells a reused pid from the process it was)."""
    alive = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def wait_for(condition: Callable[[], bool], timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)  # polling for the supervisor to act
