"""Idempotency keys, as users and applications send them: a repeat of a key within its type's
window queues nothing and answers with the first task, however many submit it at once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from api_server import running_api

from taskq.request import SubmitRequest
from taskq.submit import submit

pytestmark = pytest.mark.integration


def _depth(deployment, type_name: str) -> int:
    return sum(q["depth"] for q in deployment.cli_json("queues", "--type", type_name))


@pytest.mark.brokers("embedded", "rabbitmq")
def test_a_repeated_key_answers_with_the_first_task_and_queues_nothing(deployment):
    # Given a task submitted with a key
    first = deployment.cli_json("submit", "--type", "data", "--param", "data=[1]",
                                "--key", "order-1")
    # When the same submit is made again (a client retrying after a timeout)
    again = deployment.cli("submit", "--type", "data", "--param", "data=[1]",
                           "--key", "order-1", "--json")
    # Then it succeeds with the first task's record, marked deduplicated, and queues nothing
    assert again.returncode == 0, again.stderr
    repeat = json.loads(again.stdout)
    assert (repeat["id"], repeat["deduplicated"], repeat["key"]) == (first["id"], True, "order-1")
    assert "deduplicated" not in first
    assert _depth(deployment, "data") == 1
    # And the key belongs to its type: the same key on another type is another task
    other = deployment.cli_json("submit", "--type", "spin", "--param", "ms=1",
                                "--key", "order-1")
    assert other["id"] != first["id"] and "deduplicated" not in other
    # And status shows the key
    assert deployment.cli_json("status", first["id"])["key"] == "order-1"


_SUBMITTER = textwrap.dedent("""
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from taskq import Client

    with Client() as client, ThreadPoolExecutor(10) as pool:
        tasks = list(pool.map(lambda _: client.submit("data", {"data": [1]}, key="once"),
                              range(10)))
    print("\\n".join(f"{t.id} {t.deduplicated}" for t in tasks))
""")


@pytest.mark.brokers("embedded", "rabbitmq")
def test_fifty_concurrent_submits_of_one_key_from_five_processes_make_one_task(deployment):
    # Given five application processes, each submitting one key from ten threads at once
    procs = [subprocess.Popen([sys.executable, "-c", _SUBMITTER], env=deployment.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=deployment.home) for _ in range(5)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    # Then every submit answered with one and the same task, and exactly one was queued
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    answers = [line.split() for out, _ in outputs for line in out.splitlines()]
    assert len(answers) == 50
    assert len({task_id for task_id, _ in answers}) == 1
    assert sorted(flag for _, flag in answers) == ["False"] + ["True"] * 49
    store = deployment.runtime.store
    assert store.client.zcard(store.index_key) == 1
    assert _depth(deployment, "data") == 1


def test_repeats_within_one_file_and_one_api_batch_are_queued_once(deployment, tmp_path):
    # Given a file of three tasks, two of them with one key
    lines = [{"task_type": "data", "parameters": {"data": [n]}, "key": key}
             for n, key in ((1, "a"), (2, "a"), (3, "b"))]
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    # When it is submitted
    done = deployment.cli("submit", "--from", str(path), "--json")
    # Then the repeat names the first line's task, and two tasks are queued
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows[1]["id"] == rows[0]["id"] and rows[1]["deduplicated"] is True
    assert rows[2]["id"] != rows[0]["id"] and "deduplicated" not in rows[2]
    assert "1 named by their key an earlier task" in done.stderr
    assert _depth(deployment, "data") == 2
    with running_api(deployment) as api:
        # When the API is sent the key "b" again, alone and in a batch
        alone = api.post("/api/tasks", json=lines[2])
        batch = api.post("/api/tasks/batch", json={"tasks": [lines[2], lines[0]]})
    # Then each answers with the existing tasks (200 for a single repeat, nothing queued)
    assert (alone.status_code, alone.json()["task_id"]) == (200, rows[2]["id"])
    assert alone.json()["deduplicated"] is True
    assert batch.status_code == 202
    assert [t["task_id"] for t in batch.json()["tasks"]] == [rows[2]["id"], rows[0]["id"]]
    assert _depth(deployment, "data") == 2


def test_a_submit_the_broker_did_not_take_gives_its_key_back(deployment):
    # Given a broker that cannot be reached (the record store can)
    down = {**deployment.env, "TASKQ_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//",
            "TASKQ_RESULT_BACKEND": deployment.runtime.backend_url}
    failed = subprocess.run([sys.executable, "-m", "taskq", "submit", "--type", "data",
                             "--param", "data=[1]", "--key", "k"], env=down, text=True,
                            capture_output=True, timeout=60, cwd=deployment.home)
    # When a key's submit fails, Then it exits 7, and the key is free again
    assert failed.returncode == 7, failed.stderr
    retried = deployment.cli_json("submit", "--type", "data", "--param", "data=[1]",
                                  "--key", "k")
    assert "deduplicated" not in retried
    assert _depth(deployment, "data") == 1


def test_a_key_names_its_task_for_its_type_s_window_only(deployment):
    # Given a task submitted with a key, of a type whose key_window is 2 s (tests' config)
    # (in-process: a CLI process can take longer than the window to start on a loaded machine)
    first = keyed_submit(deployment)
    # Then a repeat within the window is the same task, and one after it is a new task
    repeat = keyed_submit(deployment)
    assert time.time() - first.submitted_at < 2, "the repeat came after the window"
    assert repeat.id == first.id
    submitted_at = first.submitted_at
    while True:
        later = keyed_submit(deployment)
        if later.id != first.id:
            break
        # (a generous bound for a loaded machine, well short of the 10 s a claim lasts)
        assert time.time() - submitted_at < 6, "the key outlived its 2 s window"
        time.sleep(0.25)  # waiting for the window to pass
    assert time.time() - submitted_at >= 2


def keyed_submit(deployment):
    return submit(deployment.runtime, SubmitRequest(type="spin", params={"ms": 1}, key="w"))


@pytest.mark.parametrize("key", ["", "a\nb", "x" * 201])
def test_a_bad_key_is_refused_with_exit_2_and_nothing_queued(deployment, key):
    refused = deployment.cli("submit", "--type", "data", "--param", "data=[1]", "--key", key)
    assert refused.returncode == 2
    assert "key: must" in refused.stderr
    assert deployment.nothing_queued()
