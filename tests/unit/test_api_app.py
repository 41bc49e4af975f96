"""The sidecar app without a server: errors as JSON, auth, CORS, batch paths, OpenAPI."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from taskq import bulk, config
from taskq.api import create_app, intake
from taskq.api.server import check_exposure
from taskq.config import ApiSettings
from taskq.errors import InvalidParameters, UsageError
from taskq.runtime import Runtime
from taskq.urls import is_loopback

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "celery.yaml"


@pytest.fixture
def settings(tmp_path):
    return config.load(env={"TASKQ_HOME": str(tmp_path)}, path=REPO_CONFIG)


def client(settings, **api):
    return create_app(Runtime(replace(settings, api=ApiSettings(**api)))).test_client()


def test_the_app_can_be_built_twice_without_touching_a_server(settings):
    runtime = Runtime(settings)
    assert create_app(runtime) is not create_app(runtime)
    assert "broker_url" not in runtime.__dict__  # nothing connected or started


def test_validation_errors_name_each_field_by_path(settings):
    reply = client(settings).post("/api/tasks", json={"task_type": "email", "priority": "asap",
                                                      "parameters": {"to": "a@example.com"}})
    assert reply.status_code == 400
    assert reply.json["error"] == "invalid_parameters"
    assert reply.json["fields"][0]["path"] == "body.priority"


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), [
    ("post", "/api/tasks", {"data": "x", "content_type": "text/plain"}, 415,
     "unsupported_media_type"),
    ("post", "/api/tasks", {"data": "[1,", "content_type": "application/json"}, 400,
     "bad_request"),
    ("post", "/api/tasks", {"data": "[" * 2000, "content_type": "application/json"}, 400,
     "bad_request"),
    ("delete", "/healthz", {}, 405, "method_not_allowed"),
    ("get", "/nowhere", {}, 404, "not_found"),
    ("post", "/api/tasks", {"data": "{" + " " * 3000 + "}",
                            "content_type": "application/json"}, 413, "body_too_large"),
])
def test_http_errors_are_json_with_a_code(settings, method, path, kwargs, status, code):
    reply = getattr(client(settings, max_body_bytes=2048), method)(path, **kwargs)
    assert (reply.status_code, reply.json["error"]) == (status, code)
    assert reply.json["message"]


def test_an_unexpected_exception_is_a_500_without_its_traceback(settings, monkeypatch, caplog):
    # Given a bug below a view
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("taskq.api.routes.submit_all", broken)
    reply = client(settings).post("/api/tasks", json={"task_type": "data",
                                                      "parameters": {"data": "x"}})
    # Then the client gets a plain 500 and the log keeps the traceback
    assert reply.status_code == 500
    assert reply.json["error"] == "internal"
    assert "secret" not in reply.get_data(as_text=True)
    assert "secret internals" in caplog.text


def test_a_token_is_required_everywhere_but_healthz_and_preflight(settings):
    app = client(settings, token="t")
    assert app.get("/api/openapi.json").status_code == 401
    assert app.get("/api/openapi.json").headers["WWW-Authenticate"].startswith("Bearer")
    assert app.get("/api/openapi.json", headers={"Authorization": "Bearer t"}).status_code == 200
    assert app.options("/api/tasks").status_code == 200


def test_cors_headers_only_for_configured_origins(settings):
    app = client(settings, cors_origins=("*",))
    reply = app.get("/api/openapi.json", headers={"Origin": "https://x.example"})
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    closed = client(settings).get("/api/openapi.json", headers={"Origin": "https://x.example"})
    assert "Access-Control-Allow-Origin" not in closed.headers


def test_batch_problems_carry_the_index_of_each_bad_task(settings):
    with pytest.raises(InvalidParameters) as caught:
        intake.batch(settings, {"tasks": [{"task_type": "data", "parameters": {"data": "x"}},
                                          {"task_type": "nope"},
                                          {"task_type": "email", "delay": -1,
                                           "parameters": {"to": "a@example.com"}}]})
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "tasks[1].task_type", "tasks[2].delay"]


def test_batch_needs_a_non_empty_list_of_at_most_the_limit(settings):
    valid = {"task_type": "data", "parameters": {"data": "x"}}
    # A full batch of valid tasks is taken
    assert len(intake.batch(settings, {"tasks": [valid] * intake.MAX_BATCH})) == 1000
    # but one more valid task is refused for the number alone, as are an empty or missing list
    for body, problem in (
            ({"tasks": [valid] * (intake.MAX_BATCH + 1)},
             "body.tasks: at most 1000 tasks in one batch"),
            ({}, "body.tasks: required, a non-empty list of task bodies"),
            ({"tasks": []}, "body.tasks: required, a non-empty list of task bodies"),
            ([1], 'body: must be a JSON object {"tasks": [...]}')):
        with pytest.raises(InvalidParameters) as refused:
            intake.batch(settings, body)
        assert refused.value.problems == [problem]


def test_batch_problems_stop_at_the_cap_and_count_the_rest(settings):
    bad = [{"task_type": "nope"}] * (bulk.MAX_PROBLEMS + 10)
    with pytest.raises(InvalidParameters) as caught:
        intake.batch(settings, {"tasks": bad})
    assert len(caught.value.problems) == bulk.MAX_PROBLEMS + 1
    assert caught.value.problems[-1] == "and 10 more"


@pytest.mark.parametrize("limit", ["²", "-1", "1.5", "ten"])
def test_a_list_limit_that_is_not_a_plain_whole_number_is_a_400(settings, limit):
    reply = client(settings).get("/api/tasks", query_string={"limit": limit})
    assert (reply.status_code, reply.json["error"]) == (400, "bad_request")
    assert reply.json["message"] == f"limit: must be a whole number ≥ 0, got {limit!r}"


def test_cancel_with_an_unknown_terminate_value_is_a_400_naming_it(settings):
    reply = client(settings).delete("/api/tasks/x", query_string={"terminate": "maybe"})
    assert (reply.status_code, reply.json["error"]) == (400, "bad_request")
    assert reply.json["message"] == "terminate: must be true or false, got 'maybe'"


def test_openapi_describes_every_route_the_app_serves(settings):
    app = create_app(Runtime(settings))
    spec = app.test_client().get("/api/openapi.json").json
    served = {(re.sub(r"<(\w+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    described = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert served == described


def test_only_loopback_may_be_served_without_a_token():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    check_exposure("0.0.0.0", "token")
    with pytest.raises(UsageError, match="TASKQ_API_TOKEN"):
        check_exposure("0.0.0.0", None)
