"""A task counts as queued once RabbitMQ confirms its message: a lost connection, a refusal or
a missing confirm leaves records exactly for the confirmed tasks, and no task queued twice."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from urllib.parse import urlsplit

import pytest
from relay import DOWNSTREAM, Relay

from taskq import config
from taskq.broker.publish import confirms, send_all
from taskq.errors import NotQueued
from taskq.request import SubmitRequest
from taskq.runtime import Runtime
from taskq.submit import prepare, submit

pytestmark = [pytest.mark.integration, pytest.mark.brokers("rabbitmq")]

DATA = SubmitRequest(type="data", params={"data": [1, 2, 3]})
WARM_UP = 101  # tasks _bytes_per_message submits


@pytest.fixture
def relayed(deployment):
    """The deployment's RabbitMQ behind a relay of the test's own, and a runtime (and an
    environment for the CLI) that publish through it."""
    url = urlsplit(deployment.env["TASKQ_BROKER_URL"])
    relay = Relay((url.hostname or "127.0.0.1", url.port or 5672))
    netloc = f"{url.username}:{url.password}@127.0.0.1:{relay.port}"
    env = {**deployment.env, "TASKQ_BROKER_URL": url._replace(netloc=netloc).geturl()}
    runtime = Runtime(config.load(env=env))
    try:
        yield relay, runtime, env
    finally:
        relay.close()
        runtime.celery.close()
        runtime.redis.close()


def test_a_single_submit_is_queued_once_the_broker_confirms_it(deployment, relayed,
                                                              monkeypatch):
    # Given a task submitted through the relay, and then the broker's replies held back
    relay, runtime, _ = relayed
    first = submit(runtime, DATA)
    monkeypatch.setattr(confirms, "CONFIRM_TIMEOUT", 1.0)
    relay.black_hole(DOWNSTREAM, new_too=False)
    # When another task is submitted
    with pytest.raises(NotQueued) as raised:
        submit(runtime, DATA)
    # Then it is not counted as queued without the broker's confirm, and keeps no record
    assert "did not confirm 1 message within 1 s" in raised.value.message
    assert raised.value.message.endswith("the task was not queued")
    (unconfirmed,) = raised.value.unqueued
    store = deployment.runtime.store
    assert store.client.exists(store.key(unconfirmed)) == 0
    # And the first one, confirmed, is queued with its record
    assert store.get(first.id).state == "QUEUED"
    relay.restore()
    assert _queued_ids(deployment.runtime, first.queue)[0] == first.id


def test_a_batch_cut_mid_publish_is_published_again_without_a_duplicate(deployment, relayed):
    # Given 300 tasks, and a relay that cuts the connection halfway through the second of
    # their batches of 100 (the connection is made again)
    relay, runtime, _ = relayed
    per_message = _bytes_per_message(relay, runtime)
    tasks = [prepare(runtime.settings, DATA) for _ in range(300)]
    prepared_ids = [task.id for task in tasks]
    relay.cut_after(150 * per_message)
    # When they are sent
    send_all(runtime, tasks, batch_size=100)
    # Then every task is queued once, with its record
    queued = Counter(_queued_ids(deployment.runtime, tasks[0].queue))
    store = deployment.runtime.store
    assert all(store.get_many([task.id for task in tasks]))
    assert [queued[task.id] for task in tasks] == [1] * 300
    # And what the cut left unconfirmed (at least the message it cut through; at most the two
    # batches on their way) was published again as new tasks, while a message of theirs that
    # got through before the cut has no record (a worker drops it), and no message is there
    # twice
    reissued = [task for task, old in zip(tasks, prepared_ids, strict=True) if task.id != old]
    assert relay.was_cut.is_set() and 1 <= len(reissued) <= 200
    found = dict(zip(queued, store.get_many(list(queued)), strict=True))
    orphans = [task_id for task_id, record in found.items() if record is None]
    assert set(orphans) <= set(prepared_ids) and len(orphans) <= len(reissued)
    assert max(queued.values()) == 1
    assert store.client.zcard(store.index_key) == 300 + WARM_UP  # no old record left


def test_a_batch_cut_for_good_keeps_records_exactly_for_the_confirmed_tasks(deployment,
                                                                            relayed):
    # Given 300 tasks, and a relay that cuts the connection halfway through the second of
    # their batches of 100 and then refuses to connect
    relay, runtime, _ = relayed
    per_message = _bytes_per_message(relay, runtime)
    tasks = [prepare(runtime.settings, DATA) for _ in range(300)]
    relay.cut_after(150 * per_message, then_refuse=True)
    counted: list[int] = []
    # When they are sent
    with pytest.raises(NotQueued) as raised:
        send_all(runtime, tasks, batch_size=100, progress=counted.append)
    # Then the error says the broker is unreachable, and how many tasks were queued: those
    # the broker confirmed before the cut
    error = raised.value
    unqueued = set(error.unqueued)
    queued = [task.id for task in tasks if task.id not in unqueued]
    assert error.message.startswith("broker unreachable at amqp://")
    assert error.message.endswith(
        f"; {len(queued)} of 300 tasks queued, {300 - len(queued)} not queued")
    assert queued == [task.id for task in tasks[:len(queued)]] and len(queued) < 200
    assert sum(counted) == len(queued) // 100 * 100  # progress counts whole batches
    # And exactly the tasks queued have records, each with one message
    store = deployment.runtime.store
    assert [bool(r) for r in store.get_many([t.id for t in tasks])] == [
        task.id not in unqueued for task in tasks]
    messages = Counter(_queued_ids(deployment.runtime, tasks[0].queue))
    assert [messages[task_id] for task_id in queued] == [1] * len(queued)
    assert max(messages.values()) == 1


def test_a_batch_the_broker_partly_refuses_keeps_records_exactly_for_what_it_confirmed(
        deployment):
    # Given a policy that lets the tasks' queue hold 50 messages and refuses more
    runtime = deployment.runtime
    tasks = [prepare(runtime.settings, DATA) for _ in range(120)]
    vhost = urlsplit(deployment.env["TASKQ_BROKER_URL"]).path.lstrip("/")
    _rabbitmqctl("set_policy", "-p", vhost, "--apply-to", "queues", "at-most-50",
                 f"^{re.escape(tasks[0].queue)}$",
                 json.dumps({"max-length": 50, "overflow": "reject-publish"}))
    # When 120 tasks are sent in one batch
    with pytest.raises(NotQueued) as raised:
        send_all(runtime, tasks)
    # Then the error says the broker refused 70, and that 50 were queued
    assert "refused 70 messages" in raised.value.message
    assert raised.value.message.endswith("; 50 of 120 tasks queued, 70 not queued")
    # And exactly the 50 the broker confirmed keep their records, one message each
    store = runtime.store
    assert [bool(r) for r in store.get_many([t.id for t in tasks])] == [True] * 50 + [False] * 70
    assert _queued_ids(runtime, tasks[0].queue) == [task.id for task in tasks[:50]]


def test_bulk_submit_cut_for_good_prints_what_was_queued_and_names_the_lines_that_were_not(
        deployment, relayed):
    # Given a file of 1,000 tasks (two batches), and a relay that cuts the CLI's connection
    # halfway through the second batch and then refuses to connect
    relay, runtime, env = relayed
    per_message = _bytes_per_message(relay, runtime)
    path = deployment.home / "tasks.jsonl"
    path.write_text('{"task_type": "data", "parameters": {"data": [1]}}\n' * 1000)
    relay.cut_after(750 * per_message, then_refuse=True)
    # When it is submitted with --json
    deployment.env.update(env)
    result = deployment.cli("submit", "--from", str(path), "--json")
    # Then it exits 7, saying how many tasks were queued and which lines were not
    assert result.returncode == 7, result.stderr
    error = result.stderr.strip()  # (the progress bar leaves a blank line before it)
    assert error.startswith("error: broker unreachable at amqp://")
    counts = re.search(r"; (\d+) of 1000 tasks queued, (\d+) not queued \(lines (\d+)-1000\)$",
                       error)
    assert counts is not None, error
    queued = int(counts[1])  # what the broker confirmed before the cut
    assert queued < 1000 and int(counts[3]) == queued + 1
    assert "Traceback" not in result.stderr
    # And stdout has the lines that were queued, each with its record
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["line"] for row in rows] == list(range(1, queued + 1))
    assert all(deployment.runtime.store.get_many([row["id"] for row in rows]))


def _bytes_per_message(relay: Relay, runtime: Runtime) -> int:
    """Bytes one task's message takes on the wire, measured through the relay (after a first
    submit has opened the connection and declared the queue)."""
    submit(runtime, DATA)
    before = relay.sent
    send_all(runtime, [prepare(runtime.settings, DATA) for _ in range(WARM_UP - 1)])
    return (relay.sent - before) // (WARM_UP - 1)


def _rabbitmqctl(*args: str) -> None:
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def _queued_ids(runtime: Runtime, queue: str) -> list[str]:
    ids = []
    with runtime.celery.connection_for_write() as conn:
        while (message := conn.default_channel.basic_get(queue, no_ack=True)) is not None:
            ids.append(message.headers["id"])
    return ids
