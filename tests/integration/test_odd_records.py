"""No read fails because of one odd record: records written straight into Redis (by another
program, an older taskq, by hand) with a 3,000-level result, invalid JSON, a time that is not
a number, bytes that are not UTF-8 and markup in an error are shown as far as they can be by
`status` (its bare read and the store), `status --json`, `list`, `dlq list`, `workers`,
`watch`, the API's task routes and /metrics."""

from __future__ import annotations

import json
import time

import pytest
from api_server import running_api

from taskq import records

pytestmark = pytest.mark.integration

DEEP = "[" * 3000 + "]" * 3000


def odd_records(deployment) -> dict[str, str]:
    """Write one good and several odd records, indexed as taskq indexes them; their ids."""
    store = deployment.runtime.store
    client, prefix, now = store.client, store.prefix, time.time()
    rows: dict[str, dict[str, bytes | str | float]] = {
        "good": {"state": "SUCCESS", "result": '{"words": 2}', "finished_at": now},
        "deep result": {"state": "SUCCESS", "result": DEEP, "finished_at": now},
        "bad json": {"state": "RETRY", "params": "{not json", "attempt_errors": "[{",
                     "progress": "}", "error": "boom", "next_attempt_at": now + 60},
        "bad time": {"state": "STARTED", "started_at": "soon", "submitted_at": "yesterday",
                     "worker": "ghost.1@nowhere", "attempts": "many"},
        "bad bytes": {"state": "FAILURE", "error": b"caf\xe9 \xff\xfe", "result": b"\xff",
                      "exc_type": b"Bad\xc3", "finished_at": now},
        "markup": {"state": "FAILURE", "error": "KeyError: '[/]' [bold]", "finished_at": now},
    }
    ids = {}
    for name, odd in rows.items():
        task_id = records.new_id()
        ids[name] = task_id
        state = str(odd["state"])
        client.hset(store.key(task_id), mapping={
            "id": task_id, "type": "data_processing", "priority": "high",
            "queue": f"{prefix}.data_processing.high", "params": '{"data": "x"}',
            "submitted_at": now, **odd})
        client.zadd(store.index_key, {task_id: now})
        client.zadd(store.cell_key(state, "data_processing", "high"), {task_id: now})
        if state == "FAILURE":
            client.zadd(store.dlq_key("data_processing"), {task_id: now})
    return ids


def ok(result) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.mark.brokers("embedded", "redis")
def test_the_command_line_reads_show_every_odd_record(deployment):
    ids = odd_records(deployment)
    # status: the bare read, its JSON, and the store's read (--wait on a final record)
    assert "deep result" in ids
    assert json.loads(ok(deployment.cli("status", ids["deep result"], "--json")))[
        "result"] == DEEP
    assert "KeyError: '[/]' [bold]" in ok(deployment.cli("status", ids["markup"]))
    for name, task_id in ids.items():
        shown = ok(deployment.cli("status", task_id))
        assert task_id in shown, name
        data = json.loads(ok(deployment.cli("status", task_id, "--json")))
        assert data["id"] == task_id, name
        if data["state"] in ("SUCCESS", "FAILURE"):
            waited = deployment.cli("status", task_id, "--wait", "--json")
            assert waited.returncode == (0 if data["state"] == "SUCCESS" else 5), name
            assert json.loads(waited.stdout) == data, name
    bad = json.loads(ok(deployment.cli("status", ids["bad bytes"], "--json")))
    assert (bad["error"], bad["exc_type"]) == ("caf\ufffd \ufffd\ufffd", "Bad\ufffd")
    odd_time = json.loads(ok(deployment.cli("status", ids["bad time"], "--json")))
    assert (odd_time["started_at"], odd_time["attempts"]) == (None, 0)
    # list, dead letters, workers and watch
    listed = json.loads(ok(deployment.cli("list", "--json")))
    assert {t["id"] for t in listed} == set(ids.values())
    deployment.env["COLUMNS"] = "250"  # wide enough for the whole note
    assert "KeyError: '[/]' [bold]" in ok(deployment.cli("list", "--limit", "50"))
    assert len(json.loads(ok(deployment.cli("dlq", "list", "--json")))) == 2
    ok(deployment.cli("dlq", "list"))
    ok(deployment.cli("workers"))
    assert ids["good"][:8] in ok(deployment.cli("watch", "--once"))


@pytest.mark.brokers("embedded", "redis")
def test_the_api_task_routes_and_metrics_show_every_odd_record(deployment):
    ids = odd_records(deployment)
    with running_api(deployment) as api:
        page = api.get("/api/tasks?limit=50")
        assert page.status_code == 200, page.text
        assert {t["id"] for t in page.json()["tasks"]} == set(ids.values())
        for name, task_id in ids.items():
            reply = api.get(f"/api/tasks/{task_id}")
            assert reply.status_code == 200, (name, reply.text)
            assert reply.json()["task_id"] == task_id
        assert api.get(f"/api/tasks/{ids['deep result']}").json()["result"] == DEEP
        metrics = api.get("/metrics")
        assert metrics.status_code == 200, metrics.text
        assert 'taskq_tasks{state="FAILURE",type="data_processing"} 2.0' in metrics.text
