"""Outages: a broker restart mid-run loses no task, a worker rides out a result backend
outage, and a submit to a broker that is down fails fast and leaves no record behind."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis_server import RedisServer
from relay import Relay
from smtp_server import free_port

from taskq.api import metrics
from taskq.broker import publish
from taskq.errors import BrokerUnavailable, NotQueued
from taskq.request import SubmitRequest
from taskq.submit import prepare

pytestmark = pytest.mark.integration

FINAL = (b"SUCCESS", b"FAILURE", b"REVOKED")
SUBMIT_FAILS_WITHIN = 5.0  # seconds
DOWN_FOR = 2.0  # seconds a restarted broker is down
# Seconds the result backend is down: well within the 10 s (store.WRITE_RETRY) a worker's
# write rides out, so that the test does not race its end on a loaded machine.
BACKEND_DOWN_FOR = 6.0
OUTAGE_AT_A_WRITE = 5.0  # seconds the backend is down around a worker's failure write
# Seconds the result backend is down past a worker's ride-out (store.WRITE_RETRY, 10 s)
OUTAGE_PAST_A_WRITE = 13.0


def _states(deployment, ids):
    store = deployment.runtime.store
    pipe = store.client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hget(store.key(task_id), "state")
    return pipe.execute()


def _wait_done(deployment, ids, count, timeout=90.0):
    deadline = time.monotonic() + timeout
    while sum(1 for s in _states(deployment, ids) if s in FINAL) < count:
        assert time.monotonic() < deadline, deployment.worker_logs()
        time.sleep(0.1)  # polling for progress


@dataclass
class OwnBroker:
    """A broker a test may take down and bring back at the same address."""

    down: Callable[[], None]
    up: Callable[[], None]

    def restart(self) -> None:
        self.down()
        time.sleep(DOWN_FOR)  # the outage itself
        self.up()


@contextmanager
def own_broker(deployment) -> Iterator[OwnBroker]:
    """Point the deployment at a broker this test may stop without touching anyone else's:
    the embedded broker (its own), a redis-server of its own on Redis, and a relay of its
    own in front of the shared RabbitMQ."""
    if deployment.broker == "embedded":
        # Stopped by `taskq down`, started again as the next command that needs it does
        # (read commands do not start it).
        yield OwnBroker(partial(_cli_ok, deployment, "down"),
                        deployment.runtime.embedded.ensure_running)
    elif deployment.broker == "redis":
        with RedisServer() as server:
            deployment.env["TASKQ_BROKER_URL"] = server.url()
            yield OwnBroker(server.stop, server.start)
    else:
        url = urlsplit(deployment.env["TASKQ_BROKER_URL"])
        with Relay((url.hostname or "127.0.0.1", url.port or 5672)) as relay:
            deployment.env["TASKQ_BROKER_URL"] = urlunsplit(
                url._replace(netloc=f"{url.username}:{url.password}@{relay.address}"))
            yield OwnBroker(relay.cut, relay.restore)


def _cli_ok(deployment, *args: str) -> None:
    result = deployment.cli(*args)
    assert result.returncode == 0, result.stderr


@pytest.mark.brokers
def test_a_broker_restart_mid_run_loses_no_queued_task_and_workers_reconnect(deployment):
    with own_broker(deployment) as broker:
        # Given a worker part-way through 60 queued tasks (long enough that the 50 left take
        # seconds: a quicker stop would find none left, and test nothing)
        worker = deployment.start_worker("--concurrency", "2")
        ids = [deployment.submit("spin", "low", ms=150).id for _ in range(60)]
        _wait_done(deployment, ids, 10)
        # When the broker restarts
        broker.restart()
        restarted = time.time()
        # Then every task still ends SUCCESS, run by the same worker once it reconnected
        _wait_done(deployment, ids, len(ids))
        assert set(_states(deployment, ids)) == {b"SUCCESS"}
        assert worker.poll() is None
        finished = [deployment.runtime.store.get(task_id).finished_at for task_id in ids]
        assert max(finished) > restarted
        # And a new task submitted from the CLI is run
        result = deployment.cli("submit", "--type", "data", "--param", "data=after restart",
                                "--wait", "--timeout", "60")
        assert result.returncode == 0, result.stderr
        deployment.stop_workers()  # before its broker goes


@pytest.mark.brokers("rabbitmq", "redis")
def test_submit_while_the_broker_is_down_exits_7_fast_and_leaves_no_record(deployment):
    # Given a broker URL where nothing listens (the result backend is up)
    port = free_port()
    deployment.env["TASKQ_BROKER_URL"] = (
        f"amqp://guest:secret@127.0.0.1:{port}//" if deployment.broker == "rabbitmq"
        else f"redis://:secret@127.0.0.1:{port}/13")
    # When a task is submitted, from the CLI and from Python
    result = deployment.cli("submit", "--type", "data", "--param", "data=x")
    began = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        deployment.submit("data", data="x")
    took = time.monotonic() - began
    # Then the submit gives up within a few seconds (the README says about one; the rest is
    # room for a loaded machine; the interpreter's start, seconds of it here under load, is
    # not the submit's), and the CLI exits 7 naming the broker with its password masked
    assert took < SUBMIT_FAILS_WITHIN, f"took {took:.1f} s"
    assert result.returncode == 7, result.stderr
    assert result.stderr.startswith("error: broker unreachable")
    assert f"127.0.0.1:{port}" in result.stderr
    assert "secret" not in result.stderr
    assert "Traceback" not in result.stderr
    # And no record is left claiming the task is QUEUED
    store = deployment.runtime.store
    assert store.client.zcard(f"{store.prefix}:tasks") == 0
    assert not list(store.client.scan_iter(match=f"{store.prefix}:task:*"))


def test_a_worker_rides_out_a_result_backend_outage_and_its_final_write_lands(deployment):
    # Given a worker whose result backend is a redis-server of the test's own, running a task
    with RedisServer() as backend:
        deployment.env["TASKQ_RESULT_BACKEND"] = backend.url()
        worker = deployment.start_worker("--concurrency", "1")
        task = deployment.submit("spin", ms=500)
        _wait_state(deployment, task.id, "STARTED")
        # When the backend goes down while the task runs, and comes back BACKEND_DOWN_FOR
        # seconds later
        backend.stop()
        time.sleep(BACKEND_DOWN_FOR)  # the outage itself
        backend.start()
        back = time.time()
        # Then the task's final write, made during the outage, landed once it was back
        done = deployment.wait(task.id, timeout=30)
        assert done.state == "SUCCESS", deployment.worker_logs()
        assert done.finished_at < back, "the task did not finish during the outage"
        # And the worker goes on serving
        assert worker.poll() is None
        after = deployment.submit("data", data=[1])
        assert deployment.wait(after.id, timeout=30).state == "SUCCESS"
        deployment.stop_workers()  # before its backend goes


@pytest.mark.brokers("embedded", "rabbitmq")
def test_a_task_whose_final_write_outlasts_the_ride_out_runs_again_once_it_can_be_recorded(
        deployment, tmp_path):
    # Given a worker whose result backend is a redis-server of the test's own, running a task
    runs = tmp_path / "runs"
    with RedisServer() as backend:
        deployment.env["TASKQ_RESULT_BACKEND"] = backend.url()
        deployment.start_worker("--concurrency", "1")
        task = deployment.submit("marked", marker_dir=str(runs), ms=500)
        _wait_state(deployment, task.id, "STARTED")
        # When the backend goes down while it runs, for longer than its final write rides out
        backend.stop()
        time.sleep(OUTAGE_PAST_A_WRITE)  # the outage itself
        backend.start()
        # Then its message was not acknowledged with the record left STARTED: the task runs
        # again once the backend is back, and ends SUCCESS
        done = deployment.wait(task.id, timeout=30)
        assert done.state == "SUCCESS", deployment.worker_logs()
        assert len(list(runs.iterdir())) == 2
        deployment.stop_workers()  # before its backend goes


def test_a_failure_during_a_result_backend_outage_is_recorded_once_it_is_back(deployment):
    # Given a worker whose result backend is a redis-server of the test's own, running a task
    # that its soft time limit will fail in a second
    with RedisServer() as backend:
        deployment.env["TASKQ_RESULT_BACKEND"] = backend.url()
        deployment.start_worker("--concurrency", "1")
        task = deployment.submit("limited", ms=10_000)
        _wait_state(deployment, task.id, "STARTED")
        # When the backend goes down before it fails, and comes back 5 s later
        backend.stop()
        time.sleep(OUTAGE_AT_A_WRITE)  # the outage itself
        backend.start()
        # Then the failure, met during the outage, is recorded: FAILURE with its attempt
        done = deployment.wait(task.id, timeout=30)
        assert done.state == "FAILURE", deployment.worker_logs()
        assert done.exc_type == "SoftTimeLimitExceeded"
        assert [entry["attempt"] for entry in done.attempt_errors] == [1]
        deployment.stop_workers()  # before its backend goes


def test_a_transient_error_during_a_result_backend_outage_is_retried_not_failed(
        deployment, tmp_path):
    # Given a worker whose result backend is a redis-server of the test's own, running a task
    # that fails transiently once, a second after it started
    with RedisServer() as backend:
        deployment.env["TASKQ_RESULT_BACKEND"] = backend.url()
        deployment.start_worker("--concurrency", "1")
        task = deployment.submit("slow_flaky", marker_dir=str(tmp_path / "runs"), ms=1000)
        _wait_state(deployment, task.id, "STARTED")
        # When the backend goes down before it fails, and comes back 5 s later
        backend.stop()
        time.sleep(OUTAGE_AT_A_WRITE)  # the outage itself
        backend.start()
        # Then the failed attempt was recorded and retried, and the retry succeeded
        done = deployment.wait(task.id, timeout=30)
        assert done.state == "SUCCESS", deployment.worker_logs()
        assert done.attempts == 2
        assert [(e["attempt"], e["exc_type"]) for e in done.attempt_errors] == [
            (1, "TransientError")]
        deployment.stop_workers()  # before its backend goes


def _wait_state(deployment, task_id, state, timeout=30.0):
    deadline = time.monotonic() + timeout
    while deployment.runtime.store.get(task_id).state != state:
        assert time.monotonic() < deadline, deployment.worker_logs()
        time.sleep(0.02)  # polling for readiness


@pytest.mark.brokers("rabbitmq", "redis")
def test_a_broker_failing_mid_bulk_runs_exactly_the_tasks_it_said_were_queued(deployment,
                                                                             tmp_path):
    # (On the embedded broker a batch's records and messages go in one transaction on one
    # server: there is no partial batch to look for.)
    with own_broker(deployment) as broker:
        # Given 25 tasks that each leave a marker file when they run, sent by the bulk path in
        # batches of 10, and a broker that fails once the first batch is reported sent (on
        # RabbitMQ: confirmed; the second batch may be on the wire then, taken or not)
        runtime = deployment.runtime
        tasks = [prepare(runtime.settings, SubmitRequest(
            type="marked", params={"marker_dir": str(tmp_path / str(n)), "ms": 0}))
            for n in range(25)]
        sent: list[int] = []

        def first_batch_then_fail(count: int) -> None:
            sent.append(count)
            broker.down()

        # When they are submitted
        with pytest.raises(NotQueued) as failed:
            publish.send_all(runtime, tasks, batch_size=10, progress=first_batch_then_fail)
        broker.up()
        # Then the error names the broker and says how many tasks were queued: at least the
        # batches reported sent (on RabbitMQ the next one's confirms may have come in before
        # the cut), and not all of them
        error = failed.value
        assert error.message.startswith("broker unreachable at ")
        assert sent[0] == 10 and sum(sent) <= error.queued < 25
        assert f"{error.queued} of 25 tasks queued" in error.message
        # And exactly those keep their records, QUEUED; the rest left no record
        store = runtime.store
        kept = tasks[:error.queued]
        assert [store.get(task.id).state for task in kept] == ["QUEUED"] * len(kept)
        assert sorted(error.unqueued) == sorted(task.id for task in tasks[error.queued:])
        assert not any(store.client.exists(store.key(task_id)) for task_id in error.unqueued)
        assert store.client.zcard(store.index_key) == len(kept)
        # (what the broker holds: those, and any message it took without confirming it)
        taken = _depth(deployment)
        assert len(kept) <= taken <= 25
        # When a worker serves the queue until it is empty, and stops
        deployment.start_worker()
        assert [deployment.wait(task.id).state for task in kept] == ["SUCCESS"] * len(kept)
        _wait_until(lambda: _depth(deployment) == 0, deployment.worker_logs)
        deployment.stop_workers()
        # Then the tasks said to be queued ran, and only those: a message the broker took
        # without confirming it was dropped by the worker (it has no record), not run
        ran = sorted(n for n in range(25) if (tmp_path / str(n)).exists())
        assert ran == list(range(error.queued)), deployment.worker_logs()
        logs = "".join(log.read_text() for log in (deployment.home / "logs").glob("test-worker-*"))
        assert logs.count("it has no record") == taken - len(kept)
        assert not any(store.client.exists(store.key(task_id)) for task_id in error.unqueued)


def _depth(deployment) -> int:
    return sum(queue["depth"] for queue in deployment.cli_json(
        "queues", "--type", "marked", "--priority", "normal"))


def _wait_until(condition: Callable[[], bool], explain: Callable[[], str],
                timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, explain()
        time.sleep(0.05)  # polling for the queue to drain


@pytest.mark.brokers
def test_a_worker_drops_a_message_whose_record_a_failed_submit_removed(deployment, tmp_path):
    # Given two queued tasks that leave a marker file when they run, and the record of the
    # first removed as a failed submit removes it (the broker took the message, unconfirmed)
    gone = deployment.submit("marked", marker_dir=str(tmp_path / "gone"), ms=0)
    kept = deployment.submit("marked", marker_dir=str(tmp_path / "kept"), ms=0)
    assert publish.publisher(deployment.runtime).forget([gone]) == [gone]
    # When a worker serves their queue
    deployment.start_worker()
    # Then the second runs, the first is dropped without running and leaves no record
    assert deployment.wait(kept.id).state == "SUCCESS"
    _wait_until(lambda: _depth(deployment) == 0, deployment.worker_logs)
    deployment.stop_workers()
    assert (tmp_path / "kept").exists() and not (tmp_path / "gone").exists()
    assert f"dropped task {gone.id}: it has no record" in deployment.worker_logs()
    assert deployment.cli("status", gone.id).returncode == 4
    # And the drop is counted in the metrics
    scraped = metrics.render(metrics.registry_for(deployment.runtime)).decode()
    assert "\ntaskq_dropped_messages_total 1.0\n" in scraped
