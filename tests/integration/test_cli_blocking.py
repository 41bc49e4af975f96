"""The commands that block: how `submit --wait` ends (5 on a cancelled task, 6 on its
timeout), and Ctrl-C ending each blocking command with exit 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import requests
import yaml
from smtp_server import free_port

pytestmark = pytest.mark.integration

READY_TIMEOUT = 60.0  # seconds a command may take to start blocking on a loaded machine


def _start(deployment, *args: str) -> subprocess.Popen[str]:
    """`taskq ARGS` in a session of its own, as a terminal's foreground job."""
    return subprocess.Popen([sys.executable, "-m", "taskq", *args], env=deployment.env,
                            cwd=deployment.home, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    """Its exit code and output; a process that does not end is killed (the test fails)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"still running after {timeout} s: {err[-2000:]}") from None
    return proc.returncode, out, err


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, "not blocking yet"
        time.sleep(0.05)  # polling for readiness


def _submitted_id(deployment) -> str | None:
    store = deployment.runtime.store
    ids = store.client.zrange(store.index_key, 0, -1)
    return ids[0].decode() if ids else None


def _waited_on(deployment, task_id: str | None) -> bool:
    """Whether a `--wait` is listening on the task's channel (subscribed: blocking)."""
    if task_id is None:
        return False
    store = deployment.runtime.store
    return bool(store.client.pubsub_numsub(store.task_channel(task_id))[0][1])


def test_submit_wait_exits_5_when_the_task_is_cancelled_while_it_waits(deployment):
    # Given `submit --wait` waiting on a task no worker runs
    proc = _start(deployment, "submit", "--type", "data", "--param", "data=x", "--wait",
                  "--json")
    try:
        _wait_until(lambda: _waited_on(deployment, _submitted_id(deployment)), proc)
        task_id = _submitted_id(deployment)
        # When the task is cancelled
        cancelled = deployment.cli("cancel", task_id)
        assert cancelled.returncode == 0, cancelled.stderr
    finally:
        code, out, err = _finish(proc)
    # Then the wait ends with exit 5, the record on stdout and the state on stderr
    assert code == 5, err
    assert json.loads(out)["state"] == "REVOKED"
    assert err == f"error: task {task_id} ended REVOKED: cancelled\n"


def test_submit_wait_exits_6_when_its_timeout_passes_first(deployment):
    # Given no worker running, When a task is submitted with --wait --timeout 0.5
    result = deployment.cli("submit", "--type", "data", "--param", "data=x", "--wait",
                            "--timeout", "0.5", timeout=30)
    # Then it exits 6 naming the task and its state, and the task stays queued
    task_id = _submitted_id(deployment)
    assert result.returncode == 6, result.stderr
    assert result.stderr == (f"error: timed out after 0.5 s waiting for task {task_id} "
                             "(still QUEUED)\n")
    assert deployment.runtime.store.get(task_id).state == "QUEUED"


def _blocking_submit(deployment) -> tuple[subprocess.Popen[str], Callable[[], bool]]:
    proc = _start(deployment, "submit", "--type", "data", "--param", "data=x", "--wait")
    return proc, lambda: _waited_on(deployment, _submitted_id(deployment))


def _blocking_status(deployment) -> tuple[subprocess.Popen[str], Callable[[], bool]]:
    record = deployment.submit("data", data="x")
    proc = _start(deployment, "status", record.id, "--wait")
    return proc, lambda: _waited_on(deployment, record.id)


def _blocking_worker(deployment) -> tuple[subprocess.Popen[str], Callable[[], bool]]:
    proc = _start(deployment, "worker", "--concurrency", "1")
    store = deployment.runtime.store

    def online() -> bool:
        return any(f".{proc.pid}@".encode() in host and store.client.hget(
            store.worker_key(host.decode()), "state") == b"online"
            for host in store.client.smembers(store.workers_key))

    return proc, online


def _blocking_up(deployment) -> tuple[subprocess.Popen[str], Callable[[], bool]]:
    _keep_one_worker_profile(deployment)  # one worker is enough here, and starts sooner
    proc = _start(deployment, "up")
    line = proc.stderr.readline()
    assert line.startswith("taskq up: broker"), line + proc.stderr.read()
    return proc, lambda: True


def _blocking_api(deployment) -> tuple[subprocess.Popen[str], Callable[[], bool]]:
    port = free_port()
    proc = _start(deployment, "api", "--port", str(port))

    def serving() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok
        except requests.ConnectionError:
            return False

    return proc, serving


def _keep_one_worker_profile(deployment) -> None:
    path = deployment.env["TASKQ_CONFIG"]
    with open(path) as f:
        raw = yaml.safe_load(f)
    raw["workers"] = {"data": raw["workers"]["data"]}
    with open(path, "w") as f:
        yaml.safe_dump(raw, f)


@pytest.mark.parametrize("start", [
    pytest.param(_blocking_submit, id="submit --wait"),
    pytest.param(_blocking_status, id="status --wait"),
    pytest.param(_blocking_worker, id="worker"),
    pytest.param(_blocking_up, id="up"),
    pytest.param(_blocking_api, id="api"),
])
def test_ctrl_c_ends_a_blocking_command_with_exit_130(deployment, start):
    # Given a command blocked in the foreground: waiting, serving or running a stack
    proc, ready = start(deployment)
    try:
        _wait_until(ready, proc)
    finally:
        # When Ctrl-C is pressed (the terminal signals the whole foreground job; also if
        # the test failed, so that `up` stops its workers)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        code, _, err = _finish(proc)
    # Then it stops with the documented exit code, and no traceback
    assert code == 130, err[-2000:]
    assert "Traceback" not in err
