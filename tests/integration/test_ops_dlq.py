"""Dead letters and `taskq retry`: permanent failures and exhausted retries, on real workers."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time

import pytest

from taskq import config, dlq, records
from taskq.errors import BrokerUnavailable
from taskq.request import SubmitRequest
from taskq.runtime import Runtime

pytestmark = pytest.mark.integration


def test_failures_become_dead_letters_and_retry_links_old_and_new(deployment, tmp_path):
    # Given a permanent failure and a task that runs out of its 3 retries
    deployment.start_worker("--concurrency", "2")
    crashed = deployment.submit("crash", "high", code=7)
    exhausted = deployment.submit("flaky", marker_dir=str(tmp_path / "m"), failures=100)
    assert deployment.wait(crashed.id).state == "FAILURE"
    assert deployment.wait(exhausted.id).attempts == 4
    # When listing dead letters, Then both are there, most recent failure first
    letters = deployment.cli_json("dlq", "list")
    assert [r["id"] for r in letters] == [exhausted.id, crashed.id]
    # When one is retried
    result = deployment.cli("retry", crashed.id, "--json")
    assert result.returncode == 0, result.stderr
    new = json.loads(result.stdout)
    # Then a new task with the same type, priority and parameters links back to it
    assert (new["type"], new["priority"], new["params"]) == ("crash", "high", {"code": 7})
    assert new["id"] != crashed.id and new["retry_of"] == crashed.id
    assert deployment.cli_json("status", crashed.id)["retried_as"] == new["id"]
    # And the original leaves the dead letters, while the new one fails into them
    assert deployment.wait(new["id"]).state == "FAILURE"
    assert [r["id"] for r in deployment.cli_json("dlq", "list")] == [new["id"], exhausted.id]
    # And retrying it twice, or retrying a task that did not fail, is a conflict (exit 8)
    assert deployment.cli("retry", crashed.id).returncode == 8
    done = deployment.submit("spin", ms=1)
    deployment.wait(done.id)
    assert deployment.cli("retry", done.id).returncode == 8


def test_dlq_retry_all_by_type_and_purge_report_counts(deployment, tmp_path):
    # Given three dead letters of two types, and then no worker running
    deployment.start_worker("--concurrency", "2")
    crashes = [deployment.submit("crash", code=n) for n in (1, 2)]
    flaky = deployment.submit("flaky", marker_dir=str(tmp_path / "m"), failures=100)
    for task in (*crashes, flaky):
        assert deployment.wait(task.id).state == "FAILURE"
    deployment.stop_workers()
    # When the crash dead letters are retried in bulk
    report = deployment.cli_json("dlq", "retry", "--all", "--type", "crash")
    # Then the count is reported and only the flaky one is left
    assert report["retried"] == 2 and report["skipped"] == 0
    assert {t["id"] for t in report["tasks"]} == {t.id for t in crashes}
    assert [r["id"] for r in deployment.cli_json("dlq", "list")] == [flaky.id]
    queued = deployment.cli_json("list", "--state", "QUEUED", "--type", "crash")
    assert {r["retry_of"] for r in queued} == {t.id for t in crashes}
    # When the dead letters are purged, Then the count is reported and the record is gone
    assert deployment.cli_json("dlq", "purge", "--yes") == {"purged": 1}
    assert deployment.cli_json("dlq", "list") == []
    assert deployment.cli("status", flaky.id).returncode == 4
    # And `dlq retry` without --all is refused
    assert deployment.cli("dlq", "retry").returncode == 2


def _dead_letter(deployment, **params):
    """A task recorded as failed for good (no worker needed): a dead letter."""
    from taskq.submit import prepare

    runtime = deployment.runtime
    record = prepare(runtime.settings, SubmitRequest(type="data", params={"data": [1]}))
    record.params = params or record.params
    runtime.store.create(record)
    runtime.store.update(record.id, records.FAILURE, final=True, error="boom",
                         finished_at=time.time())
    return record


def test_dlq_purge_without_yes_is_refused_when_piped_and_asks_on_a_terminal(deployment):
    # Given a dead letter
    letter = _dead_letter(deployment)
    # When it is purged without --yes from a script (stdin not a terminal)
    piped = deployment.cli("dlq", "purge", stdin="y\n")
    # Then it is refused with exit 2, saying to pass --yes, and the letter stays
    assert piped.returncode == 2
    assert "pass --yes" in piped.stderr
    # When it is purged on a terminal and the answer is no, Then nothing is deleted
    assert _purge_on_a_terminal(deployment, "n") == (0, "nothing purged")
    assert [r["id"] for r in deployment.cli_json("dlq", "list")] == [letter.id]
    # And when the answer is yes, Then the letter is deleted
    assert _purge_on_a_terminal(deployment, "y") == (0, "purged 1 dead letters")
    assert deployment.cli_json("dlq", "list") == []


def _purge_on_a_terminal(deployment, answer: str) -> tuple[int, str]:
    """`taskq dlq purge` with a pseudo-terminal as stdin, answering `answer`; its exit code
    and what it wrote after the question (the answer is echoed on the terminal, not here)."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "taskq", "dlq", "purge"],
                                stdin=terminal, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=deployment.env, text=True,
                                cwd=deployment.home)
        os.write(controller, f"{answer}\n".encode())
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    asked, _, said = err.partition("Delete every dead letter of every type? [y/N]:")
    assert asked == "", err
    return proc.returncode, said.strip()


def test_dlq_retry_all_skips_a_letter_whose_parameters_no_longer_pass_and_keeps_it(deployment):
    # Given two dead letters, one with parameters its type's schema now refuses
    good = _dead_letter(deployment)
    stale = _dead_letter(deployment, data=[1], dropped_option=True)
    # When every dead letter is retried
    report = deployment.cli_json("dlq", "retry", "--all")
    # Then the good one is submitted again and the stale one is skipped and stays
    assert report["retried"] == 1 and report["skipped"] == 1
    assert [t["id"] for t in report["tasks"]] == [good.id]
    assert [r["id"] for r in deployment.cli_json("dlq", "list")] == [stale.id]


def test_dlq_retry_all_puts_every_letter_back_when_the_broker_is_down(deployment):
    # Given three dead letters, and a runtime whose broker cannot be reached
    letters = [_dead_letter(deployment) for _ in range(3)]
    env = {**deployment.env, "TASKQ_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//",
           "TASKQ_RESULT_BACKEND": deployment.runtime.backend_url}
    down = Runtime(config.load(env=env))
    # When they are retried in bulk
    try:
        with pytest.raises(BrokerUnavailable):
            dlq.retry_all(down, progress=lambda n: None)
    finally:
        down.celery.close()
        down.redis.close()
    # Then all are dead letters again, none linked to a new task, and no new task is left
    store = deployment.runtime.store
    assert dlq.count(deployment.runtime) == 3
    assert [store.get(letter.id).retried_as for letter in letters] == [None] * 3
    assert store.client.zcard(store.index_key) == 3
