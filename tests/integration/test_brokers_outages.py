"""Broker outages: a restart mid-run loses no task, and a submit to a broker that is down fails
fast and leaves no record behind."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from smtp_server import free_port

from taskq.errors import BrokerUnavailable

pytestmark = pytest.mark.integration

FINAL = (b"SUCCESS", b"FAILURE", b"REVOKED")
SUBMIT_FAILS_WITHIN = 5.0  # seconds


def _states(deployment, ids):
    store = deployment.runtime.store
    pipe = store.client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hget(store.key(task_id), "state")
    return pipe.execute()


def _wait_done(deployment, ids, count, timeout=90.0):
    deadline = time.monotonic() + timeout
    while sum(1 for s in _states(deployment, ids) if s in FINAL) < count:
        assert time.monotonic() < deadline, deployment.worker_logs()
        time.sleep(0.1)  # polling for progress


def _restart_broker(deployment, probe_id):
    if deployment.broker == "rabbitmq":
        for action in ("stop_app", "start_app"):
            done = subprocess.run(["rabbitmqctl", action], capture_output=True, timeout=60)
            assert done.returncode == 0, done.stderr
        return
    # The embedded broker: stopped by `taskq down`, started again by the next command.
    assert deployment.cli("down").returncode == 0
    status = deployment.cli("status", probe_id, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] in {"QUEUED", "SUCCESS", "STARTED"}


@pytest.mark.brokers("embedded", "rabbitmq")
def test_a_broker_restart_mid_run_loses_no_queued_task_and_workers_reconnect(deployment):
    if deployment.broker == "rabbitmq" and subprocess.run(
            ["rabbitmqctl", "status"], capture_output=True).returncode != 0:
        pytest.skip("restarting RabbitMQ needs rabbitmqctl on this machine")
    # Given a worker part-way through 100 queued tasks
    deployment.start_worker("--concurrency", "2")
    ids = [deployment.submit("spin", "low", ms=50).id for _ in range(100)]
    _wait_done(deployment, ids, 10)
    # When the broker restarts
    _restart_broker(deployment, ids[-1])
    # Then every task still ends SUCCESS, run by the same worker once it reconnected
    _wait_done(deployment, ids, len(ids))
    assert set(_states(deployment, ids)) == {b"SUCCESS"}
    # And a new task submitted from the CLI is run
    result = deployment.cli("submit", "--type", "data", "--param", "data=after restart",
                            "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stderr


@pytest.mark.brokers("rabbitmq", "redis")
def test_submit_while_the_broker_is_down_exits_7_fast_and_leaves_no_record(deployment):
    # Given a broker URL where nothing listens (the result backend is up)
    port = free_port()
    deployment.env["TASKQ_BROKER_URL"] = (
        f"amqp://guest:secret@127.0.0.1:{port}//" if deployment.broker == "rabbitmq"
        else f"redis://:secret@127.0.0.1:{port}/13")
    # When a task is submitted, from the CLI and from Python
    result = deployment.cli("submit", "--type", "data", "--param", "data=x")
    began = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        deployment.submit("data", data="x")
    took = time.monotonic() - began
    # Then the submit gives up within a few seconds (the README says about one; the rest is
    # room for a loaded machine; the interpreter's start, seconds of it here under load, is
    # not the submit's), and the CLI exits 7 naming the broker with its password masked
    assert took < SUBMIT_FAILS_WITHIN, f"took {took:.1f} s"
    assert result.returncode == 7, result.stderr
    assert result.stderr.startswith("error: broker unreachable")
    assert f"127.0.0.1:{port}" in result.stderr
    assert "secret" not in result.stderr
    assert "Traceback" not in result.stderr
    # And no record is left claiming the task is QUEUED
    store = deployment.runtime.store
    assert store.client.zcard(f"{store.prefix}:tasks") == 0
    assert not list(store.client.scan_iter(match=f"{store.prefix}:task:*"))
