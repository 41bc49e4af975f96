"""The local stack: the embedded broker plus worker subprocesses, started and stopped cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from taskq.errors import TaskqError

if TYPE_CHECKING:
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

READY_TIMEOUT = 30.0  # seconds a worker may take to start consuming
STOP_TIMEOUT = 60.0  # seconds running tasks get to finish after a warm shutdown
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass
class WorkerProcess:
    profile: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def hostname(self) -> str:
        return f"{self.profile}.{self.process.pid}@{socket.gethostname()}"


def start_workers(rt: Runtime, profiles: list[str], extra: list[str] | None = None,
                  env: dict[str, str] | None = None) -> list[WorkerProcess]:
    """Start `taskq worker --profile P` for each profile, logging to <home>/logs/P.log."""
    log_dir = rt.settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = []
    for profile in profiles:
        log_path = log_dir / f"{profile}.log"
        log_file = log_path.open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "taskq", "worker", "--profile", profile, *(extra or [])],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, preexec_fn=_stop_with(os.getpid()))
        started.append(WorkerProcess(profile, proc, log_path, log_file))
    return started


def _stop_with(parent: int) -> Callable[[], None] | None:
    """On Linux, a worker gets SIGTERM (a warm shutdown) when the process that started it
    dies, even by SIGKILL, instead of running on as an orphan (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return None

    def in_child() -> None:
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before the prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


def wait_ready(rt: Runtime, workers: list[WorkerProcess], timeout: float = READY_TIMEOUT,
               stopping: Callable[[], bool] = lambda: False) -> None:
    """Block until every worker has registered its heartbeat (or `stopping()` says to give
    up); raise if one dies first."""
    deadline = time.monotonic() + timeout
    pending = list(workers)
    while pending and not stopping():
        w = pending[0]
        if w.process.poll() is not None:
            raise TaskqError(f"worker {w.profile} exited with code {w.process.returncode}; "
                             f"see {w.log_path}")
        if rt.store.client.hget(rt.store.worker_key(w.hostname), "state") == b"online":
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise TaskqError(f"worker {w.profile} not ready after {timeout:g} s; "
                             f"see {w.log_path}")
        time.sleep(0.05)  # polling for readiness, not standing in for work


def stop_workers(workers: list[WorkerProcess], timeout: float = STOP_TIMEOUT,
                 cold: Callable[[], bool] = lambda: False) -> None:
    """Warm shutdown: SIGTERM lets running tasks finish; SIGKILL after `timeout` (or once
    `cold()` says so). Whatever is left of each worker's process group (its pool) goes too."""
    for w in workers:
        if w.process.poll() is None:
            w.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(w.process.poll() is None for w in workers):
        if time.monotonic() > deadline or cold():
            break
        time.sleep(0.05)  # polling for the warm shutdown to end
    for w in workers:
        kill_group(w)
        w.log_file.close()


def kill_group(w: WorkerProcess) -> None:
    """SIGKILL what is left of a worker's process group (it leads its own session) and reap it."""
    try:
        os.killpg(w.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the group is empty: every process of it has exited
    w.process.wait()


def broker_name(rt: Runtime) -> str:
    from taskq.urls import mask_url

    if rt.embedded:
        return f"embedded ({rt.embedded.socket_path})"
    return mask_url(rt.broker_url) or ""
