"""Poison messages: a message published straight to the broker (past submit's validation) that
a worker cannot decode, read or hand to a pool process fails its task with the reason, as a
dead letter; the message leaves the broker and the worker goes on serving its queues."""

from __future__ import annotations

import json
import pickle
import time

import pytest

from taskq import records, topology
from taskq.broker import messages, poison, recovery
from taskq.request import SubmitRequest
from taskq.submit import prepare

pytestmark = pytest.mark.integration

GOOD_WITHIN = 5.0  # seconds from submit to done for the task behind the poison (loaded CI)


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def recorded(deployment, type_name: str = "data") -> records.TaskRecord:
    """The record of a task as submit writes it, without publishing its message."""
    record = prepare(deployment.runtime.settings, SubmitRequest(type=type_name,
                                                                params={"data": [1]}))
    deployment.runtime.store.create(record)
    return record


def wait_state(deployment, task_id: str, state: str, timeout: float = 15.0
               ) -> records.TaskRecord:
    store, deadline = deployment.runtime.store, time.monotonic() + timeout
    while store.client.hget(store.key(task_id), "state") != state.encode():
        assert time.monotonic() < deadline, deployment.worker_logs()
        time.sleep(0.05)  # polling for the worker's write
    return store.get(task_id)


def good_task_runs_promptly(deployment) -> None:
    """A task queued behind the poison, on the same queue, is done within GOOD_WITHIN."""
    good = deployment.submit("data", data=[3, 1, 2])
    done = deployment.wait(good.id, timeout=30)
    assert done.state == "SUCCESS", done
    assert done.finished_at - good.submitted_at < GOOD_WITHIN, deployment.worker_logs()


def assert_dead_letter(deployment, task_id: str, reason: str) -> None:
    status = deployment.cli_json("status", task_id)
    assert status["state"] == "FAILURE"
    assert status["error"].startswith("poison message: could not be "), status["error"]
    assert reason in status["error"]
    assert task_id in [letter["id"] for letter in deployment.cli_json("dlq", "list")]


def broker_is_empty(deployment, timeout: float = 5.0) -> bool:
    """No message in our queues, none held unacknowledged, none left as poison, within
    `timeout` (the ack of the task just done may ride with the worker's next look)."""
    deadline = time.monotonic() + timeout
    while not _broker_is_empty(deployment):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # polling for the last ack
    return True


def _broker_is_empty(deployment) -> bool:
    from taskq.broker.queues import queue_stats

    if any(q.depth for q in queue_stats(deployment.runtime)):
        return False
    if deployment.broker == "rabbitmq":
        return True
    prefix = deployment.runtime.settings.key_prefix
    with deployment.runtime.celery.connection_for_write() as connection:
        client = connection.default_channel.client
        held = [raw for _, raw in client.hscan_iter("unacked") if f'"{prefix}.'.encode() in raw]
        return not held and not client.hlen(f"{prefix}:poison")


@pytest.mark.brokers
def test_parameters_too_deep_to_hand_to_a_process_fail_the_task_and_free_the_worker(deployment):
    # Given a worker with a single process, and a task whose parameters were swapped on the
    # broker for ones nested 900 deep (pickling them for the process: RecursionError)
    deployment.start_worker("--concurrency", "1")
    runtime = deployment.runtime
    poisoned = recorded(deployment)
    runtime.celery.send_task(topology.task_name("data_processing"),
                             kwargs={"data": nested(900)}, task_id=poisoned.id,
                             queue=poisoned.queue, routing_key=poisoned.queue, taskq_raw=True)
    # When the worker takes it, Then the task fails with the reason, as a dead letter
    wait_state(deployment, poisoned.id, "FAILURE")
    assert_dead_letter(deployment, poisoned.id,
                       "handed to a process: RecursionError: maximum recursion depth")
    # And the process is not lost: the next task on that queue runs at once
    good_task_runs_promptly(deployment)
    good_task_runs_promptly(deployment)
    assert broker_is_empty(deployment)


# Messages Celery cannot read as a task: (task name, body, content type, what the reason
# says). taskq's workers accept JSON only, so a pickle is refused unread.
TASK = "taskq.data_processing"
BAD_BODIES = {
    "not JSON": (TASK, b'{"not json', "application/json", "decoded: DecodeError"),
    "not a task's": (TASK, b"{}", "application/json", "decoded: ValueError"),
    "a pickle": (TASK, pickle.dumps(((), {}, {})), "application/x-python-serialize",
                 "decoded: ContentDisallowed"),
    "an unknown task": ("taskq.nope", b'[[], {}, {}]', "application/json",
                        "matched to a task: KeyError: 'taskq.nope'"),
}


def publish_raw(deployment, queue: str, task_id: str, name: str, body: bytes,
                content_type: str) -> None:
    """A message with Celery's headers and the body given, straight to `queue`."""
    with deployment.runtime.celery.producer_or_acquire() as producer:
        producer.publish(body, exchange="", routing_key=queue, content_type=content_type,
                         content_encoding="binary",
                         headers={"id": task_id, "task": name, "root_id": task_id})


