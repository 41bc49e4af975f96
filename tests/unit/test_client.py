"""The Python API without a server: the Task dataclass, the client's validation and settings,
and how Celery's send_task options become a taskq submit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

import taskq
from taskq import config
from taskq.celery_calls import to_request
from taskq.client import Client
from taskq.errors import (
    BrokerUnavailable,
    ConfigError,
    ExitCode,
    InvalidParameters,
    UsageError,
    WaitTimeout,
)
from taskq.records import TaskRecord
from taskq.request import SubmitRequest
from taskq.task import Task, record_json

NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once


def settings(**overrides: str) -> config.Settings:
    return config.load(env={}, overrides=overrides)


def offline_client() -> Client:
    """A client whose broker and backend refuse every connection."""
    return Client(settings(broker_url=NOWHERE, result_backend=NOWHERE))


def finished_record() -> TaskRecord:
    return TaskRecord(id="t1", type="data_processing", priority="high",
                      queue="taskq.data_processing.high", state="SUCCESS",
                      params={"data": [1, 2]}, attempts=2, result={"mean": 1.5},
                      attempt_errors=[{"attempt": 1, "error": "boom", "at": 1700000000.25}],
                      submitted_at=1700000000.1234567, started_at=1700000000.2,
                      finished_at=1700000001.5)


def test_a_task_prints_as_json_with_iso_times_to_the_millisecond():
    data = Task.from_record(finished_record()).to_json()
    assert (data["submitted_at"], data["started_at"], data["finished_at"]) == (
        "2023-11-14T22:13:20.123Z", "2023-11-14T22:13:20.200Z", "2023-11-14T22:13:21.500Z")
    assert data["attempt_errors"] == [{"attempt": 1, "error": "boom",
                                       "at": "2023-11-14T22:13:20.250Z"}]
    assert (data["eta"], data["result"], data["params"]) == (None, {"mean": 1.5},
                                                             {"data": [1, 2]})


def test_status_json_is_the_tasks_json():
    record = finished_record()
    assert record_json(record) == Task.from_record(record).to_json()


def test_a_task_holds_aware_utc_datetimes_and_cannot_be_changed():
    task = Task.from_record(finished_record())
    assert task.submitted_at == dt.datetime(2023, 11, 14, 22, 13, 20, 123457, dt.UTC)
    assert task.attempt_errors[0]["at"].tzinfo is dt.UTC
    assert task.final
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.state = "FAILURE"  # type: ignore[misc]


def test_a_task_has_the_fields_of_a_record():
    assert [f.name for f in dataclasses.fields(Task)] == list(TaskRecord.__dataclass_fields__)


def test_importing_taskq_loads_neither_the_client_nor_celery_nor_redis():
    # When a program imports taskq
    code = ("import sys, taskq; print(sorted(m for m in sys.modules if m.startswith("
            "('taskq.', 'celery', 'kombu', 'redis'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    # Then nothing but the package itself was loaded, and its names load when asked for
    assert done.stdout.strip() == "[]"
    assert taskq.Client is Client and taskq.Task is Task and taskq.SubmitRequest is SubmitRequest
    with pytest.raises(AttributeError, match="Clinet"):
        taskq.Clinet  # noqa: B018


def test_the_package_is_marked_typed():
    assert (Path(taskq.__file__).parent / "py.typed").is_file()


def test_overrides_are_the_taskq_variables_by_their_names():
    url = "redis://elsewhere:6380/2"
    found = settings(broker_url=url, result_backend=url, key_prefix="shop")
    assert (found.broker_url, found.result_backend, found.key_prefix) == (url, url, "shop")


def test_an_unknown_override_is_a_config_error_with_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'broker_url'"):
        Client(broker="redis://h")


def test_settings_already_loaded_take_no_overrides():
    with pytest.raises(UsageError, match="overrides"):
        Client(settings(), broker_url=NOWHERE)


def test_malformed_dependencies_are_refused_before_any_connection():
    client = offline_client()
    with pytest.raises(InvalidParameters, match=r"after\[1\]: must be a task id"):
        client.submit("data", {"data": [1]}, after=["abc123", 5])
    with pytest.raises(InvalidParameters, match="delay: cannot be combined with after"):
        client.submit("data", {"data": [1]}, after="abc123", delay=3)
    with pytest.raises(InvalidParameters, match="after_any: needs after"):
        client.submit("data", {"data": [1]}, after_any=True)


def test_a_bad_key_is_refused_before_any_connection():
    with pytest.raises(InvalidParameters, match="key: must not contain control characters"):
        offline_client().submit("data", {"data": [1]}, key="a\nb")


def test_bad_parameters_name_every_problem_before_any_connection():
    # Given a client that cannot reach any server
    client = offline_client()
    # When a task with two problems is submitted
    with pytest.raises(InvalidParameters) as caught:
        client.submit("data", {"nope": 1})
    # Then both are named (and it was refused before any connection was tried)
    assert any("nope" in p for p in caught.value.problems)
    assert any("data" in p and "required" in p for p in caught.value.problems)


def test_parameters_that_are_not_a_mapping_are_invalid_parameters():
    with pytest.raises(InvalidParameters, match="must be a mapping.*got list"):
        offline_client().submit("data", [1, 2])  # type: ignore[arg-type]


def test_a_submit_to_an_unreachable_server_is_broker_unavailable():
    with pytest.raises(BrokerUnavailable, match="unreachable"):
        offline_client().submit("data", {"data": [1]})


def test_submit_many_names_each_bad_request_before_queuing_any():
    requests = [{"task_type": "data", "parameters": {"data": [1]}}, {"task_type": "nope"},
                SubmitRequest(type="data", priority="urgent", params={"data": [1]})]
    with pytest.raises(InvalidParameters) as caught:
        offline_client().submit_many(requests)
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == ["requests[1]", "requests[2]"]


def test_a_closed_client_refuses_calls():
    with offline_client() as client:
        pass
    with pytest.raises(UsageError, match="closed"):
        client.get("t1")


def test_a_wait_timeout_is_a_timeout_error_that_exits_6():
    exc = WaitTimeout("t1", 1.5, "QUEUED")
    assert isinstance(exc, TimeoutError) and exc.exit_code == ExitCode.TIMEOUT
    assert str(exc) == "timed out after 1.5 s waiting for task t1 (still QUEUED)"


# Celery's send_task options, as taskq reads them

def test_send_task_priority_is_a_name_or_a_queue_of_the_type():
    found = settings()
    by_name, _ = to_request(found, "data_processing", None, {"data": [1]}, {"priority": "high"})
    queue = "taskq.data_processing.low"
    by_queue, task_id = to_request(found, "data_processing", [], {}, {"queue": queue,
                                                                      "task_id": "x"})
    assert (by_name.priority, by_queue.priority, task_id) == ("high", "low", "x")


def test_send_task_countdown_and_eta_become_the_delay():
    found = settings()
    counted, _ = to_request(found, "data_processing", None, {}, {"countdown": 30})
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    at, _ = to_request(found, "data_processing", None, {}, {"eta": soon})
    assert counted.delay == 30
    assert 55 < at.delay <= 60


def test_send_task_options_taskq_cannot_honour_are_all_named():
    # When a send_task asks for what taskq does not do
    with pytest.raises(UsageError) as caught:
        to_request(settings(), "data_processing", [1], {}, {
            "priority": 9, "queue": "celery", "expires": 60, "link": "callback"})
    # Then each is named, none ignored
    message = caught.value.message
    for named in ("args", "priority=9", "queue='celery'", "expires=60", "link='callback'"):
        assert named in message


def test_send_task_options_left_unset_are_not_refused():
    request, task_id = to_request(settings(), "data_processing", None, {"data": [1]}, {
        "expires": None, "time_limit": object(), "add_to_parent": True, "ignore_result": True})
    assert (request.priority, request.delay, task_id) == (None, 0.0, None)


def test_a_bad_schedule_names_every_problem_before_any_connection():
    # When an application adds a schedule with a bad name, an unknown type and a NaN interval
    with pytest.raises(InvalidParameters) as raised:
        offline_client().schedules.add("no\nname", "nosuchtype", interval=float("nan"))
    # Then one error names all three (the server, refusing every connection, was not asked)
    text = str(raised.value)
    assert raised.value.code == "invalid_schedule"
    for named in ("schedule's name is", "schedule.type: unknown", "schedule.interval: must"):
        assert named in text, named


def test_schedule_calls_to_an_unreachable_server_are_broker_unavailable():
    client = offline_client()
    for call in (client.schedules.list, lambda: client.schedules.pause("nightly")):
        with pytest.raises(BrokerUnavailable):
            call()
