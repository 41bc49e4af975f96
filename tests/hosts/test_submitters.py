"""Submitters on several hosts at once: every task queued once, with a record of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from fleet import HEARTBEAT

from taskq.queues import queue_stats

pytestmark = pytest.mark.integration

PER_HOST = 2000
PRIORITIES = ("high", "normal", "low")


@pytest.mark.brokers("rabbitmq", "redis")
def test_bulk_submits_from_three_hosts_at_once_queue_every_task_once(deployment, fleet):
    # Given three hosts, each with a file of 2,000 tasks at mixed priorities
    hosts = fleet(3).hosts
    lines = "".join(json.dumps({"task_type": "spin", "priority": PRIORITIES[n % 3],
                                "parameters": {"ms": n}}) + "\n" for n in range(PER_HOST))
    path = deployment.home / "tasks.jsonl"
    path.write_text(lines)
    # When each host submits its file at the same time, through its own link
    procs = [host.popen([sys.executable, "-m", "taskq", "submit", "--from", str(path),
                         "--json"], env=host.env(deployment.env, heartbeat=HEARTBEAT),
                        cwd=deployment.home, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for host in hosts]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    # Then each exits 0 listing every one of its lines once
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        rows = [json.loads(line) for line in out.decode().splitlines()]
        assert sorted(row["line"] for row in rows) == list(range(1, PER_HOST + 1))
        assert {row["state"] for row in rows} == {"QUEUED"}
    # And the 6,000 ids are unique, each with a QUEUED record of its priority
    ids = [json.loads(line)["id"] for out, _ in outputs for line in out.decode().splitlines()]
    assert len(set(ids)) == len(ids) == len(hosts) * PER_HOST
    store = deployment.runtime.store
    assert store.client.zcard(store.index_key) == len(ids)
    found = store.get_many(ids)
    assert all(record is not None and record.state == "QUEUED" for record in found)
    assert Counter(record.priority for record in found if record) == Counter(
        PRIORITIES[n % 3] for n in range(PER_HOST) for _ in hosts)
    # And the submits did run at once: each one's records were written while the others' were
    spans = [(min(times), max(times)) for out, _ in outputs
             if (times := [r.submitted_at or 0 for r in store.get_many(
                 [json.loads(line)["id"] for line in out.decode().splitlines()]) if r])]
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans
    # And the broker holds exactly one message per task, in its priority's queue
    depths = {q.name: q.depth for q in queue_stats(deployment.runtime) if q.depth}
    assert sum(depths.values()) == len(ids), depths
