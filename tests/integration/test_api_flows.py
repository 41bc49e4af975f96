"""The REST sidecar as the seed's clients use it: a real server process and real workers."""

from __future__ import annotations

import time

import pytest
from api_server import configure_api, running_api

pytestmark = pytest.mark.integration


@pytest.mark.brokers
def test_every_type_at_every_priority_is_accepted_then_polled_to_its_final_state(
        deployment, smtp_server):
    # Given a worker for every type, a file to process, and the API
    deployment.start_worker("--concurrency", "2")
    (deployment.home / "files").mkdir()
    (deployment.home / "files" / "notes.txt").write_text("one\ntwo\n")
    bodies = {"data_processing": {"data": "test data"},
              "email_sending": {"to": "a@example.com"},
              "file_processing": {"filename": "notes.txt"}}
    with running_api(deployment) as api:
        # When each type is submitted at each priority, in the seed's body shape
        submitted = []
        for type_name, params in bodies.items():
            for priority in ("high", "normal", "low"):
                reply = api.post("/api/tasks", json={"task_type": type_name, "priority":
                                                     priority, "parameters": params, "delay": 0})
                assert reply.status_code == 202, reply.text
                assert reply.json()["status"] in ("QUEUED", "STARTED", "SUCCESS")
                submitted.append((reply.json()["task_id"], type_name, priority))
        # Then each is polled to SUCCESS with its result, on its own queue
        for task_id, type_name, priority in submitted:
            final = api.wait_final(task_id)
            assert final["state"] == "SUCCESS", final
            assert (final["type"], final["priority"]) == (type_name, priority)
            assert final["result"]
        # And a task that fails reads back FAILURE with its error, and no traceback
        failed = api.wait_final(api.post("/api/tasks", json={
            "task_type": "crash", "parameters": {"code": 3}}).json()["task_id"])
        assert (failed["state"], failed["error"]) == ("FAILURE", "bad input 3")
        assert "traceback" not in failed
    assert len(smtp_server.messages) == 3


def test_unknown_task_id_answers_404_with_a_json_error(deployment):
    with running_api(deployment) as api:
        reply = api.get("/api/tasks/00000000-0000-0000-0000-000000000000")
    assert reply.status_code == 404
    assert reply.json()["error"] == "unknown_task"


def test_each_error_status_is_json_with_a_code_and_no_stack_trace(deployment):
    configure_api(deployment, max_body_bytes=2048)
    with running_api(deployment) as api:
        replies = {
            "bad json": api.post("/api/tasks", data="{nope",
                                 headers={"Content-Type": "application/json"}),
            "bad params": api.post("/api/tasks", json={"task_type": "email",
                                                       "parameters": {"to": "nobody"}}),
            "no route": api.get("/api/nothing"),
            "bad method": api.request("PUT", "/api/tasks"),
            "too large": api.post("/api/tasks", json={"task_type": "data",
                                                      "parameters": {"data": "x" * 5000}}),
            "not json": api.post("/api/tasks", data="task_type=data"),
        }
    expected = {"bad json": (400, "bad_request"), "bad params": (400, "invalid_parameters"),
                "no route": (404, "not_found"), "bad method": (405, "method_not_allowed"),
                "too large": (413, "body_too_large"),
                "not json": (415, "unsupported_media_type")}
    for name, reply in replies.items():
        assert (reply.status_code, reply.json()["error"]) == expected[name], name
        assert reply.headers["Content-Type"] == "application/json"
        assert reply.json()["message"]
        assert "Traceback" not in reply.text
    assert replies["bad params"].json()["fields"] == [
        {"path": "body.parameters.to", "message": "'nobody' is not an email address"}]


def test_broker_down_answers_503_on_submit_and_health(deployment):
    with running_api(deployment) as api:
        # Given the API up, when its (embedded) broker stops
        deployment.runtime.embedded.stop()
        submit = api.post("/api/tasks", json={"task_type": "data", "parameters": {"data": "x"}})
        health = api.get("/healthz")
    # Then submitting and the health check both say 503, naming what is unreachable
    assert submit.status_code == 503
    assert submit.json()["error"] == "broker_unavailable"
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert health.json()["backend"]["ok"] is False


