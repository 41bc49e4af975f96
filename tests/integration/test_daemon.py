"""The detached daemon: `taskq up -d` starts the supervised stack in the background,
`taskq up --status` describes it, `taskq down` stops it and leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal

import psutil
import pytest
import yaml
from stack_processes import keep_profiles, left_running, stack_processes, wait_for

from taskq.broker.embedded import EmbeddedBroker

pytestmark = pytest.mark.integration


def up_status(deployment) -> dict:
    result = deployment.cli("up", "--status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def kill_all(processes: list[psutil.Process]) -> None:
    """Clean-up for a test that failed half-way."""
    for p in left_running(processes):
        p.kill()


def test_a_detached_stack_runs_tasks_restarts_a_killed_worker_and_down_leaves_nothing(
        deployment):
    # Given `taskq up -d` in a fresh home, with one worker profile
    keep_profiles(deployment, "priority")
    started = deployment.cli("up", "-d", timeout=120)
    # Then it returns once the worker is ready, saying what runs and where it logs
    assert started.returncode == 0, started.stderr
    status = up_status(deployment)
    pid = status["pid"]
    assert started.stderr.startswith(f"taskq up: running detached (pid {pid}): broker "
                                     "embedded"), started.stderr
    assert f"logs: {deployment.home}/logs/taskq-up.log" in started.stderr
    processes = [psutil.Process(pid), *stack_processes(deployment, pid)]
    try:
        assert status["running"] and status["mode"] == "detached" and status["ready"]
        [worker] = status["workers"]
        assert (worker["profile"], worker["state"], worker["restarts"]) == (
            "priority", "running", 0)
        assert os.path.exists(status["log"])
        # And a second `up -d` says it runs and starts nothing
        again = deployment.cli("up", "-d")
        assert again.returncode == 0, again.stderr
        assert again.stderr.startswith(f"taskq up is already running (pid {pid})")
        assert up_status(deployment)["pid"] == pid
        # And a foreground `taskq up` in the same home refuses with exit 8
        foreground = deployment.cli("up")
        assert foreground.returncode == 8, foreground.stderr
        assert foreground.stderr == (f"error: taskq up is already running (pid {pid}); "
                                     "`taskq up --status` shows it, `taskq down` stops it\n")
        # When a task runs and its worker is killed (main process and pool) mid-run
        held = deployment.submit("spin", "high", ms=3000)
        wait_for(lambda: deployment.runtime.store.get(held.id).state == "STARTED")
        os.killpg(worker["pid"], signal.SIGKILL)
        # Then the daemon starts the worker again and the task it held completes
        wait_for(lambda: up_status(deployment)["workers"][0]["restarts"] == 1)
        assert deployment.wait(held.id, timeout=90).state == "SUCCESS"
        new = psutil.Process(up_status(deployment)["workers"][0]["pid"])
        processes += [new, *new.children()]
        # And tasks submitted from the CLI complete
        done = deployment.cli("submit", "--type", "data", "--param", "data=x", "--wait",
                              "--timeout", "60")
        assert done.returncode == 0, done.stderr
        # When `taskq down` is run
        down = deployment.cli("down", timeout=120)
        # Then it stops the daemon, its workers and the broker: nothing it started is left
        assert down.returncode == 0, down.stderr
        assert down.stderr == f"stopped taskq up (pid {pid}) and every worker it ran\n"
        assert left_running(processes) == []
        assert up_status(deployment) == {"running": False}
        assert not (deployment.home / "up.pid").exists()
        log = (deployment.home / "logs" / "taskq-up.log").read_text()
        assert f"worker priority (pid {worker['pid']}) exited with code -9" in log
    finally:
        kill_all(processes)


def test_a_detached_start_with_a_bad_config_exits_3_and_leaves_nothing_running(deployment):
    # Given a config with a mistake
    path = deployment.env["TASKQ_CONFIG"]
    with open(path) as f:
        raw = yaml.safe_load(f)
    raw["workers"]["data"]["concurrency"] = 0
    with open(path, "w") as f:
        yaml.safe_dump(raw, f)
    # When `taskq up -d` is run
    result = deployment.cli("up", "-d")
    # Then it exits 3 naming the mistake, and nothing runs: no daemon, no broker
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("error: invalid configuration in ")
    assert "workers.data.concurrency" in result.stderr
    assert not (deployment.home / "up.pid").exists()
    assert not EmbeddedBroker(deployment.home).is_running()  # (the config cannot be loaded)



def test_a_detached_start_whose_broker_cannot_start_exits_1_and_leaves_nothing_running(
        deployment):
    # Given a home where the embedded broker cannot write its config (a directory is there)
    (deployment.home / "redis.conf").mkdir()
    # When `taskq up -d` is run
    result = deployment.cli("up", "-d", timeout=120)
    # Then it exits 1 with the reason, and nothing runs: no daemon, no broker
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: taskq up -d did not start: home: cannot write the "
                                     "embedded broker's files in "), result.stderr
    assert "nothing is left running" in result.stderr
    assert "Traceback" not in result.stderr
    assert up_status(deployment) == {"running": False}
    assert not deployment.runtime.embedded.is_running()
