"""Flow control at a glance: /metrics and `taskq watch` count tasks WAITING for others, delayed
tasks, deduplicated submits and schedules."""

from __future__ import annotations

import pytest
from api_server import running_api

from taskq import schedule_ops
from taskq.request import SubmitRequest
from taskq.submit import submit

pytestmark = pytest.mark.integration


def _use_flow_control(deployment) -> dict[str, str]:
    """With no worker: a task, one WAITING for it, one delayed by an hour, a keyed submit made
    twice, and two hourly schedules, one paused (made in-process: the CLI's own tests cover
    these commands). Returns the ids by role."""
    runtime = deployment.runtime
    first = deployment.submit("spin", ms=1)
    after = submit(runtime, SubmitRequest(type="spin", params={"ms": 1}, after=(first.id,)))
    deployment.submit("spin", delay=3600, ms=1)
    for _ in range(2):  # data: spin's keys hold only 2 s in the tests' config
        submit(runtime, SubmitRequest(type="data", params={"data": [1]}, key="k-1"))
    for name in ("hourly", "nightly"):
        schedule_ops.add(runtime, name, {"type": "spin", "parameters": {"ms": 1},
                                         "interval": 3600})
    schedule_ops.store(runtime).pause("nightly")
    return {"first": first.id, "after": after.id}


@pytest.mark.brokers
def test_metrics_count_waiting_delayed_deduplicated_and_schedules(deployment):
    # Given a deployment using dependencies, a delay, an idempotency key and schedules
    _use_flow_control(deployment)
    # When /metrics is scraped
    with running_api(deployment) as api:
        text = api.get("/metrics").text
    # Then each is counted
    for line in ("taskq_tasks_waiting_for_dependencies 1.0", "taskq_delayed_tasks 1.0",
                 "taskq_deduplicated_total 1.0", "taskq_schedules 2.0",
                 "taskq_schedules_paused 1.0"):
        assert line in text.splitlines(), line


def test_watch_shows_the_flow_line_and_the_waiting_task(deployment):
    # Given the same deployment
    ids = _use_flow_control(deployment)
    # When `taskq watch` prints a snapshot (stdout not a terminal)
    result = deployment.cli("watch")
    # Then it exits 0 with the counts on one line and the WAITING task in the latest tasks
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    flow = next(line for line in lines if line.startswith("WAITING "))
    assert flow.startswith("WAITING 1   delayed 1   deduplicated 1   schedules 2 (1 paused), "
                           "next in "), flow
    row = next(line for line in lines if line.startswith(ids["after"][:8]))
    assert "WAITING" in row and f"after {ids['first'][:8]}" in row
