"""Dependencies, as users chain work: a task submitted --after others waits (WAITING) until
they have all succeeded, ends REVOKED naming the one that did not (or runs anyway with
--after-any), and a dependency that does not exist is refused before anything is queued."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from api_server import running_api

from taskq import Client
from taskq.broker.queues import queue_stats

pytestmark = pytest.mark.integration


def _submit(deployment, *args: str) -> dict:
    return deployment.cli_json("submit", *args)


@pytest.mark.brokers("embedded", "rabbitmq")
def test_a_task_after_another_runs_only_once_that_one_has_succeeded(deployment, tmp_path):
    # Given A queued and B submitted after A (by a unique prefix of A's id), no worker yet
    a = _submit(deployment, "--type", "marked", "--param", f"marker_dir={tmp_path / 'a'}",
                "--param", "ms=50")
    b = _submit(deployment, "--type", "marked", "--param", f"marker_dir={tmp_path / 'b'}",
                "--param", "ms=1", "--after", a["id"][:8])
    # Then B waits for A, and status and list say so
    assert (b["state"], b["after"]) == ("WAITING", [a["id"]])
    listed = deployment.cli_json("list", "--state", "WAITING")
    assert [(t["id"], t["after"]) for t in listed] == [(b["id"], [a["id"]])]
    shown = deployment.cli("status", b["id"])
    assert shown.returncode == 0
    assert f"after      {a['id']}\n" in shown.stdout
    # And nothing of B is in a queue: only A's message is
    assert sum(q["depth"] for q in deployment.cli_json("queues")) == 1
    # When a worker runs
    deployment.start_worker("--concurrency", "2")
    done_b = deployment.wait(b["id"])
    done_a = deployment.wait(a["id"])
    # Then B succeeded, and started after A had finished (by the records and by the markers)
    assert (done_a.state, done_b.state) == ("SUCCESS", "SUCCESS")
    assert done_b.started_at >= done_a.finished_at
    ran_a, = (tmp_path / "a").iterdir()
    ran_b, = (tmp_path / "b").iterdir()
    assert int(ran_b.name.split("-")[1]) > int(ran_a.name.split("-")[1])


@pytest.mark.brokers("embedded", "rabbitmq")
def test_tasks_after_a_failed_one_end_revoked_naming_it_down_the_chain(deployment, tmp_path):
    # Given A that will fail, B after A and C after B (through the Python API)
    a = _submit(deployment, "--type", "crash", "--param", "code=7")
    with Client(deployment.runtime.settings) as client:
        b = client.submit("marked", {"marker_dir": str(tmp_path / "b"), "ms": 1},
                          after=a["id"])
        c = client.submit("marked", {"marker_dir": str(tmp_path / "c"), "ms": 1},
                          after=[b.id])
    assert (b.state, c.state) == ("WAITING", "WAITING")
    # When A fails on a worker
    deployment.start_worker()
    assert deployment.wait(a["id"]).state == "FAILURE"
    # Then B ends REVOKED naming A, C ends REVOKED naming B, and neither ran
    done_b, done_c = deployment.wait(b.id, 30), deployment.wait(c.id, 30)
    assert (done_b.state, done_b.error) == ("REVOKED", f"dependency {a['id']} ended FAILURE")
    assert (done_c.state, done_c.error) == ("REVOKED", f"dependency {b.id} ended REVOKED")
    assert done_b.started_at is None and not (tmp_path / "b").exists()
    assert not (tmp_path / "c").exists()


@pytest.mark.brokers("embedded", "rabbitmq")
def test_after_any_runs_the_task_however_its_dependency_ended(deployment):
    # Given A that fails and B after A with --after-any
    a = _submit(deployment, "--type", "crash", "--param", "code=1")
    b = _submit(deployment, "--type", "spin", "--param", "ms=1", "--after", a["id"],
                "--after-any")
    assert b["after_any"] is True
    # When a worker runs them
    deployment.start_worker()
    # Then A failed and B ran all the same
    assert deployment.wait(a["id"]).state == "FAILURE"
    assert deployment.wait(b["id"]).state == "SUCCESS"


@pytest.mark.brokers("embedded", "rabbitmq")
def test_a_dependency_already_finished_at_submit_is_handled_at_once(deployment):
    # Given A already succeeded and F already cancelled (REVOKED)
    deployment.start_worker()
    with Client(deployment.runtime.settings) as client:
        a = client.submit("spin", {"ms": 1})
        assert client.wait(a.id).state == "SUCCESS"
        f = client.submit("crash", delay=600)
        client.cancel(f.id)
    # When B is submitted after A, and G after F
    b = _submit(deployment, "--type", "spin", "--param", "ms=1", "--after", a.id)
    g = _submit(deployment, "--type", "spin", "--param", "ms=1", "--after", f.id)
    # Then B is queued at once, and runs; G ends REVOKED at once, naming F
    assert b["state"] == "QUEUED"
    assert deployment.wait(b["id"]).state == "SUCCESS"
    assert (g["state"], g["error"]) == ("REVOKED", f"dependency {f.id} ended REVOKED")


@pytest.mark.brokers("embedded", "rabbitmq")
def test_a_task_after_two_runs_once_both_have_succeeded(deployment, tmp_path):
    # Given A and B, and C after both (a line of a --from file)
    a = _submit(deployment, "--type", "spin", "--param", "ms=200")
    b = _submit(deployment, "--type", "spin", "--param", "ms=20")
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps({"task_type": "spin", "parameters": {"ms": 1},
                                "after": [a["id"], b["id"]]}) + "\n")
    c = deployment.cli_json("submit", "--from", str(path))
    assert c["state"] == "WAITING"
    # When two worker processes run A and B side by side
    deployment.start_worker("--concurrency", "2")
    done = [deployment.wait(task_id) for task_id in (c["id"], a["id"], b["id"])]
    # Then C ran after both had finished
    assert [r.state for r in done] == ["SUCCESS"] * 3
    assert done[0].started_at >= max(done[1].finished_at, done[2].finished_at)


def test_cancelling_a_waiting_task_revokes_it_and_its_own_waiters(deployment):
    # Given A queued, B after A and C after B, no worker
    with Client(deployment.runtime.settings) as client:
        a = client.submit("spin", {"ms": 1})
        b = client.submit("spin", {"ms": 1}, after=a.id)
        c = client.submit("spin", {"ms": 1}, after=b.id)
    # When B is cancelled
    cancelled = deployment.cli("cancel", b.id)
    # Then B is REVOKED, C too (naming B), and when A succeeds B is not queued after all
    assert cancelled.returncode == 0, cancelled.stderr
    assert deployment.cli_json("status", c.id)["error"] == f"dependency {b.id} ended REVOKED"
    deployment.start_worker()
    assert deployment.wait(a.id).state == "SUCCESS"
    assert deployment.runtime.store.get(b.id).state == "REVOKED"
    assert sum(q.depth for q in queue_stats(deployment.runtime)) == 0


def test_an_unknown_or_malformed_dependency_is_refused_and_nothing_is_queued(deployment):
    # Given one real task
    a = _submit(deployment, "--type", "spin", "--param", "ms=1")
    for after in (f"{a['id']},{'0' * 36}", "x\x01y", ",,"):
        # When a task is submitted after an id no task has (or no id at all)
        result = deployment.cli("submit", "--type", "spin", "--param", "ms=1",
                                "--after", after)
        # Then it exits 2 with one line, and nothing more was recorded
        assert result.returncode == 2, (after, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    store = deployment.runtime.store
    assert store.client.zcard(store.index_key) == 1


def test_the_api_takes_after_and_refuses_an_unknown_one_with_400(deployment):
    # Given the sidecar and one task
    a = _submit(deployment, "--type", "spin", "--param", "ms=1")
    with running_api(deployment) as api:
        # When a task is posted after it, and one after an unknown id
        ok = api.post("/api/tasks", json={"task_type": "spin", "parameters": {"ms": 1},
                                          "after": [a["id"]]})
        bad = api.post("/api/tasks", json={"task_type": "spin", "parameters": {"ms": 1},
                                           "after": ["0" * 36]})
        odd = api.post("/api/tasks/batch", json={"tasks": [{"task_type": "spin", "after": 5}]})
        cancelled = api.request("DELETE", f"/api/tasks/{a['id']}")
        late = api.post("/api/tasks/batch", json={"tasks": [
            {"task_type": "spin", "parameters": {"ms": 1}, "after": [a["id"]]}]})
    # Then the first waits for it, the others are refused with 400, naming the field
    assert ok.status_code == 202 and ok.json()["status"] == "WAITING"
    assert ok.json()["after"] == [a["id"]]
    assert bad.status_code == 400 and "after" in bad.json()["message"]
    assert odd.status_code == 400 and "tasks[0].after" in odd.json()["message"]
    # And a task posted after one already cancelled is answered REVOKED at once
    assert cancelled.status_code == 200, cancelled.text
    assert late.json()["tasks"][0]["status"] == "REVOKED"


def test_a_time_limit_and_the_poison_guard_release_waiters_too(deployment):
    from taskq.broker import poison

    # Given L that outruns its soft time limit, P whose message will be found poisonous,
    # and a task after each (no worker yet)
    with Client(deployment.runtime.settings) as client:
        limited = client.submit("bounded", {"ms": 5000})
        poisoned = client.submit("spin", {"ms": 1})
        after_l = client.submit("spin", {"ms": 1}, after=limited.id)
        after_p = client.submit("spin", {"ms": 1}, after=poisoned.id)
    # When the poison guard fails P (as a worker does with a message it cannot decode)
    bad = poison.Poison(poisoned.id, poisoned.queue, "decoded", ValueError("garbled"))
    assert poison.quarantine(deployment.runtime.store, bad)
    # Then the task after P ends REVOKED at once, naming it
    assert deployment.cli_json("status", after_p.id)["error"] == \
        f"dependency {poisoned.id} ended FAILURE"
    # And when a worker's time limit fails L, the task after L ends REVOKED naming it
    deployment.start_worker()
    assert deployment.wait(limited.id).state == "FAILURE"
    done = deployment.wait(after_l.id, 30)
    assert (done.state, done.error) == ("REVOKED", f"dependency {limited.id} ended FAILURE")


def test_a_release_its_writer_did_not_finish_is_finished_by_a_worker_heartbeat(deployment):
    from taskq import records

    # Given B after A, and A's final state written by a process that died before it queued B
    # (the write released B onto the list; nobody drained it)
    with Client(deployment.runtime.settings) as client:
        a = client.submit("spin", {"ms": 1}, delay=600)
        b = client.submit("spin", {"ms": 1}, after=a.id)
    store = deployment.runtime.store
    store.on_released = None
    assert store.update(a.id, records.SUCCESS, final=True, result=None)
    assert store.get(b.id).state == "WAITING"
    # When a worker starts (its heartbeat drains the list)
    deployment.start_worker()
    # Then B is queued and runs
    assert deployment.wait(b.id, 30).state == "SUCCESS"


_WAITERS = textwrap.dedent("""
    import sys, time
    from taskq import Client

    # Submit tasks after A while it runs, paced (a client's request rate, not work), then
    # three more once it has ended: those near its end race its final write.
    with Client() as client:
        before = after = 0
        while after < 3:
            ended = client.get(sys.argv[1]).final
            task = client.submit("spin", {"ms": 1}, after=sys.argv[1])
            print(task.id, task.state, ended, flush=True)
            before, after = (before, after + 1) if ended else (before + 1, after)
            time.sleep(0.05)
""")


def test_tasks_submitted_after_one_while_it_ends_are_all_run(deployment):
    # Given A queued, and three processes submitting tasks after A, paced, until it has ended
    with Client(deployment.runtime.settings) as client:
        a = client.submit("spin", {"ms": 300})
    procs = [subprocess.Popen([sys.executable, "-c", _WAITERS, a.id], env=deployment.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=deployment.home) for _ in range(3)]
    first = [proc.stdout.readline() for proc in procs]  # each is submitting
    # When a worker runs A, so that it ends while they submit
    deployment.start_worker("--concurrency", "2")
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    rows = [line.split() for line in first + [ln for out, _ in outputs
                                              for ln in out.splitlines()] if line.strip()]
    # Then every one of them runs: none is left WAITING for a wake-up that was lost
    assert {ended for _, _, ended in rows} == {"False", "True"}
    assert all(deployment.wait(task_id, 60).state == "SUCCESS" for task_id, _, _ in rows)
