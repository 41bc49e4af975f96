"""Records and results are never lost to retention: a task's record lives until record_ttl
after its final state however long it waited, and `attempts` counts a run cut short by a
killed worker."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from taskq import records, topology
from taskq.store import listing, retention

pytestmark = pytest.mark.integration


def test_a_waiting_task_keeps_its_record_until_record_ttl_after_it_finishes(deployment):
    # Given a task queued and a delayed one, with no worker on their queues
    store, settings = deployment.runtime.store, deployment.runtime.settings
    queued = deployment.submit("data", data=[3, 1, 2])
    delayed = deployment.submit("data", delay=1, data=[1])
    # And one sent through Celery's send_task with the caller's own id (claimed first)
    named = deployment.runtime.celery.send_task(topology.task_name("data_processing"),
                                                kwargs={"data": [1]}, task_id=records.new_id())
    # Then their records do not expire while they wait, however long that is
    for task_id in (queued.id, delayed.id, named.id):
        assert store.client.ttl(store.key(task_id)) == -1
    # And trimming the indexes long past the retention period keeps them listed
    later = time.time() + settings.record_ttl + 8 * 86400
    assert retention.trim(store, settings, now=later) == 0
    waiting = listing.ListQuery(states=("QUEUED", "SCHEDULED"))
    assert {r.id for r in listing.list_tasks(deployment.runtime, waiting)} == {
        queued.id, delayed.id, named.id}
    # When a worker finally runs them
    deployment.start_worker("--concurrency", "1")
    for task in (queued, delayed):
        assert deployment.wait(task.id).state == "SUCCESS"
        # Then the record, with its result, expires record_ttl after its final state
        ttl = store.client.ttl(store.key(task.id))
        assert settings.record_ttl - 5 <= ttl <= settings.record_ttl
    assert deployment.cli_json("status", queued.id)["result"]["count"] == 3


def wait_for_run(marker_dir: Path, runs: int, deployment, timeout: float = 30.0) -> list[Path]:
    """The marker files of the first `runs` runs, once that many have started."""
    deadline = time.monotonic() + timeout
    while len(found := sorted(marker_dir.glob("run-*"))) < runs:
        assert time.monotonic() < deadline, deployment.worker_logs()
        time.sleep(0.02)  # polling for the run to start
    return found


@pytest.mark.brokers
def test_a_run_cut_short_by_a_killed_pool_process_counts_as_an_attempt(deployment, tmp_path):
    # Given a worker running a 3 s task (its type has no retries)
    deployment.start_worker("--concurrency", "1")
    markers = tmp_path / "runs"
    task = deployment.submit("marked", marker_dir=str(markers), ms=3000)
    first = wait_for_run(markers, 1, deployment)[0]
    assert deployment.runtime.store.get(task.id).attempts == 1
    # When its pool process is killed mid-run (SIGKILL), and the task is redelivered
    os.kill(int(first.name.rsplit("-", 1)[1]), signal.SIGKILL)
    done = deployment.wait(task.id, timeout=60)
    # Then it ran twice and its record counts both runs
    assert done.state == "SUCCESS"
    assert len(wait_for_run(markers, 2, deployment)) == 2
    assert done.attempts == 2


@pytest.mark.brokers
def test_a_run_cut_short_by_a_killed_worker_counts_as_an_attempt(deployment, tmp_path):
    # Given a worker running a 3 s task
    worker = deployment.start_worker("--concurrency", "1")
    markers = tmp_path / "runs"
    task = deployment.submit("marked", marker_dir=str(markers), ms=3000)
    wait_for_run(markers, 1, deployment)
    # When the worker is killed (main process and pool) and another takes the task over
    deployment.kill_worker(worker)
    deployment.start_worker("--concurrency", "1")
    done = deployment.wait(task.id, timeout=60)
    # Then its record counts both runs
    assert done.state == "SUCCESS"
    assert done.attempts == 2
