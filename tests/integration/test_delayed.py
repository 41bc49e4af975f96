"""Delayed tasks wait in the record store's due set, not in a worker: moved to their queues
when due, exactly once however many movers run, and nothing lost when a mover dies."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from taskq import bulk, submit
from taskq.broker import mover
from taskq.request import SubmitRequest
from taskq.store import delayed

pytestmark = pytest.mark.integration

DELAY = 5.0  # seconds: long enough to look at the tasks before they fall due on a busy machine


def _marked(deployment, tmp_path, count: int, delay: float):
    """`count` marked tasks submitted together, each delayed `delay` s, with their marker dirs."""
    settings = deployment.runtime.settings
    return bulk.submit_all(deployment.runtime, [
        submit.prepare(settings, SubmitRequest(
            type="marked", params={"marker_dir": str(tmp_path / f"t{n}")}, delay=delay))
        for n in range(count)])


def _runs(tmp_path, count: int) -> list[int]:
    """How many times each marked task's work ran."""
    return [len(list((tmp_path / f"t{n}").glob("run-*"))) if (tmp_path / f"t{n}").exists()
            else 0 for n in range(count)]


def _queue(deployment, name: str) -> dict:
    """`taskq queues --json`'s entry for one queue."""
    [found] = [q for q in deployment.cli_json("queues") if q["name"] == name]
    return found


@pytest.mark.brokers
def test_delayed_tasks_wait_in_redis_not_in_a_worker_and_each_runs_once_when_due(
        deployment, tmp_path):
    # Given a running worker
    deployment.start_worker("--concurrency", "2")
    # When 40 tasks are submitted together, delayed a few seconds
    tasks = _marked(deployment, tmp_path, 40, DELAY)
    # Then, before they are due, they wait in the due set: SCHEDULED, counted as scheduled in
    # `taskq queues`, and no message is in their queue for a worker to take
    queue = _queue(deployment, tasks[0].queue)
    assert (queue["scheduled"], queue["depth"]) == (40, 0)
    store = deployment.runtime.store
    assert {r.state for r in store.get_many([t.id for t in tasks])} == {"SCHEDULED"}
    assert time.time() < min(t.eta for t in tasks), "too slow to look before they fell due"
    # And once due, every one runs exactly once, not before its eta, and keeps its eta
    for task in tasks:
        done = deployment.wait(task.id, timeout=60)
        assert done.state == "SUCCESS", done.error
        assert done.started_at >= task.eta - 0.05
        assert done.eta == pytest.approx(task.eta)
    assert _runs(tmp_path, 40) == [1] * 40
    queue = _queue(deployment, tasks[0].queue)
    assert (queue["scheduled"], queue["depth"]) == (0, 0)


MOVER_KILLED = """
import os, signal, sys
from taskq import config
from taskq.runtime import Runtime
from taskq.store import delayed
taken = delayed.take(Runtime(config.load()).store, lease=float(sys.argv[1]))
print(len(taken), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # between taking and publishing
"""


@pytest.mark.brokers
def test_a_mover_killed_between_taking_and_publishing_loses_no_task(deployment, tmp_path):
    # Given 20 tasks delayed half a second, and no worker yet
    tasks = _marked(deployment, tmp_path, 20, 0.5)
    while time.time() < max(t.eta for t in tasks):
        time.sleep(0.05)  # waiting for the clock, not for work
    # When a mover takes them once due and is SIGKILLed before it publishes them
    lease = 2.0
    killed = subprocess.run([sys.executable, "-c", MOVER_KILLED, str(lease)],
                            env=deployment.env, capture_output=True, text=True, timeout=60)
    assert killed.returncode == -9, killed.stderr
    assert killed.stdout.strip() == "20"
    # Then they are QUEUED and claimed, yet none is in its queue
    store = deployment.runtime.store
    assert {r.state for r in store.get_many([t.id for t in tasks])} == {"QUEUED"}
    assert _queue(deployment, tasks[0].queue)["depth"] == 0
    # And when a worker starts, its mover publishes them once the dead mover's claims lapse,
    # and each runs exactly once
    deployment.start_worker("--concurrency", "2")
    for task in tasks:
        assert deployment.wait(task.id, timeout=60).state == "SUCCESS"
    assert _runs(tmp_path, 20) == [1] * 20
    assert store.client.zcard(delayed.moving_key(store.prefix)) == 0


