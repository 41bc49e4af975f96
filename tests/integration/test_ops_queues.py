"""`taskq queues`: depth per queue and priority and its consumers, on every broker."""

from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.integration

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _depths(deployment, want, field="depth", timeout=10.0):
    """The queues view once the broker counts `want` ({queue suffix: n}) in `field`."""
    deadline = time.monotonic() + timeout
    while True:
        rows = {r["name"].split(".", 1)[1]: r for r in deployment.cli_json("queues")}
        if all(rows[name][field] == n for name, n in want.items()) or \
                time.monotonic() > deadline:
            return rows
        # polling: a broker counts a publish, or a worker's consumer, a moment later
        time.sleep(0.1)


@pytest.mark.brokers()
def test_queues_show_depth_by_priority_oldest_waiting_and_consumers(deployment):
    # Given two high and one low task waiting, and no worker
    for _ in range(2):
        deployment.submit("spin", "high", ms=1)
    deployment.submit("data", "low", data=[1])
    # When the queues are listed
    rows = _depths(deployment, {"spin.high": 2, "data_processing.low": 1})
    # Then each queue shows its own depth, and the age of its oldest waiting task
    assert rows["spin.high"]["depth"] == 2
    assert rows["data_processing.low"]["depth"] == 1
    assert sum(r["depth"] for r in rows.values()) == 3
    assert rows["spin.high"]["oldest_waiting_age"] >= 0
    assert rows["spin.normal"]["oldest_waiting_age"] is None
    # (its time in ISO 8601, UTC, as every --json output shows times)
    assert ISO_TIME.match(rows["spin.high"]["oldest_waiting_at"])
    assert rows["spin.normal"]["oldest_waiting_at"] is None
    # And, highest priority first, every (type, priority) is listed
    assert [r["priority"] for r in deployment.cli_json("queues")][0] == "high"
    settings = deployment.runtime.settings
    assert len(rows) == len(settings.task_types) * len(settings.priorities)
    # When a worker reads only the normal data queue
    deployment.start_worker("--type", "data", "--queues", "normal", "--concurrency", "1")
    rows = _depths(deployment, {"data_processing.normal": 1}, field="consumers")
    # Then that queue has one consumer and the others none, with depths unchanged
    assert rows["data_processing.normal"]["consumers"] == 1
    assert rows["spin.high"]["consumers"] == 0
    assert rows["spin.high"]["depth"] == 2
    assert rows["data_processing.low"]["depth"] == 1
    # And the table for people names the queues
    table = deployment.cli("queues", "--priority", "high")
    assert table.returncode == 0, table.stderr
    assert "spin.high" in table.stdout and "spin.low" not in table.stdout
