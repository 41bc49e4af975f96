"""`taskq up` supervises what it starts: a signal stops every process of the stack and leaves
none behind, a worker or broker that dies comes back, `taskq down` stops the whole stack,
and read commands never start the embedded broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import psutil
import pytest
import yaml

pytestmark = pytest.mark.integration

READY_TIMEOUT = 60.0  # seconds `taskq up` may take to start on a loaded machine


def keep_profiles(deployment, *names: str) -> None:
    """Only these worker profiles in the deployment's config (fewer processes to start)."""
    path = deployment.env["TASKQ_CONFIG"]
    with open(path) as f:
        raw = yaml.safe_load(f)
    raw["workers"] = {name: raw["workers"][name] for name in names}
    with open(path, "w") as f:
        yaml.safe_dump(raw, f)


def start_up(deployment) -> subprocess.Popen[str]:
    """`taskq up` in a session of its own, once it says that every worker is ready."""
    up = subprocess.Popen([sys.executable, "-m", "taskq", "up"], env=deployment.env,
                          cwd=deployment.home, stderr=subprocess.PIPE, text=True,
                          start_new_session=True)
    first = up.stderr.readline()
    assert first.startswith("taskq up: broker"), first + _rest(up)
    assert up.stderr.readline().startswith("logs:")
    return up


def _rest(up: subprocess.Popen[str]) -> str:
    if up.poll() is None:
        up.kill()
    return up.stderr.read()


def stack_processes(deployment, up: subprocess.Popen[str]) -> list[psutil.Process]:
    """Every process `taskq up` runs: its workers, their pool processes and the broker."""
    found = psutil.Process(up.pid).children(recursive=True)
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


def stop(up: subprocess.Popen[str], processes: list[psutil.Process] = ()) -> None:
    """Clean-up for a test that failed half-way: the whole stack, whatever its state, and
    any process of it that `taskq up` left behind."""
    for p in left_running(list(processes)):
        if p.pid != up.pid:
            p.kill()
    if up.poll() is None:
        up.send_signal(signal.SIGQUIT)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
    up.stderr.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_up_stops_its_workers_their_pools_and_the_broker(deployment, sig):
    # Given `taskq up` running two workers (with their pool processes) and the broker
    keep_profiles(deployment, "priority", "data")
    up = start_up(deployment)
    processes = stack_processes(deployment, up)
    try:
        assert len(processes) >= 2 + 3 + 1  # two workers, three pool processes, the broker
        # When the signal is sent to `taskq up` alone (as a service manager or a closed
        # terminal does, not to its workers)
        up.send_signal(sig)
        code = up.wait(60)
        # Then it exits 0 having said so, and no process it ran is left
        assert code == 0
        assert "stopped" in up.stderr.read()
        assert left_running(processes) == []
    finally:
        stop(up, processes)
