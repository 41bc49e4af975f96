"""The core flows, driven through the CLI with real workers; those marked `brokers` run on
every broker (embedded, RabbitMQ + Redis, Redis)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import taskq
from taskq.records import STORED_FIELDS
from taskq.request import SubmitRequest
from taskq.submit import prepare

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.brokers
def test_every_built_in_type_succeeds_with_its_result(deployment, smtp_server):
    # Given a worker serving every type, and a file to process
    deployment.start_worker("--concurrency", "2")
    files = deployment.home / "files"
    files.mkdir()
    (files / "notes.txt").write_text("one\ntwo\nthree\n")
    cases = [
        (["--type", "data", "--params", '{"data": [1, 2, 3, 4]}'], "mean", 2.5),
        (["--type", "data", "--param", "data=test data"], "words", 2),
        (["--type", "email", "--param", "to=a@example.com"], "delivered", "smtp"),
        (["--type", "file", "--param", "filename=notes.txt"], "lines", 3),
    ]
    for args, key, expected in cases:
        # When each is submitted and waited for
        result = deployment.cli("submit", *args, "--wait", "--timeout", "30", "--json")
        # Then it exits 0 and the record holds the work's result
        assert result.returncode == 0, result.stderr
        record = json.loads(result.stdout)
        assert record["state"] == "SUCCESS"
        assert record["result"][key] == expected
    assert [m.message["To"] for m in smtp_server.messages] == ["a@example.com"]


def test_submit_json_names_id_type_priority_queue_and_state(deployment):
    result = deployment.cli("submit", "--type", "email", "--priority", "high",
                            "--param", "to=a@example.com", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["type"] == "email_sending"
    assert record["priority"] == "high"
    assert record["queue"].endswith(".email_sending.high")
    assert record["state"] == "QUEUED"
    assert len(record["id"]) == 36


def _documented_status_fields() -> list[str]:
    """The fields the README's `taskq status` row lists, in its order."""
    row = next(line for line in (REPO / "README.md").read_text().splitlines()
               if line.startswith("| `taskq status ID"))
    listed = row.partition("The task's record:")[2].partition(".")[0]
    return re.findall(r"`(\w+)`", listed)


def test_the_readme_documents_every_field_of_a_record():
    assert _documented_status_fields() == list(STORED_FIELDS)


