"""Submitters on several hosts at once: every task queued once, with a record of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from fleet import HEARTBEAT, wait_for

from taskq.broker.queues import queue_stats

# One runner takes every host test: each picks a free 10.213.<x> range, and two picking
# at the same moment could take the same one.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("hosts")]

PER_HOST = 10000
PRIORITIES = ("high", "normal", "low")


@pytest.mark.brokers("rabbitmq", "redis")
def test_bulk_submits_from_three_hosts_at_once_queue_every_task_once(deployment, fleet):
    # Given three hosts, each with 10,000 tasks at mixed priorities
    hosts = fleet(3).hosts
    lines = "".join(json.dumps({"task_type": "spin", "priority": PRIORITIES[n % 3],
                                "parameters": {"ms": n}}) + "\n" for n in range(PER_HOST))
    # When each host submits them at the same time, through its own link (each started with
    # `--from -` and given its lines once all three wait for them)
    outs = [deployment.home / f"out-{n}" for n in range(len(hosts))]
    procs = []
    for host, out in zip(hosts, outs, strict=True):
        with out.open("wb") as sink, out.with_suffix(".err").open("wb") as errors:
            procs.append(host.popen(
                [sys.executable, "-m", "taskq", "submit", "--from", "-", "--json"],
                env=host.env(deployment.env, heartbeat=HEARTBEAT), cwd=deployment.home,
                stdin=subprocess.PIPE, stdout=sink, stderr=errors))
    wait_for(lambda: all(_reading_a_pipe(proc.pid) for proc in procs), 60,
             "every submit waiting for its lines")
    for proc in procs:
        proc.stdin.write(lines.encode())
        proc.stdin.close()
    # Then each exits 0 listing every one of its lines once
    outputs = []
    for proc, out in zip(procs, outs, strict=True):
        assert proc.wait(120) == 0, out.with_suffix(".err").read_text()
        outputs.append(out.read_text())
        rows = [json.loads(line) for line in outputs[-1].splitlines()]
        assert sorted(row["line"] for row in rows) == list(range(1, PER_HOST + 1))
        assert {row["state"] for row in rows} == {"QUEUED"}
    # And the 30,000 ids are unique, each with a QUEUED record of its priority
    ids = [json.loads(line)["id"] for out in outputs for line in out.splitlines()]
    assert len(set(ids)) == len(ids) == len(hosts) * PER_HOST
    store = deployment.runtime.store
    assert store.client.zcard(store.index_key) == len(ids)
    found = store.get_many(ids)
    assert all(record is not None and record.state == "QUEUED" for record in found)
    assert Counter(record.priority for record in found if record) == Counter(
        PRIORITIES[n % 3] for n in range(PER_HOST) for _ in hosts)
    # And the submits did run at once: each one's records were written while the others' were
    spans = [(min(times), max(times)) for out in outputs
             if (times := [r.submitted_at or 0 for r in store.get_many(
                 [json.loads(line)["id"] for line in out.splitlines()]) if r])]
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans
    # And the broker holds exactly one message per task, in its priority's queue
    depths = {q.name: q.depth for q in queue_stats(deployment.runtime) if q.depth}
    assert sum(depths.values()) == len(ids), depths


def _reading_a_pipe(pid: int) -> bool:
    """The process is blocked reading a pipe (its stdin, here)."""
    return "pipe" in Path(f"/proc/{pid}/wchan").read_text()
