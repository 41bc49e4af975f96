"""A warm shutdown (SIGTERM) in the middle of a stream of short tasks ends, and loses nothing:
the tasks the worker finished are acknowledged (their messages gone), the rest stay queued."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from taskq import bulk, records, submit, topology
from taskq.broker.queues import queue_stats
from taskq.request import SubmitRequest

pytestmark = pytest.mark.integration

TASKS = 400
TASK_MS = 15  # CPU time of each task: short, so the shutdown lands between acks
DONE_BEFORE_STOP = 40  # tasks finished before the worker gets SIGTERM
EXIT_WITHIN = 15.0  # seconds, generous on a loaded machine (a warm shutdown here takes <2 s)


def _states(deployment, ids: list[str]) -> list[str]:
    store = deployment.runtime.store
    pipe = store.client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hget(store.key(task_id), "state")
    return [state.decode() for state in pipe.execute()]


def _wait_done(deployment, ids: list[str], count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _states(deployment, ids).count(records.SUCCESS) < count:
        assert time.monotonic() < deadline, deployment.worker_logs()
        time.sleep(0.02)  # polling for the work to progress


@pytest.mark.brokers
def test_sigterm_mid_stream_exits_soon_and_every_finished_task_is_acknowledged(deployment):
    # Given a worker of 2 processes working through many short tasks
    worker = deployment.start_worker("--concurrency", "2", "--type", "spin")
    settings = deployment.runtime.settings
    tasks = bulk.submit_all(deployment.runtime, [
        submit.prepare(settings, SubmitRequest(type="spin", priority="low",
                                               params={"ms": TASK_MS}))
        for _ in range(TASKS)])
    ids = [task.id for task in tasks]
    _wait_done(deployment, ids, DONE_BEFORE_STOP)
    # When it gets SIGTERM mid-stream (a warm shutdown)
    worker.send_signal(signal.SIGTERM)
    # Then it exits 0 within a few seconds
    try:
        code = worker.wait(EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        deployment.kill_worker(worker)
        raise AssertionError(f"still running {EXIT_WITHIN} s after SIGTERM:\n"
                             f"{deployment.worker_logs()}") from None
    assert code == 0, deployment.worker_logs()
    # And every task it took has finished, and each one not finished is still queued
    states = _states(deployment, ids)
    assert set(states) <= {records.SUCCESS, records.QUEUED}, set(states)
    # And no finished task's message is left in the queue: its ack reached the broker
    queue = topology.queue_name(settings, "spin", "low")
    [info] = [q for q in queue_stats(deployment.runtime) if q.name == queue]
    assert info.depth == states.count(records.QUEUED), (info.depth, states.count("QUEUED"))
