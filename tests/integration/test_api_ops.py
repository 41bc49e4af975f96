"""The operations routes over HTTP: list with filters and pages, cancel, retry, queues, workers."""

from __future__ import annotations

import pytest
from api_server import running_api

pytestmark = pytest.mark.integration


def test_list_pages_through_tasks_with_the_cli_filters(deployment):
    # Given five data tasks and one email task waiting (no worker)
    for i in range(5):
        deployment.submit("data", data=str(i))
    deployment.submit("email", to="a@example.com")
    with running_api(deployment) as api:
        # When data tasks are listed two at a time
        first = api.get("/api/tasks", params={"type": "data", "limit": 2}).json()
        second = api.get("/api/tasks", params={"type": "data", "limit": 2,
                                               "offset": first["next_offset"]}).json()
        everything = api.get("/api/tasks", params={"state": "QUEUED"}).json()
        bad = api.get("/api/tasks", params={"state": "DONE"})
    # Then pages follow each other, newest first, and filters match the CLI's
    assert [first["count"], second["count"]] == [2, 2]
    ids = [t["task_id"] for t in first["tasks"] + second["tasks"]]
    assert len(set(ids)) == 4
    assert {t["type"] for t in first["tasks"] + second["tasks"]} == {"data_processing"}
    assert everything["count"] == 6
    assert bad.status_code == 400
    assert "unknown state" in bad.json()["message"]


def test_cancel_then_retry_answer_as_the_cli_does(deployment):
    deployment.start_worker("--queues", "high")
    with running_api(deployment) as api:
        # A waiting task is cancelled; cancelling again is a conflict
        waiting = deployment.submit("data", priority="low", data="x")
        cancelled = api.request("DELETE", f"/api/tasks/{waiting.id}")
        assert (cancelled.status_code, cancelled.json()["state"]) == (200, "REVOKED")
        again = api.request("DELETE", f"/api/tasks/{waiting.id}")
        assert (again.status_code, again.json()["error"]) == (409, "conflict")
        assert api.request("DELETE", "/api/tasks/nope").status_code == 404
        # A failed task is retried as a new, linked task; a second retry is a conflict
        failed = api.wait_final(api.post("/api/tasks", json={
            "task_type": "crash", "priority": "high"}).json()["task_id"])
        retried = api.post(f"/api/tasks/{failed['task_id']}/retry")
        assert retried.status_code == 202, retried.text
        assert retried.json()["retry_of"] == failed["task_id"]
        assert api.post(f"/api/tasks/{failed['task_id']}/retry").status_code == 409
        # Queues and workers
        queues = api.get("/api/queues", params={"type": "data"}).json()["queues"]
        workers = api.get("/api/workers").json()["workers"]
    assert [q["priority"] for q in queues] == ["high", "normal", "low"]
    assert [w["state"] for w in workers] in (["online"], ["busy"])
