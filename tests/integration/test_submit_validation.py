"""Parameters that no worker could take (too deep, integers beyond 64 bits, NaN, text that is
not Unicode, line breaks in email headers) are refused at submit on every path: the CLI's
--params, --param and --from, the API's body and batch, and dead-letter retries. Exit 2 or
HTTP 400, and nothing is queued."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from api_server import running_api

from taskq import records

pytestmark = pytest.mark.integration

# (task type, parameters as JSON text, the problem named)
BAD = [
    ("data", '{"data": ' + "[" * 40 + "1" + "]" * 40 + "}",
     "parameters.data[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
     "[0][0][0][0][0][0]: nested deeper than 32 levels of lists and objects"),
    ("data", '{"data": [1, ' + "9" * 400 + "]}",
     "parameters.data[1]: integer out of range (a signed 64-bit integer: "
     "-9223372036854775808 to 9223372036854775807)"),
    ("data", '{"data": [1, NaN]}', "parameters.data[1]: must be a finite number, got nan"),
    ("data", '{"data": [{"x": -Infinity}]}',
     "parameters.data[0].x: must be a finite number, got -inf"),
    ("data", '{"data": "\\ud800 x"}', "parameters.data: not valid Unicode text (a lone "
     "surrogate: a \\ud800-style escape, or bytes that are not UTF-8)"),
    ("email", '{"to": "a@example.com", "subject": "hi\\u2028Bcc: x@example.com"}',
     "parameters.subject: must not contain line breaks or other control characters"),
    ("email", '{"to": "a@example.com\\u0085Bcc: x@example.com"}',
     "parameters.to: must not contain line breaks or other control characters"),
    ("email", '{"to": "a@example.com", "cc": ["c@example.com\\u000b"]}',
     "parameters.cc[0]: must not contain line breaks or other control characters"),
]
IDS = ["33 levels", "400 digits", "NaN", "-Infinity", "lone surrogate", "U+2028 subject",
       "NEL in to", "VT in cc"]


def test_the_cli_refuses_each_with_exit_2_and_queues_nothing(deployment):
    for (type_name, params, problem), name in zip(BAD, IDS, strict=True):
        result = deployment.cli("submit", "--type", type_name, "--params", params)
        assert result.returncode == 2, (name, result.stderr)
        assert result.stderr == f"error: invalid parameters: {problem}\n", name
    assert deployment.nothing_queued()


def test_invalid_utf8_in_an_argument_is_refused_with_exit_2(deployment):
    result = subprocess.run([sys.executable, "-m", "taskq", "submit", "--type", "data",
                             "--param", b"data=\xff\xfe x"], capture_output=True,
                            env=deployment.env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.decode() == (
        "error: invalid parameters: parameters.data: not valid Unicode text (a lone surrogate: "
        "a \\ud800-style escape, or bytes that are not UTF-8)\n")
    assert deployment.nothing_queued()


def test_a_file_of_tasks_with_such_lines_names_each_and_queues_none(deployment):
    lines = [json.dumps({"task_type": "data", "parameters": {"data": "fine"}})]
    lines += [f'{{"task_type": "{t}", "parameters": {p}}}' for t, p, _ in BAD]
    lines.append('{"task_type": "data", "parameters": ' + "[" * 10_000 + "]" * 10_000 + "}")
    path = deployment.home / "tasks.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = deployment.cli("submit", "--from", str(path))
    assert result.returncode == 2, result.stderr
    for number, (_, _, problem) in enumerate(BAD, start=2):
        assert f"line {number}: {problem}" in result.stderr
    assert f"line {len(lines)}: nested too deeply to read" in result.stderr
    assert deployment.nothing_queued()


def test_the_api_refuses_each_body_and_any_batch_holding_one_with_400(deployment):
    with running_api(deployment) as api:
        for (type_name, params, problem), name in zip(BAD, IDS, strict=True):
            body = f'{{"task_type": "{type_name}", "parameters": {params}}}'
            reply = api.post("/api/tasks", data=body.encode(),
                             headers={"Content-Type": "application/json"})
            assert reply.status_code == 400, (name, reply.text)
            assert reply.json()["error"] == "invalid_parameters"
            assert reply.json()["problems"] == [f"body.{problem}"], name
        batch = '{"tasks": [{"task_type": "data", "parameters": {"data": "fine"}}, ' + \
            ", ".join(f'{{"task_type": "{t}", "parameters": {p}}}' for t, p, _ in BAD) + "]}"
        reply = api.post("/api/tasks/batch", data=batch.encode(),
                         headers={"Content-Type": "application/json"})
        assert reply.status_code == 400, reply.text
        assert len(reply.json()["problems"]) == len(BAD)
        deep = b'{"task_type": "data", "parameters": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
        reply = api.post("/api/tasks", data=deep, headers={"Content-Type": "application/json"})
        assert (reply.status_code, reply.json()["error"]) == (400, "bad_request")
        assert reply.json()["message"].startswith("body: nested too deeply to read")
    assert deployment.nothing_queued()


def test_a_dead_letter_whose_stored_parameters_cannot_travel_is_not_retried(deployment):
    # Given a dead letter whose record holds parameters no worker could take (written
    # straight into Redis, as an older taskq or another program might have)
    store = deployment.runtime.store
    task_id, now = records.new_id(), time.time()
    store.client.hset(store.key(task_id), mapping={
        "id": task_id, "type": "data_processing", "priority": "normal",
        "queue": f"{store.prefix}.data_processing.normal", "state": "FAILURE",
        "params": '{"data": "\\ud800 x"}', "submitted_at": now, "finished_at": now,
        "error": "boom"})
    store.client.zadd(store.dlq_key("data_processing"), {task_id: now})
    # When it is retried, alone and with every dead letter
    alone = deployment.cli("retry", task_id)
    every = deployment.cli_json("dlq", "retry", "--all")
    # Then neither queues it, and it stays a dead letter
    assert alone.returncode == 2, alone.stderr
    assert "parameters.data: not valid Unicode text" in alone.stderr
    assert (every["retried"], every["skipped"]) == (0, 1)
    assert [r["id"] for r in deployment.cli_json("dlq", "list")] == [task_id]
    assert all(q.depth == 0 for q in _queues(deployment))


def _queues(deployment):
    from taskq.broker.queues import queue_stats

    return queue_stats(deployment.runtime)


def test_a_submit_that_answers_500_has_queued_nothing(deployment, monkeypatch):
    # Given the API in this process, with building a reply broken
    from taskq.api import create_app, routes

    def broken(record):
        raise RuntimeError("cannot build the reply")

    monkeypatch.setattr(routes, "task_json", broken)
    client = create_app(deployment.runtime).test_client()
    # When a valid task and a valid batch are posted
    one = client.post("/api/tasks", json={"task_type": "data", "parameters": {"data": "x"}})
    batch = client.post("/api/tasks/batch", json={"tasks": [
        {"task_type": "data", "parameters": {"data": "x"}}]})
    # Then each answers 500, and neither queued its task
    assert (one.status_code, batch.status_code) == (500, 500)
    assert deployment.nothing_queued()
