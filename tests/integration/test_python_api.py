"""The Python API (taskq.Client) and Celery's own publishing calls, from a separate process as
an application would use them, with real workers on every broker."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def run_app(deployment, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `code` in a new Python process with the deployment's environment, as an
    application would run (its last line of stdout is its answer)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=deployment.env, cwd=deployment.home, timeout=timeout)


def answer(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.brokers
def test_a_client_submits_and_waits_for_the_result(deployment):
    # Given a worker
    deployment.start_worker()
    # When an application submits a task through the client and waits for it
    done = run_app(deployment, """
        import json
        from taskq import Client

        with Client() as client:
            task = client.submit("data", {"data": [1, 2, 3]}, priority="high")
            finished = client.wait(task.id, timeout=30)
            print(json.dumps({"submitted": task.to_json(), "finished": finished.to_json()}))
    """)
    # Then it got the queued record at once and the worker's result from wait
    seen = answer(done)
    assert seen["submitted"]["state"] == "QUEUED"
    assert seen["submitted"]["queue"].endswith(".data_processing.high")
    assert seen["finished"]["state"] == "SUCCESS"
    assert seen["finished"]["result"]["mean"] == 2
    # And the record is the one `taskq status` shows
    shown = deployment.cli_json("status", seen["finished"]["id"])
    assert shown == seen["finished"]


@pytest.mark.brokers
def test_one_client_shared_by_threads_submits_and_waits_for_each_task(deployment):
    # Given a worker, and one client shared by eight threads
    from concurrent.futures import ThreadPoolExecutor

    from taskq import Client

    deployment.start_worker("--concurrency", "2")
    with Client(deployment.runtime.settings) as client:
        def submit_and_wait(n: int) -> float:
            task = client.submit("data", {"data": [n, n + 2]})
            return client.wait(task.id, timeout=60).result["mean"]

        # When each thread submits tasks and waits for them
        with ThreadPoolExecutor(8) as pool:
            means = list(pool.map(submit_and_wait, range(40)))
    # Then every task ran once, with its own parameters
    assert means == [n + 1 for n in range(40)]
    assert len(deployment.cli_json("list", "--limit", "100")) == 40


@pytest.mark.brokers
def test_a_client_cancels_a_delayed_task_and_retries_a_failed_one(deployment):
    # Given a worker, and a task that fails for good
    deployment.start_worker()
    failed = deployment.submit("crash", code=3)
    assert deployment.wait(failed.id).state == "FAILURE"
    # When an application cancels a delayed task and retries the failed one
    done = run_app(deployment, f"""
        import json
        from taskq import Client
        from taskq.errors import TaskFailed

        with Client() as client:
            later = client.submit("data", {{"data": [1]}}, delay=60)
            cancelled = client.cancel(later.id)
            again = client.retry({failed.id!r})
            try:
                client.wait(again.id, timeout=30)
            except TaskFailed as exc:
                ended = exc.state
            print(json.dumps({{"later": later.state, "cancelled": cancelled.state,
                              "again": again.retry_of, "ended": ended,
                              "listed": [t.id for t in client.list(state="REVOKED")]}}))
    """)
    # Then the delayed task is REVOKED, and the retry is a new task linked to the failed one
    seen = answer(done)
    assert (seen["later"], seen["cancelled"]) == ("SCHEDULED", "REVOKED")
    assert seen["again"] == failed.id
    assert seen["ended"] == "FAILURE"
    assert len(seen["listed"]) == 1


@pytest.mark.brokers
def test_send_task_and_apply_async_keep_a_record_that_status_reads(deployment):
    # Given a worker
    deployment.start_worker()
    # When an application publishes through Celery's own API on taskq's Celery app
    done = run_app(deployment, """
        import json
        from taskq.celery_app import app

        sent = app.send_task("taskq.data_processing", kwargs={"data": [1, 2]}, priority="low")
        task = app.tasks["taskq.data_processing"]
        applied = task.apply_async(kwargs={"data": [3, 4]}, countdown=0.1)
        delayed = task.delay(data=[5, 6])
        print(json.dumps([sent.id, applied.id, delayed.id]))
    """)
    # Then each has a record `taskq status` reads, on the queue its priority names
    ids = answer(done)
    for task_id, queue, mean in zip(ids, ("low", "normal", "normal"), (1.5, 3.5, 5.5),
                                    strict=True):
        waited = deployment.cli("status", task_id, "--wait", "--timeout", "30", "--json")
        assert waited.returncode == 0, waited.stderr
        record = json.loads(waited.stdout)
        assert record["queue"].endswith(f".data_processing.{queue}")
        assert record["result"]["mean"] == mean


@pytest.mark.brokers
def test_celery_call_keeps_a_record_and_refuses_bad_parameters(deployment):
    # Given Celery's own command line on taskq's app
    def celery_call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "celery", "-A", "taskq.celery_app",
                               "call", "taskq.data_processing", *args], capture_output=True,
                              text=True, env=deployment.env, cwd=deployment.home, timeout=60)

    # When a task is sent with it
    sent = celery_call("--kwargs", '{"data": [1, 2]}')
    # Then its id has a record `taskq status` reads
    assert sent.returncode == 0, sent.stderr
    task_id = sent.stdout.strip().splitlines()[-1]
    assert deployment.cli_json("status", task_id)["state"] == "QUEUED"
    # When one with parameters its type refuses is sent
    refused = celery_call("--kwargs", '{"nope": 1}')
    # Then it fails, naming the problem, and nothing more is queued
    assert refused.returncode != 0
    assert "nope" in refused.stderr
    assert len(deployment.cli_json("list")) == 1


def test_send_task_refuses_an_id_already_used(deployment):
    # Given a task submitted through Celery's send_task with the caller's own id
    app = deployment.runtime.celery
    first = app.send_task("taskq.data_processing", kwargs={"data": [1]}, task_id="order-17")
    assert deployment.runtime.store.get(first.id).params["data"] == [1]
    # When another is sent with the same id
    from taskq.errors import Conflict

    with pytest.raises(Conflict, match="order-17"):
        app.send_task("taskq.data_processing", kwargs={"data": [2]}, task_id="order-17")
    # Then the first record is untouched, as `taskq status` shows, and only one task is listed
    assert deployment.cli_json("status", "order-17")["params"]["data"] == [1]
    assert len(deployment.cli_json("list")) == 1


def readme_python_examples() -> list[str]:
    """The ```python blocks of the README's "From Python" section, in order."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.partition("\n## From Python\n")[2].partition("\n## ")[0]
    return [block.partition("```")[0].partition("\n")[2]
            for block in section.split("```python")[1:]]