@pytest.mark.brokers
def test_batch_is_validated_whole_and_nothing_is_queued_if_one_task_is_bad(deployment):
    with running_api(deployment) as api:
        # When one task of three is bad
        bad = api.post("/api/tasks/batch", json={"tasks": [
            {"task_type": "data", "parameters": {"data": "a"}},
            {"task_type": "data", "parameters": {"data": "b"}},
            {"task_type": "email", "parameters": {"to": "x@example.com", "cc": 3}}]})
        # Then the batch is refused naming it by path, and nothing was recorded
        assert bad.status_code == 400
        assert all(p.startswith("tasks[2].parameters") for p in bad.json()["problems"])
        assert deployment.runtime.store.client.zcard(
            f"{deployment.runtime.settings.key_prefix}:tasks") == 0
        # And a good batch queues every task
        good = api.post("/api/tasks/batch", json={"tasks": [
            {"task_type": "data", "parameters": {"data": str(i)}} for i in range(5)]})
        assert good.status_code == 202, good.text
        assert good.json()["count"] == 5
        ids = [t["task_id"] for t in good.json()["tasks"]]
        assert [api.get(f"/api/tasks/{i}").json()["state"] for i in ids] == ["QUEUED"] * 5
        queues = api.get("/api/queues", params={"type": "data", "priority": "normal"}).json()
        assert queues["queues"][0]["depth"] == 5


def test_token_guards_every_route_but_healthz_and_cors_answers_allowed_origins(deployment):
    configure_api(deployment, token="t0ken", cors_origins=["https://app.example.com"])
    with running_api(deployment, token="t0ken") as api:
        # Without the token: 401 everywhere but /healthz
        for path in ("/api/tasks/x", "/metrics", "/api/openapi.json"):
            reply = api.get(path, auth=False)
            assert reply.status_code == 401, path
            assert reply.json()["error"] == "unauthorized"
        assert api.get("/api/tasks/x", auth=False, headers={
            "Authorization": "Bearer wrong"}).status_code == 401
        assert api.get("/healthz", auth=False).status_code == 200
        # With it: served
        assert api.get("/api/tasks/x").status_code == 404
        # CORS: the allowed origin is echoed, a preflight needs no token, others get nothing
        allowed = api.get("/api/tasks/x", headers={"Origin": "https://app.example.com"})
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        preflight = api.request("OPTIONS", "/api/tasks", auth=False, headers={
            "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert preflight.status_code == 200
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
        other = api.get("/api/tasks/x", headers={"Origin": "https://evil.example.com"})
        assert "Access-Control-Allow-Origin" not in other.headers


def test_without_a_token_cors_is_off_and_every_route_is_open(deployment):
    with running_api(deployment) as api:
        reply = api.get("/api/openapi.json", headers={"Origin": "https://app.example.com"})
    assert reply.status_code == 200
    assert "Access-Control-Allow-Origin" not in reply.headers


def test_listening_beyond_loopback_without_a_token_is_refused_at_start(deployment):
    result = deployment.cli("api", "--host", "0.0.0.0", "--port", "1")
    assert result.returncode == 2
    assert "without authentication" in result.stderr
    assert "TASKQ_API_TOKEN" in result.stderr


@pytest.mark.brokers
def test_metrics_count_queues_tasks_and_workers_and_forget_a_dead_worker(deployment):
    # Given a finished task, a failed one, one waiting on a queue no worker serves
    worker = deployment.start_worker("--queues", "high")
    with running_api(deployment) as api:
        done = api.post("/api/tasks", json={"task_type": "data", "priority": "high",
                                            "parameters": {"data": "a b"}}).json()
        api.wait_final(done["task_id"])
        api.post("/api/tasks", json={"task_type": "data", "priority": "low",
                                     "parameters": {"data": "c"}})
        api.wait_final(api.post("/api/tasks", json={"task_type": "crash",
                                                    "priority": "high"}).json()["task_id"])
        text = api.get("/metrics").text
        prefix = deployment.runtime.settings.key_prefix
        # Then depth, tasks by state, timings and workers are all there
        assert (f'taskq_queue_depth{{priority="low",queue="{prefix}.data_processing.low",'
                'type="data_processing"} 1.0') in text
        assert 'taskq_tasks{state="SUCCESS",type="data_processing"} 1.0' in text
        assert 'taskq_tasks{state="QUEUED",type="data_processing"} 1.0' in text
        assert 'taskq_task_run_seconds_count{type="data_processing"} 1.0' in text
        assert 'taskq_task_queue_wait_seconds_count{type="data_processing"} 1.0' in text
        assert 'taskq_workers_online{profile="worker"} 1.0' in text
        assert 'taskq_dead_letters{type="crash"} 1.0' in text
        # When the worker is killed outright (no goodbye), it stops counting
        deployment.kill_worker(worker)
        deadline = time.monotonic() + 15
        while 'taskq_workers_online{profile="worker"} 0.0' not in api.get("/metrics").text:
            assert time.monotonic() < deadline, "a dead worker is still counted"
            time.sleep(0.2)  # polling for the heartbeat to go stale
