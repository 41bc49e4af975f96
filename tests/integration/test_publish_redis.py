"""A Redis broker apart from the records' Redis: a batch's messages are pushed once or not at
all, and a record claims QUEUED exactly for each message pushed, whatever the broker does."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from relay import DOWNSTREAM, UPSTREAM, Relay

from taskq import config
from taskq.broker.embedded import find_redis_server
from taskq.broker.publish import send_all
from taskq.errors import NotQueued
from taskq.records import TaskRecord
from taskq.request import SubmitRequest
from taskq.runtime import Runtime
from taskq.submit import prepare, submit

pytestmark = pytest.mark.integration

DATA = SubmitRequest(type="data", params={"data": [1]})

# Longer than the broker client waits for a reply (urls.REPLY_TIMEOUT, 5 s), shorter than
# a reply and the check after it.
STALL = 7.0


@pytest.mark.brokers("redis")
def test_a_broker_apart_from_the_records_stalled_mid_submit_queues_each_task_once_with_its_record(
        deployment, tmp_path):
    # Given a broker of the test's own, apart from the records' Redis
    with _broker_apart(tmp_path) as (server, sock), _runtime(
            deployment, f"redis+socket://{sock}") as runtime:
        tasks = _tasks(runtime)
        # When they are sent in batches of 20, and the broker stops once the first batch is
        # queued, for longer than a reply may take, then goes on
        unqueued = _sent_through_a_stall(runtime, tasks, server.pid)
        # Then each message on the broker was pushed once, and has a QUEUED record, and each
        # record a message; the tasks said to be not queued are the others
        messages = Counter(_message_ids(sock))
        records = _records(deployment.runtime)
        assert max(messages.values()) == 1
        assert set(messages) == set(records)
        assert set(records) | set(unqueued) == {task.id for task in tasks}


@pytest.mark.brokers("redis")
def test_a_push_that_reaches_the_broker_after_its_submit_gave_up_is_not_queued(deployment,
                                                                               tmp_path):
    # Given a broker of the test's own apart from the records, reached through a relay, and
    # a task submitted to it
    with _broker_apart(tmp_path) as (_, sock), _relay(str(sock)) as relay, _runtime(
            deployment, f"redis://127.0.0.1:{relay.port}/0") as runtime:
        first = submit(runtime, DATA)
        # When what the connection sends is held back past the submit's wait for a reply
        # (it gives up after 5 s), and only then reaches the broker
        relay.black_hole(UPSTREAM, new_too=False)
        with pytest.raises(NotQueued) as raised:
            submit(runtime, DATA)
        held = relay.restore()
        # Then the task is said not to be queued, has no record, and its message never
        # arrives: only the first task's is queued
        (late,) = raised.value.unqueued
        assert deployment.runtime.store.get_many([first.id, late]) == [
            deployment.runtime.store.get(first.id), None]
        _wait_for(lambda: held and all(link.finished.is_set() for link in held))
        assert _message_ids(sock) == [first.id]


@pytest.mark.brokers("redis")
def test_a_shared_batch_whose_reply_was_lost_counts_as_queued_when_it_went_through(
        deployment):
    # Given a broker sharing its Redis database with the records, reached through a relay
    shared = urlsplit(deployment.env["TASKQ_BROKER_URL"])
    relay = Relay((shared.hostname or "127.0.0.1", shared.port or 6379))
    url = shared.geturl().replace(shared.netloc.rpartition("@")[2], f"127.0.0.1:{relay.port}")
    runtime = Runtime(config.load(env={**deployment.env, "TASKQ_BROKER_URL": url,
                                       "TASKQ_RESULT_BACKEND": url}))
    try:
        submit(runtime, DATA)
        # When a task is submitted, and its connection is lost once the server has it but
        # before its reply comes back
        relay.black_hole(DOWNSTREAM, new_too=False)
        sent = relay.sent
        submitting = ThreadPoolExecutor(1).submit(submit, runtime, DATA)
        store = deployment.runtime.store
        _wait_for(lambda: relay.sent > sent and store.client.zcard(store.index_key) == 2)
        relay.reset_all()
        record = submitting.result(timeout=30)
        # Then it counts as queued, with its record and one message
        assert store.get(record.id).state == "QUEUED"
        queued = [json.loads(text)["headers"]["id"]
                  for text in store.client.lrange(record.queue, 0, -1)]
        assert queued.count(record.id) == 1
    finally:
        relay.close()
        runtime.celery.close()
        runtime.redis.close()


@contextlib.contextmanager
def _broker_apart(home: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A redis-server of the test's own on a unix socket."""
    sock = Path(f"/tmp/tq-broker-{time.monotonic_ns()}.sock")
    server = subprocess.Popen([find_redis_server(), "--port", "0", "--unixsocket", str(sock),
                               "--save", "", "--appendonly", "no", "--dir", str(home)],
                              stdout=subprocess.DEVNULL)
    try:
        _wait_for(sock.exists)
        yield server, sock
    finally:
        os.kill(server.pid, signal.SIGCONT)
        server.terminate()
        server.wait(timeout=10)
        sock.unlink(missing_ok=True)


@contextlib.contextmanager
def _runtime(deployment, broker_url: str) -> Iterator[Runtime]:
    """The deployment, publishing to another broker."""
    runtime = Runtime(config.load(env={**deployment.env, "TASKQ_BROKER_URL": broker_url}))
    try:
        yield runtime
    finally:
        runtime.celery.close()
        runtime.redis.close()


@contextlib.contextmanager
def _relay(target: tuple[str, int] | str) -> Iterator[Relay]:
    relay = Relay(target)
    try:
        yield relay
    finally:
        relay.close()


def _tasks(runtime: Runtime) -> list[TaskRecord]:
    return [prepare(runtime.settings, SubmitRequest(type="data", params={"data": [n]}))
            for n in range(60)]


def _sent_through_a_stall(runtime: Runtime, tasks: list[TaskRecord], pid: int) -> list[str]:
    """Send `tasks` in batches of 20, the broker stopped (SIGSTOP) for STALL seconds once
    the first is queued; the ids said to be not queued."""
    resumed = threading.Timer(STALL, os.kill, (pid, signal.SIGCONT))

    def stop_after_the_first_batch(_: int) -> None:
        if resumed.ident is None:  # not started yet
            os.kill(pid, signal.SIGSTOP)
            resumed.start()

    try:
        send_all(runtime, tasks, batch_size=20, progress=stop_after_the_first_batch)
    except NotQueued as exc:
        return exc.unqueued
    finally:
        if resumed.ident is not None:
            resumed.join()
        os.kill(pid, signal.SIGCONT)
    return []


def _records(runtime: Runtime) -> list[str]:
    """The ids of the deployment's records; each one QUEUED."""
    store = runtime.store
    ids = [task_id.decode() for task_id in store.client.zrange(store.index_key, 0, -1)]
    assert {record.state for record in store.get_many(ids) if record} <= {"QUEUED"}
    return ids


def _message_ids(sock: Path) -> list[str]:
    """The task ids of the messages in every queue (list) on a broker of the test's own."""
    broker = redis.Redis(unix_socket_path=str(sock))
    ids = []
    for key in broker.keys("*"):
        if broker.type(key) == b"list":
            ids += [json.loads(text)["headers"]["id"] for text in broker.lrange(key, 0, -1)]
    broker.close()
    return ids


def _wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not ready after {timeout} s"
        time.sleep(0.01)  # polling
