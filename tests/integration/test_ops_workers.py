"""`taskq workers`: busy with its current task, counters, and gone after SIGKILL."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from taskq.broker.heartbeat import INTERVAL

pytestmark = pytest.mark.integration

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _worker(deployment, pid):
    rows = deployment.cli_json("workers")
    return next(w for w in rows if f".{pid}@" in w["hostname"])


def test_worker_shows_busy_with_its_task_then_gone_within_two_heartbeats_of_sigkill(
        deployment):
    # Given a one-process worker that has finished one task and failed one
    proc = deployment.start_worker("--profile", "priority", "--concurrency", "1")
    deployment.wait(deployment.submit("spin", ms=1).id)
    deployment.wait(deployment.submit("crash").id)
    # When it runs a long task
    long = deployment.submit("spin", ms=60000)
    store = deployment.runtime.store
    deadline = time.monotonic() + 20
    while store.get(long.id).state != "STARTED" and time.monotonic() < deadline:
        time.sleep(0.02)  # polling for readiness
    row = _worker(deployment, proc.pid)
    # Then it is busy with that task, and shows its profile, queues and counters
    assert row["state"] == "busy"
    assert [t["id"] for t in row["current"]] == [long.id]
    assert row["current"][0]["running_for"] >= 0
    # (its times in ISO 8601, UTC, as every --json output shows times)
    assert all(ISO_TIME.match(t) for t in (row["started_at"], row["heartbeat_at"],
                                           row["current"][0]["started_at"]))
    assert (row["profile"], row["concurrency"], row["done"], row["failed"]) == (
        "priority", 1, 1, 1)
    settings = deployment.runtime.settings
    assert len(row["queues"]) == len(settings.task_types) * len(settings.priorities)
    assert row["queues"][0].endswith(".high")
    assert row["heartbeat_age"] < 2 * INTERVAL
    # When the worker is killed with SIGKILL (with its pool processes)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.monotonic()
    # Then within about two heartbeat intervals it shows as gone
    while _worker(deployment, proc.pid)["state"] != "gone":
        assert time.monotonic() - killed_at < 2 * INTERVAL + 3, "not gone in time"
        time.sleep(0.2)  # polling
    # And piped, the table is plain aligned text: a header, then a line a worker, nothing cut
    table = deployment.cli("workers")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["worker", "state", "current", "task", "done", "failed",
                                "queues", "heartbeat", "profile", "conc", "host"]
    row = next(line for line in lines if f".{proc.pid}" in line)
    assert row.split()[1] == "gone"
    assert "\x1b" not in table.stdout and "…" not in table.stdout and "─" not in table.stdout