def test_status_json_has_every_documented_field(deployment):
    deployment.start_worker()
    record = deployment.submit("data", data="a b c")
    deployment.wait(record.id)
    result = deployment.cli("status", record.id, "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert sorted(status) == sorted(_documented_status_fields())
    assert status["state"] == "SUCCESS"
    assert status["attempts"] == 1
    assert status["worker"].startswith("worker.")


def test_status_of_unknown_id_exits_4_and_says_unknown(deployment):
    deployment.runtime.broker_url  # a running broker (reads do not start one)  # noqa: B018
    result = deployment.cli("status", "00000000-0000-0000-0000-000000000000")
    assert result.returncode == 4
    assert "unknown" in result.stderr
    assert "PENDING" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_queued_task_is_reported_queued_not_unknown(deployment):
    record = deployment.submit("data", data=[1, 2])
    result = deployment.cli("status", record.id, "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["state"] == "QUEUED"


def test_a_task_is_named_by_any_unique_prefix_of_its_id_of_at_least_6_characters(deployment):
    # Given three queued tasks, two of whose ids begin alike
    runtime = deployment.runtime
    tasks = []
    for task_id in ("abcdef01-0000-4000-8000-000000000001",
                    "abcdef02-0000-4000-8000-000000000002",
                    "01234567-89ab-4def-8000-000000000003"):
        record = prepare(runtime.settings, SubmitRequest(type="data", params={"data": [1]}))
        record.id = task_id
        runtime.store.create(record)
        tasks.append(record)
    # When status, cancel and retry are given a unique prefix (the 8 characters `list` shows,
    # or 6, in any case)
    shown = deployment.cli_json("status", "abcdef01")
    upper = deployment.cli_json("status", "ABCDEF02")
    cancelled = deployment.cli_json("cancel", "012345")
    waited = deployment.cli("status", "0123456", "--wait", "--json")
    # Then each names its task
    assert shown["id"] == tasks[0].id
    assert upper["id"] == tasks[1].id
    assert (cancelled["id"], cancelled["state"]) == (tasks[2].id, "REVOKED")
    assert waited.returncode == 5 and json.loads(waited.stdout)["id"] == tasks[2].id
    # And a prefix that begins two ids is refused with exit 2, naming both
    ambiguous = deployment.cli("status", "abcdef")
    assert ambiguous.returncode == 2
    assert f"names more than one task: {tasks[0].id}, {tasks[1].id}" in ambiguous.stderr
    # And a prefix shorter than 6 characters is taken as a whole id: unknown
    assert deployment.cli("status", "abcde").returncode == 4


def test_bad_parameters_are_refused_with_exit_2_and_nothing_queued(deployment):
    # Given an email with a newline in its subject (header injection)
    result = deployment.cli("submit", "--type", "email", "--params",
                            '{"to": "a@example.com", "subject": "hi\\nBcc: x@evil.test"}')
    # Then it is refused at submit, with a one-line error and no traceback
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid parameters")
    assert "subject" in result.stderr
    assert "Traceback" not in result.stderr
    # And nothing reached a queue or the records
    assert deployment.nothing_queued()


def test_unknown_type_and_priority_are_usage_errors(deployment):
    bad_type = deployment.cli("submit", "--type", "emial", "--param", "to=a@example.com")
    assert bad_type.returncode == 2
    assert "did you mean 'email'" in bad_type.stderr
    bad_priority = deployment.cli("submit", "--type", "email", "--priority", "urgent",
                                  "--param", "to=a@example.com")
    assert bad_priority.returncode == 2
    assert "urgent" in bad_priority.stderr


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_names_taskq_celery_kombu_and_the_broker_with_its_password_masked(
        deployment, flag):
    # Given a Redis broker URL with a password
    deployment.env["TASKQ_BROKER_URL"] = "redis://:s3cret@127.0.0.1:6379/3"
    deployment.env["TASKQ_RESULT_BACKEND"] = "redis://127.0.0.1:6379/4"
    # When the version is asked for
    shown = deployment.cli(flag)
    # Then one line names each version and the broker, without the password
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (f"taskq {taskq.__version__} (celery {version('celery')}, "
                            f"kombu {version('kombu')}, broker redis://:***@127.0.0.1:6379/3)\n")


def test_types_lists_every_type_of_the_config_with_its_parameters(deployment):
    # When the types are asked for, as JSON and as text
    found = {t["name"]: t for t in deployment.cli_json("types")}
    shown = deployment.cli("types")
    # Then every type of the deployment's config is there, with its parameters
    assert set(found) == set(deployment.runtime.settings.task_types)
    assert [p["name"] for p in found["spin"]["parameters"]] == ["ms"]
    assert shown.returncode == 0
    assert "\ndata_processing (data): 3 retries" in shown.stdout
    assert "\nspin: 0 retries" in shown.stdout and "\n  runs jobs:spin\n" in shown.stdout
    # And submit's help points to it
    assert "taskq types" in deployment.cli("submit", "--help").stdout


def _completions(deployment, line: str) -> list[str]:
    """What bash completion offers for `line` (ending where Tab is pressed)."""
    words = line.split(" ")
    env = {**deployment.env, "_TASKQ_COMPLETE": "complete_bash", "COMP_WORDS": line,
           "COMP_CWORD": str(len(words) - 1)}
    done = subprocess.run([sys.executable, "-m", "taskq"], env=env, capture_output=True,
                          text=True, timeout=60, cwd=deployment.home)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_commands_types_priorities_and_recent_task_ids(deployment):
    # Given a submitted task
    task = deployment.submit("data", data=[1])
    # Then Tab completes commands, type names and aliases, priorities and the task's id
    assert _completions(deployment, "taskq sta") == ["status"]
    assert _completions(deployment, "taskq submit --type em") == ["email_sending", "email"]
    assert _completions(deployment, "taskq list --priority h") == ["high"]
    assert task.id in _completions(deployment, "taskq status ")
    assert _completions(deployment, f"taskq cancel {task.id[:4]}") == [task.id]


def test_types_priorities_and_states_are_taken_in_any_case(deployment):
    # When a task is submitted with its type and priority typed in capitals
    submitted = deployment.cli_json("submit", "--type", "EMAIL", "--priority", "HIGH",
                                    "--param", "to=a@example.com")
    # Then it is the email_sending type at high priority
    assert (submitted["type"], submitted["priority"]) == ("email_sending", "high")
    # And the listing finds it by filters typed in any case
    listed = deployment.cli_json("list", "--type", "Email", "--priority", "High",
                                 "--state", "Queued")
    assert [row["id"] for row in listed] == [submitted["id"]]


@pytest.mark.brokers
def test_failed_task_keeps_error_type_and_traceback_and_wait_exits_5(deployment):
    deployment.start_worker()
    result = deployment.cli("submit", "--type", "crash", "--param", "code=7", "--wait",
                            "--timeout", "30", "--json")
    assert result.returncode == 5
    record = json.loads(result.stdout)
    assert record["state"] == "FAILURE"
    assert record["error"] == "bad input 7"
    assert record["exc_type"] == "ValueError"
    assert "raise ValueError" in record["traceback"]
    # a plain exception is permanent: exactly one attempt
    assert record["attempts"] == 1


def test_wait_timeout_exits_6(deployment):
    record = deployment.submit("data", data=[1])  # no worker is running
    result = deployment.cli("status", record.id, "--wait", "--timeout", "0.5")
    assert result.returncode == 6
    assert "timed out" in result.stderr


@pytest.mark.brokers
def test_delayed_task_is_scheduled_then_runs(deployment):
    deployment.start_worker()
    record = deployment.submit("data", delay=1.0, data=[1, 2, 3])
    assert deployment.cli_json("status", record.id)["state"] == "SCHEDULED"
    done = deployment.wait(record.id, timeout=30)
    assert done.state == "SUCCESS"
    assert done.started_at >= record.eta - 0.05


def test_worker_for_high_only_leaves_low_tasks_queued(deployment):
    # Given a worker serving only the high queues
    deployment.start_worker("--queues", "high")
    low = deployment.submit("data", priority="low", data=[1])
    high = deployment.submit("data", priority="high", data=[2])
    # When the high task has run
    assert deployment.wait(high.id).state == "SUCCESS"
    # Then the low one is still waiting for a worker that serves low
    assert deployment.runtime.store.get(low.id).state == "QUEUED"


def test_typed_worker_runs_only_its_type(deployment):
    deployment.start_worker("--type", "file")
    data = deployment.submit("data", data=[1])
    missing = deployment.submit("file", filename="absent.txt")
    assert deployment.wait(missing.id).state == "FAILURE"
    assert deployment.runtime.store.get(data.id).state == "QUEUED"


def test_worker_with_unknown_profile_or_queue_exits_2(deployment):
    profile = deployment.cli("worker", "--profile", "emial")
    assert profile.returncode == 2
    assert "unknown worker profile 'emial' (did you mean 'email'?)" in profile.stderr
    queue = deployment.cli("worker", "--queues", "high,urgent")
    assert queue.returncode == 2
    assert "unknown queue 'urgent'" in queue.stderr
