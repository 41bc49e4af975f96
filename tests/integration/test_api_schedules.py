"""The schedule routes over HTTP answer as `taskq schedule` does."""

from __future__ import annotations

import pytest
from api_server import running_api

pytestmark = pytest.mark.integration


def test_schedules_are_added_paused_resumed_run_and_removed_over_http(deployment):
    with running_api(deployment) as api:
        # Given a schedule added over HTTP
        added = api.post("/api/schedules", json={
            "name": "nightly", "type": "data", "parameters": {"data": "hi"},
            "cron": "0 3 * * *", "timezone": "Europe/Paris", "catch_up": "once"})
        assert added.status_code == 201, added.text
        assert added.json()["next_run"].endswith("T02:00:00.000Z")  # 03:00 in Paris, winter
        # Then the CLI lists it as the API does
        listed = deployment.cli_json("schedule", "list")
        assert listed == api.get("/api/schedules").json()["schedules"]
        # And pause, resume, run and remove answer with the schedule, the task, the name
        paused = api.post("/api/schedules/nightly/pause").json()
        assert (paused["paused"], paused["next_run"]) == (True, None)
        assert api.post("/api/schedules/nightly/resume").json()["paused"] is False
        ran = api.post("/api/schedules/nightly/run")
        assert ran.status_code == 202
        assert ran.json()["params"] == {"data": "hi", "operation": "word_count"}
        assert api.request("DELETE", "/api/schedules/nightly").json() == {"removed": "nightly"}
        assert api.get("/api/schedules/nightly").status_code == 404


@pytest.mark.parametrize(("body", "problem"), [
    ({"name": "x", "type": "data", "parameters": {"data": "x"}, "interval": 0}, "interval"),
    ({"name": "x", "type": "data", "parameters": {"data": "x"}, "interval": -1}, "interval"),
    ({"name": "x", "type": "data", "parameters": {"data": "x"}, "interval": 1e300},
     "interval"),
    ({"name": "x", "type": "data", "parameters": {"data": "x"}, "cron": "bad"}, "cron"),
    ({"name": "x", "type": "nope", "interval": 5}, "type"),
    ({"name": "a b", "type": "data", "parameters": {"data": "x"}, "interval": 5}, "name"),
    (["not", "an", "object"], "body"),
])
def test_a_bad_schedule_is_a_400_naming_the_problem(deployment, body, problem):
    with running_api(deployment) as api:
        answer = api.post("/api/schedules", json=body)
    assert answer.status_code == 400
    assert problem in answer.json()["message"]