def test_the_readme_script_runs_as_shown(deployment):
    # Given a worker, and the README's script
    deployment.start_worker()
    script = readme_python_examples()[0]
    # When it is run as it is shown
    done = run_app(deployment, script)
    # Then it prints what its comments say
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.endswith(" QUEUED taskq.data_processing.high".replace(
        "taskq.", f"{deployment.env['TASKQ_KEY_PREFIX']}."))
    assert second == "2.0"


def test_the_readme_flask_view_queues_and_reports_a_task(deployment):
    # Given a worker, and the README's Flask application
    deployment.start_worker()
    views = readme_python_examples()[1]
    # When a request queues a report, another reads it once done, and one is bad
    done = run_app(deployment, views + textwrap.dedent("""
        import json
        web = app.test_client()
        queued = web.post("/reports", json={"data": [1, 2]})
        task_id = queued.get_json()["task_id"]
        client.wait(task_id, timeout=30)
        shown = web.get(f"/reports/{task_id}")
        bad = web.post("/reports", json={"nope": 1})
        unknown = web.get("/reports/nope")
        print(json.dumps([queued.status_code, queued.get_json()["state"], shown.status_code,
                          shown.get_json()["result"]["mean"], bad.status_code,
                          bad.get_json()["error"], unknown.status_code]))
    """))
    # Then each answers as the comments say
    assert answer(done) == [202, "QUEUED", 200, 1.5, 400, "invalid_parameters", 404]
