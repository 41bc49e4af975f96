"""Bulk submit: `taskq submit --from`, and messages that Celery workers take as their own."""

from __future__ import annotations

import json
import time

import pytest

from taskq import topology
from taskq.broker import messages, publish
from taskq.request import SubmitRequest
from taskq.submit import prepare

pytestmark = pytest.mark.integration


def _lines(*bodies: dict) -> str:
    return "".join(json.dumps(body) + "\n" for body in bodies)


@pytest.mark.brokers
def test_submit_from_file_queues_every_line_and_a_worker_runs_them(deployment):
    # Given a worker and a file of tasks using aliases, priorities and a delay
    deployment.start_worker()
    path = deployment.home / "tasks.jsonl"
    path.write_text(_lines(
        {"task_type": "data", "parameters": {"data": [1, 2, 3]}},
        {"task_type": "data_processing", "priority": "high", "parameters": {"data": "a b"}},
        {"task_type": "spin", "priority": "low", "parameters": {"ms": 1}, "delay": 0.5},
    ))
    # When it is submitted with --json
    result = deployment.cli("submit", "--from", str(path), "--json")
    # Then it exits 0 with one line per task, naming its line and id
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["line"] for row in rows] == [1, 2, 3]
    assert [row["state"] for row in rows] == ["QUEUED", "QUEUED", "SCHEDULED"]
    # And each one runs to its result
    done = [deployment.wait(row["id"], timeout=30) for row in rows]
    assert [record.state for record in done] == ["SUCCESS"] * 3
    assert done[0].result["mean"] == 2
    assert done[1].priority == "high"


def test_a_bad_line_is_reported_with_its_number_and_nothing_is_queued(deployment):
    # Given stdin with good lines around an unknown type, bad JSON and a bad parameter
    stdin = _lines({"task_type": "data", "parameters": {"data": [1]}},
                   {"task_type": "dta"}) + "not json\n\n" + _lines(
        {"task_type": "email", "parameters": {"to": "not an address"}},
        {"task_type": "data", "parameters": {"data": [2]}})
    # When it is submitted
    result = deployment.cli("submit", "--from", "-", stdin=stdin)
    # Then it exits 2 naming every bad line by its number
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid parameters")
    for expected in ("line 2: unknown task type 'dta'", "line 3: not valid JSON",
                     "line 5: "):
        assert expected in result.stderr
    assert "Traceback" not in result.stderr
    # And nothing of the file reached a record or a queue
    assert deployment.nothing_queued()


def test_from_cannot_be_combined_with_single_task_options(deployment):
    result = deployment.cli("submit", "--from", "-", "--type", "data", stdin="")
    assert result.returncode == 2
    assert "--from" in result.stderr


def test_a_bulk_message_is_exactly_what_send_task_publishes(deployment):
    # Given a record, and the message Celery's own send_task LPUSHes for it
    runtime = deployment.runtime
    record = prepare(runtime.settings, SubmitRequest(type="data", params={"data": [1, 2]}))
    runtime.celery.send_task(topology.task_name(record.type), kwargs=record.params,
                             task_id=record.id, queue=record.queue, routing_key=record.queue,
                             taskq_raw=True)
    sent = json.loads(runtime.store.client.rpop(record.queue))
    # When the bulk path builds the same task's message, whole and from the queue's encoder
    template = publish.publisher(runtime).template(record)
    built = json.loads(messages.redis_payload(template, record.id, record.params))
    encoded = json.loads(messages.RedisEncoder(template).encode(record.id, record.params))
    # Then they are the same but for the delivery tag, which is unique to each message
    for message in (sent, built, encoded):
        assert message["properties"].pop("delivery_tag")
    assert built == sent
    assert encoded == sent


@pytest.mark.brokers("rabbitmq")
def test_a_lost_broker_connection_is_made_again_and_the_submit_goes_through(deployment):
    # Given a submit that left a connection in Celery's producer pool, and that connection cut
    import socket

    runtime = deployment.runtime
    first = deployment.submit("data", data=[1])
    with runtime.celery.producer_or_acquire() as producer:
        producer.connection.connection.sock.shutdown(socket.SHUT_RDWR)
    # When another task is submitted
    second = deployment.submit("data", data=[2])
    # Then it is queued behind the first, as send_task's retry policy would have done
    with runtime.celery.connection_for_write() as conn:
        declared = conn.default_channel.queue_declare(second.queue, passive=True)
    assert declared.message_count == 2
    assert runtime.store.get(first.id).state == runtime.store.get(second.id).state == "QUEUED"


@pytest.mark.brokers
def test_a_batch_of_records_reads_back_as_prepared_without_expiry_and_indexed(deployment):
    # Given records of several types and priorities, one with text that JSON escapes
    runtime = deployment.runtime
    requests = [SubmitRequest(type="data", params={"data": "é 😀 \"quoted\"\nnext line"}),
                SubmitRequest(type="spin", priority="low", params={"ms": 1}),
                SubmitRequest(type="data", priority="high", params={"data": [1.5, 2]})]
    batch = [prepare(runtime.settings, request) for request in requests]
    # When they are sent as one batch
    publish.send_all(runtime, batch)
    # Then each reads back as it was prepared, is kept until it is final (no expiry), and is
    # in the index
    store = runtime.store
    for record in batch:
        assert store.get(record.id) == record
        assert store.client.ttl(store.key(record.id)) == -1
        assert store.client.zscore(store.index_key, record.id) == record.submitted_at


@pytest.mark.brokers
def test_submitted_at_is_when_the_record_is_written_and_keeps_the_submission_order(deployment):
    # Given tasks prepared before they are sent, the last one delayed by 30 s
    runtime = deployment.runtime
    requests = [SubmitRequest(type="data", params={"data": [n]}) for n in range(5)]
    requests.append(SubmitRequest(type="data", params={"data": [5]}, delay=30))
    batch = [prepare(runtime.settings, request) for request in requests]
    prepared_by = time.time()
    # When they are sent in batches of 2
    publish.send_all(runtime, batch, batch_size=2)
    # Then each one's submitted_at is after it was prepared, in submission order, one apart
    stamps = [record.submitted_at for record in batch]
    assert prepared_by <= stamps[0] and stamps == sorted(set(stamps))
    # And it is what the record and its index score say
    store = runtime.store
    for record in batch:
        assert store.get(record.id).submitted_at == record.submitted_at
        assert store.client.zscore(store.index_key, record.id) == record.submitted_at
    # And the delayed task is due its delay after it
    assert batch[-1].eta - batch[-1].submitted_at == pytest.approx(30, abs=1e-3)


@pytest.mark.brokers
def test_batches_are_published_in_order_and_counted_as_each_is_written(deployment):
    # Given 25 tasks for one queue
    runtime = deployment.runtime
    batch = [prepare(runtime.settings, SubmitRequest(type="data", params={"data": [n]}))
             for n in range(25)]
    counted: list[int] = []
    # When they are sent in batches of 10
    publish.send_all(runtime, batch, batch_size=10, progress=counted.append)
    # Then progress counts each batch, and the queue holds them in submission order
    assert counted == [10, 10, 5]
    assert _queued_ids(runtime, batch[0].queue) == [record.id for record in batch]


def _queued_ids(runtime, queue: str) -> list[str]:
    ids = []
    with runtime.celery.connection_for_write() as conn:
        while (message := conn.default_channel.basic_get(queue, no_ack=True)) is not None:
            ids.append(message.headers["id"])
    return ids