@pytest.mark.brokers
@pytest.mark.parametrize("body", list(BAD_BODIES), ids=list(BAD_BODIES))
def test_a_message_celery_cannot_read_as_a_task_fails_its_task(deployment, body):
    # Given a worker, and a queued task whose message was replaced on the broker by one with
    # Celery's headers that Celery cannot read as a task
    deployment.start_worker("--concurrency", "1")
    poisoned = recorded(deployment)
    name, raw, content_type, reason = BAD_BODIES[body]
    publish_raw(deployment, poisoned.queue, poisoned.id, name, raw, content_type)
    # When the worker takes it, Then the task fails with the reason, as a dead letter
    wait_state(deployment, poisoned.id, "FAILURE")
    assert_dead_letter(deployment, poisoned.id, reason)
    # And the worker goes on serving its queues
    good_task_runs_promptly(deployment)
    assert broker_is_empty(deployment)


def test_a_poison_message_without_a_record_is_dropped_and_counted(deployment):
    # Given a worker, and a poison message for a task that has no record (as any message
    # without one: its submit was reported failed, or it was not sent through taskq)
    deployment.start_worker("--concurrency", "1")
    task_id = records.new_id()
    queue = topology.queue_name(deployment.runtime.settings, "data_processing", "normal")
    publish_raw(deployment, queue, task_id, TASK, b'{"not json', "application/json")
    # When the worker takes it, Then it is dropped and counted, and no record appears for it
    store = deployment.runtime.store
    deadline = time.monotonic() + 15
    while store.client.hget(store.stats_key, "dropped") != b"1":
        assert time.monotonic() < deadline, deployment.worker_logs()
        time.sleep(0.05)  # polling for the worker's count
    assert not store.client.exists(store.key(task_id))
    # And the worker goes on serving its queues
    good_task_runs_promptly(deployment)
    assert broker_is_empty(deployment)


def redis_message(deployment, task_id: str, queue: str, kwargsrepr: str) -> str:
    """The JSON kombu's Redis transport would carry for task_id, with a kwargsrepr header of
    our choosing (json.dumps writes a lone surrogate as its \\ud800 escape)."""
    app = deployment.runtime.celery
    template = messages.capture(app, topology.task_name("data_processing"), queue)
    payload = json.loads(messages.redis_payload(template, task_id, {"data": [1]}))
    payload["headers"]["kwargsrepr"] = kwargsrepr
    return json.dumps(payload)


# The text of the message pushed: the fetch script's JSON (cjson) refuses a lone surrogate;
# cjson passes bytes that are not UTF-8, and Python cannot read them.
UNREADABLE = {
    "lone surrogate": lambda text: text.replace("SPOIL", "\\ud800 x").encode(),
    "not UTF-8": lambda text: text.replace("SPOIL", "caf\xe9").encode("latin-1"),
}


@pytest.mark.brokers("embedded", "redis")
@pytest.mark.parametrize("spoil", list(UNREADABLE), ids=list(UNREADABLE))
def test_a_message_the_redis_fetch_cannot_read_fails_its_task_and_leaves_no_trace(
        deployment, spoil):
    # Given a worker, and a queued task whose message on the Redis broker was replaced by one
    # the fetch cannot read
    deployment.start_worker("--concurrency", "1")
    poisoned = recorded(deployment)
    text = redis_message(deployment, poisoned.id, poisoned.queue, "SPOIL")
    with deployment.runtime.celery.connection_for_write() as connection:
        connection.default_channel.client.lpush(poisoned.queue, UNREADABLE[spoil](text))
    # When the worker takes it, Then the task fails with the reason, as a dead letter
    wait_state(deployment, poisoned.id, "FAILURE")
    assert_dead_letter(deployment, poisoned.id, "decoded: ")
    # And the worker goes on polling at full speed
    good_task_runs_promptly(deployment)
    # And the message is gone: from the queue, the unacked hash and the poison hash
    assert broker_is_empty(deployment)


@pytest.mark.brokers("embedded", "redis")
def test_a_parked_poison_message_whose_worker_died_is_settled_by_another(deployment):
    # Given a message the fetch script could not read, parked as poison by a worker that was
    # killed before it failed the task
    poisoned = recorded(deployment)
    text = redis_message(deployment, poisoned.id, poisoned.queue, "\ud800 x")
    with deployment.runtime.celery.connection_for_write() as connection:
        connection.default_channel.client.hset(poison.redis_key(deployment.runtime.settings
                                                                .key_prefix),
                                               "poison-parked", text.encode())
    # When another worker runs, Then within two lease rounds it fails the task
    deployment.start_worker("--concurrency", "1")
    wait_state(deployment, poisoned.id, "FAILURE", timeout=3 * recovery.RENEW_EVERY + 5)
    assert_dead_letter(deployment, poisoned.id, "decoded: ValueError")
    # And the parked message is gone
    assert broker_is_empty(deployment)
