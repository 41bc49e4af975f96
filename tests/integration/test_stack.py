"""The local stack as a user runs it: `taskq demo`, `taskq up` + Ctrl-C, `taskq down`,
worker logs, and Celery's own CLI on taskq's app."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_runs_every_type_at_every_priority_and_stops_cleanly(deployment):
    env = {k: v for k, v in deployment.env.items() if k != "TASKQ_SMTP_URL"}
    result = subprocess.run([sys.executable, "-m", "taskq", "demo"], env=env, text=True,
                            capture_output=True, timeout=180, cwd=deployment.home)
    assert result.returncode == 0, result.stderr
    assert "demo finished: 9 of 9 tasks succeeded" in result.stderr
    # the broker it started is stopped again
    assert not deployment.runtime.embedded.is_running()
    # email without SMTP configured lands in the outbox
    assert len(list((deployment.home / "outbox").glob("*.eml"))) == 3
    # piped, the table is printed once, whole lines, one row a task, every one SUCCESS
    assert result.stdout.endswith("\n")
    rows = [line for line in result.stdout.splitlines() if "SUCCESS" in line]
    assert len(rows) == 9 and result.stdout.count("taskq demo: every type") == 1


def test_up_serves_tasks_and_ctrl_c_stops_workers_and_broker(deployment):
    # Given `taskq up` running in the foreground
    up = subprocess.Popen([sys.executable, "-m", "taskq", "up"], env=deployment.env,
                          stderr=subprocess.PIPE, text=True, cwd=deployment.home)
    try:
        first = up.stderr.readline()
        assert first.startswith("taskq up: broker embedded"), first + up.stderr.read()
        assert "logs:" in up.stderr.readline()
        # When a task is submitted, it runs
        done = deployment.cli("submit", "--type", "data", "--param", "data=hello world",
                              "--wait", "--timeout", "30", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["state"] == "SUCCESS"
        # When Ctrl-C is pressed
        up.send_signal(signal.SIGINT)
        rest = up.stderr.read()
        # Then it stops everything (its exit code: test_cli_blocking's Ctrl-C test)
        up.wait(60)
        assert "stopped" in rest
        assert not deployment.runtime.embedded.is_running()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        up.stderr.close()


def test_down_stops_a_broker_left_running_and_says_so_when_none(deployment):
    deployment.runtime.broker_url  # starts the embedded broker  # noqa: B018
    stopped = deployment.cli("down")
    assert stopped.returncode == 0
    assert "stopped the embedded broker" in stopped.stderr
    again = deployment.cli("down")
    assert again.returncode == 0
    assert "no embedded broker was running" in again.stderr


def test_worker_log_lines_about_a_task_name_its_id_type_priority_and_attempt(deployment):
    deployment.start_worker()
    record = deployment.submit("data", priority="high", data=[1, 2, 3])
    deployment.wait(record.id)
    deployment.stop_workers()
    lines = [line for line in deployment.worker_logs().splitlines() if "succeeded" in line]
    assert lines, deployment.worker_logs()
    assert (f"task_id={record.id} type=data_processing priority=high attempt=1"
            in lines[0])


def test_json_log_format_writes_one_object_a_line_with_the_task_context(deployment):
    deployment.env["TASKQ_LOG_FORMAT"] = "json"
    deployment.start_worker()
    record = deployment.submit("crash", code=3)
    deployment.wait(record.id)
    deployment.stop_workers()
    entries = [json.loads(line) for line in deployment.worker_logs().splitlines()
               if line.startswith("{")]
    failures = [e for e in entries if e.get("task_id") == record.id and e["level"] == "ERROR"]
    assert len(failures) == 1
    assert failures[0]["type"] == "crash"
    assert failures[0]["attempt"] == 1
    assert "ValueError: bad input 3" in failures[0]["traceback"]


def test_celery_inspect_ping_works_on_taskq_app(deployment):
    deployment.start_worker()
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "taskq.celery_app", "inspect", "ping",
         "--timeout", "5"], env=deployment.env, capture_output=True, text=True, timeout=60,
        cwd=deployment.home)
    assert result.returncode == 0, result.stderr
    assert "pong" in result.stdout
