"""Flower against a taskq deployment: it sees the tasks workers run, through its HTTP API."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from smtp_server import free_port

pytestmark = pytest.mark.integration

AUTH = ("ops", "s3cret")


def _wait_flower(url: str, proc: subprocess.Popen[bytes], log: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, open(log).read()
        try:
            if requests.get(url + "/api/workers", auth=AUTH, timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)  # polling for readiness
    raise AssertionError("flower not ready: " + open(log).read())


def _task_info(url: str, task_id: str, seconds: float) -> dict[str, object] | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reply = requests.get(f"{url}/api/task/info/{task_id}", auth=AUTH, timeout=5)
        # Every event seen: a task whose events were switched on after it was received
        # reaches SUCCESS without the task-received event that names it; the next will not
        if reply.status_code == 200 and reply.json().get("state") == "SUCCESS" \
                and reply.json().get("received"):
            return reply.json()  # type: ignore[no-any-return]
        time.sleep(0.2)  # polling until Flower has seen the task's events
    return None


def _first_task_flower_reports(url: str, deployment) -> dict[str, object]:
    """Run tasks one at a time until Flower reports one: a worker starts with task events
    off, and Flower switches them on within its 5 s enable-events interval."""
    for _ in range(15):
        record = deployment.submit("data", data=[1, 2, 3])
        assert deployment.wait(record.id).state == "SUCCESS"
        info = _task_info(url, record.id, seconds=2)
        if info is not None:
            assert info["uuid"] == record.id
            return info
    raise AssertionError("flower never reported a task: " + deployment.worker_logs())


def test_flower_reads_back_a_task_a_worker_ran(deployment):
    # Given Flower with basic auth, started before the worker so it sees every event
    port = free_port()
    log = str(deployment.home / "flower.log")
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "taskq", "flower", "--port", str(port),
                                 "--basic-auth", ":".join(AUTH)], env=deployment.env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=deployment.home)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_flower(url, proc, log)
        deployment.start_worker()  # task events off, as by default
        # When tasks run, Then Flower's API reports them (it turned the worker's events on),
        # by our task name, and refuses without the password
        info = _first_task_flower_reports(url, deployment)
        assert info["name"] == "taskq.data_processing"
        assert info["worker"].startswith("worker.")
        assert requests.get(f"{url}/api/tasks", timeout=5).status_code == 401
    finally:
        proc.terminate()
        proc.wait(15)
    # And it said where it served
    assert f"taskq flower listening on {url}\n" in Path(log).read_text()


def test_flower_refuses_an_open_address_without_basic_auth(deployment):
    result = deployment.cli("flower", "--address", "0.0.0.0")
    assert result.returncode == 2
    assert "basic_auth" in result.stderr