@pytest.mark.brokers
def test_a_worker_killed_while_moving_due_tasks_loses_none_and_runs_each_once(
        deployment, tmp_path):
    # Given a worker whose mover stalls right after its take, before publishing (the test
    # hook in sitecustomize.py: it writes the ids it took to a marker file, then waits)
    marker = tmp_path / "taken"
    deployment.env["TASKQ_TEST_STALL_MOVE"] = str(marker)
    try:
        stalled = deployment.start_worker("--concurrency", "2")
    finally:
        del deployment.env["TASKQ_TEST_STALL_MOVE"]  # the next worker moves as shipped
    # And 20 tasks delayed half a second
    tasks = _marked(deployment, tmp_path, 20, 0.5)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, f"no take: {deployment.worker_logs()}"
        time.sleep(0.05)  # waiting for the worker's mover to take them
    assert set(marker.read_text().split()) == {t.id for t in tasks}
    # When that worker is SIGKILLed between its take and its publish
    deployment.kill_worker(stalled)
    # Then the tasks are QUEUED and claimed, yet none is in its queue
    store = deployment.runtime.store
    assert {r.state for r in store.get_many([t.id for t in tasks])} == {"QUEUED"}
    assert store.client.zcard(delayed.moving_key(store.prefix)) == 20
    assert _queue(deployment, tasks[0].queue)["depth"] == 0
    # And when a second worker starts, its mover takes them over once the claims lapse
    # (CLAIM_LEASE), and each runs exactly once, on that worker
    second = deployment.start_worker("--concurrency", "2")
    for task in tasks:
        done = deployment.wait(task.id, timeout=delayed.CLAIM_LEASE + 60)
        assert done.state == "SUCCESS", done.error
        assert f".{second.pid}@" in done.worker
    assert _runs(tmp_path, 20) == [1] * 20
    assert store.client.zcard(delayed.moving_key(store.prefix)) == 0


def test_many_movers_at_once_take_each_due_task_exactly_once(deployment, tmp_path):
    # Given 2,000 delayed tasks, all due
    tasks = _marked(deployment, tmp_path, 2000, 0.2)
    due = max(t.eta for t in tasks)
    # When 8 movers take due tasks at the same time, 50 at a time, until none is left
    store = deployment.runtime.store
    taken: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def take_all(mine: list[str]) -> None:
        start.wait()
        while found := delayed.take(store, now=due, most=50):
            mine.extend(found)

    movers = [threading.Thread(target=take_all, args=(mine,)) for mine in taken]
    for thread in movers:
        thread.start()
    for thread in movers:
        thread.join(timeout=60)
    # Then every task was taken by exactly one of them, and each is QUEUED
    everything = [task_id for mine in taken for task_id in mine]
    assert len(everything) == len(set(everything)) == 2000
    assert set(everything) == {t.id for t in tasks}
    assert sum(1 for mine in taken if mine) > 1, "one mover took all: no race was run"
    assert {r.state for r in store.get_many(everything)} == {"QUEUED"}


def test_a_task_delayed_a_month_is_scheduled_and_cancel_takes_it_out_of_the_due_set(
        deployment):
    # Given a task delayed by a month (more than the week a worker could hold)
    result = deployment.cli("submit", "--type", "data", "--param", "data=[1]",
                            "--delay", str(30 * 86400), "--json")
    assert result.returncode == 0, result.stderr
    task = json.loads(result.stdout)
    assert task["state"] == "SCHEDULED"
    store = deployment.runtime.store
    assert store.client.zscore(delayed.due_key(store.prefix), task["id"]) is not None
    assert _queue(deployment, task["queue"])["scheduled"] == 1
    # When it is cancelled
    cancelled = deployment.cli("cancel", task["id"], "--json")
    # Then it is REVOKED, out of the due set, and no longer counted as scheduled
    assert cancelled.returncode == 0, cancelled.stderr
    assert store.get(task["id"]).state == "REVOKED"
    assert store.client.zscore(delayed.due_key(store.prefix), task["id"]) is None
    assert _queue(deployment, task["queue"])["scheduled"] == 0


def test_a_mover_drops_a_task_cancelled_after_it_fell_due(deployment, tmp_path):
    # Given a delayed task that has fallen due, and was cancelled before any mover took it
    [task] = _marked(deployment, tmp_path, 1, 0.2)
    store = deployment.runtime.store
    store.transition(task.id, "REVOKED", final=True, only_from=("SCHEDULED",))
    # When a mover looks
    moved = mover.move_due(deployment.runtime, now=task.eta + 1)
    # Then it publishes nothing and the task leaves the due set, still REVOKED
    assert moved == 0
    assert store.client.zcard(delayed.due_key(store.prefix)) == 0
    assert store.get(task.id).state == "REVOKED"
    assert _queue(deployment, task.queue)["depth"] == 0
