"""A host cut off from RabbitMQ and Redis mid-run: its tasks run elsewhere, each ends once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from fleet import HEARTBEAT, start_worker, wait_for
from relay import DOWNSTREAM

from taskq.broker import recovery

# One runner takes every host test: each picks a free 10.213.<x> range, and two picking
# at the same moment could take the same one.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("hosts")]

RUN_MS = 500  # CPU time each task spins for
# How long a cut-off host's tasks can stay with it: RabbitMQ closes a connection that sent
# nothing for about two heartbeats; a Redis broker's lease runs out and the next scan of
# another worker's lease thread restores them.
DETECTION = {"rabbitmq": 3 * HEARTBEAT,
             "redis": recovery.LEASE + 2 * recovery.RENEW_EVERY}


@pytest.mark.brokers("rabbitmq", "redis")
def test_a_host_cut_off_mid_run_has_its_tasks_run_elsewhere_and_its_late_writes_refused(
        deployment, fleet):
    store = deployment.runtime.store
    # Given hosts A and B with a worker of 2 processes each, and 6 tasks of 0.5 s
    a, b = fleet(2).hosts
    a_name = start_worker(deployment, a, "--concurrency", "2")
    b_name = start_worker(deployment, b, "--concurrency", "2")
    marks = deployment.home / "marks"
    ids = [deployment.submit("marked", marker_dir=str(marks / str(n)), ms=RUN_MS).id
           for n in range(6)]

    def on(worker: str) -> list[str]:
        return [i for i in ids if (r := store.get(i)).state == "STARTED" and r.worker == worker]

    wait_for(lambda: len(on(a_name)) == 2, 30, "A running two tasks")
    # When A is black-holed both ways (its connections stay open, nothing gets through)
    cut_off = on(a_name)
    a.black_hole()
    # Then every task ends SUCCESS within the bound, A's two on B
    bound = DETECTION[deployment.broker] + 20  # (+ 2 runs each on B, on a busy machine)
    took = wait_for(lambda: all(store.get(i).state == "SUCCESS" for i in ids), bound,
                    f"every task SUCCESS after A was cut off\n{deployment.worker_logs()}")
    print(f"[{deployment.broker}] A's tasks done elsewhere {took:.1f} s after the cut")
    assert all(store.get(i).worker == b_name for i in cut_off)
    # When A comes back: its held writes (its own SUCCESS for the tasks it ran) arrive late
    a.restore()
    wait_for(a.drained, 10, "A's held bytes forwarded")
    wait_for(lambda: time.time() - float(store.client.hget(
        store.worker_key(a_name), "heartbeat_at") or 0) < 1, 30, "A back online")
    # Then A's runs did happen (a marker file each), but the records keep B's later result
    for task_id in cut_off:
        runs = sorted((marks / str(ids.index(task_id))).iterdir())  # run-<ns>-<pid>
        assert len(runs) == 2
        record = store.get(task_id)
        assert (record.state, record.worker) == ("SUCCESS", b_name)
        assert record.result == {"pid": int(runs[-1].name.split("-")[-1])}
    # And each task counts as done once
    assert int(store.client.hget(store.stats_key, "done")) == len(ids)


@pytest.mark.brokers("rabbitmq", "redis")
def test_a_stale_hosts_result_landing_first_is_kept_with_its_own_worker_name(
        deployment, fleet):
    store = deployment.runtime.store
    marks = deployment.home / "marks"
    # Given host A running a task of 1 s, and host B
    a, b = fleet(2).hosts
    a_name = start_worker(deployment, a, "--concurrency", "1")
    task_id = deployment.submit("marked", marker_dir=str(marks), ms=1000).id
    b_worker = len(deployment.workers)
    wait_for(lambda: store.get(task_id).worker == a_name, 30, "the task STARTED on A")
    # When A is black-holed (it finishes the run; its SUCCESS is held back) and B re-runs it
    a.black_hole()
    b_name = start_worker(deployment, b, "--concurrency", "1")
    wait_for(lambda: store.get(task_id).worker == b_name, DETECTION[deployment.broker] + 20,
             "the task STARTED again on B")
    # And A comes back, once its run is over, while B is still running it: A's result lands
    # first
    a_pid = int(min(marks.iterdir()).name.split("-")[-1])  # run-<ns>-<pid>: A's first
    wait_for(lambda: _waiting(a_pid), 30, "A's run over (its process waits on its write)")
    a.restore()
    wait_for(a.drained, 10, "A's held bytes forwarded")
    wait_for(lambda: len(list(marks.iterdir())) == 2 and store.get(task_id).state == "SUCCESS",
             30, "the task SUCCESS")
    # Then, once B has finished its run too (a warm shutdown waits for it)
    deployment.workers[b_worker].send_signal(signal.SIGTERM)
    assert deployment.workers[b_worker].wait(30) == 0
    # the record keeps A's result and names A as the worker that produced it
    record = store.get(task_id)
    assert record.result == {"pid": a_pid}
    assert record.worker == a_name
    # And the task counts as done once, by A
    assert [store.client.hget(store.worker_key(name), "done") for name in (a_name, b_name)] \
        == [b"1", None]


# RabbitMQ only: there a deaf host's basic.get takes a message it never receives, held until
# the heartbeats time out. On Redis its main process waits for the reply to its ack (and
# takes nothing more), so the test could not fail there.
@pytest.mark.brokers("rabbitmq")
def test_a_host_that_can_send_but_not_hear_delays_no_task_past_the_bound(deployment, fleet):
    store = deployment.runtime.store
    # Given hosts A and B with a worker of 2 processes each, and 30 tasks of 0.3 s queued
    a, b = fleet(2).hosts
    a_name = start_worker(deployment, a, "--concurrency", "2")
    start_worker(deployment, b, "--concurrency", "2")
    ids = [deployment.submit("spin", ms=300).id for _ in range(30)]
    wait_for(lambda: sum(store.get(i).worker == a_name for i in ids) >= 2, 30,
             "A running tasks")
    # When A hears nothing more from RabbitMQ and Redis while what it sends gets through
    # (its next fetches take messages off the queues, and the replies never reach it)
    a.black_hole(DOWNSTREAM)
    # Then every task ends SUCCESS within the bound for a host cut off both ways (plus B's
    # share of the 30 tasks of 0.3 s CPU: 4.5 s on an idle machine, over 20 s at load 8)
    took = wait_for(lambda: all(store.get(i).state == "SUCCESS" for i in ids),
                    DETECTION[deployment.broker] + 40,
                    f"every task SUCCESS\n{deployment.worker_logs()}")
    print(f"[{deployment.broker}] done {took:.1f} s after A went deaf")


def _waiting(pid: int) -> bool:
    """The process is asleep (blocked on a read or write), not running or runnable."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0] == "S"
