"""Unit tests for the bulk path's pure parts: broker URL matching, the kwargsrepr header,
task ids and record fields, what a failed batch counts as queued, and submitted_at stamps."""

from __future__ import annotations

import json
import uuid

import pytest
from celery.utils.saferepr import saferepr

from taskq import bulk
from taskq.broker import publish
from taskq.broker.messages import RedisEncoder, Template, kwargs_repr, redis_payload
from taskq.broker.publish import base
from taskq.errors import NotQueued
from taskq.records import TaskRecord, hash_pairs, new_id, to_hash
from taskq.urls import redis_client_url

TEMPLATE = Template(exchange="", routing_key="q", priority=0, headers={},
                    properties={}, embed={}, serializer="json", declare=(),
                    kwargsrepr_maxsize=1024)


@pytest.mark.parametrize(("kombu_url", "redis_url"), [
    ("redis+socket:///tmp/h/redis.sock", "unix:///tmp/h/redis.sock?db=0"),
    ("redis+socket:///tmp/h/redis.sock?virtual_host=2", "unix:///tmp/h/redis.sock?db=2"),
    ("unix:///tmp/h/redis.sock", "unix:///tmp/h/redis.sock?db=0"),
    ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379/0"),
    ("redis://:pa/ss@host:6379/3", "redis://:pa/ss@host:6379/3"),
    ("amqp://guest:guest@host//", None),
    ("sentinel://host:26379", None),
])
def test_broker_urls_map_to_the_redis_client_url_they_share_with_records(kombu_url,
                                                                         redis_url):
    assert redis_client_url(kombu_url) == redis_url


def test_an_embedded_broker_and_its_backend_are_recognised_as_one_database():
    assert redis_client_url("redis+socket:///tmp/h/redis.sock") == \
        redis_client_url("unix:///tmp/h/redis.sock")


@pytest.mark.parametrize("kwargs", [
    {}, {"data": [1, 2.5, None, True, "s"]}, {"to": "a@example.com", "subject": "héllo"},
    {"data": "x" * 1100}, {"subject": "it's"}, {"body": "a\nb"}, {"path": "a\\b"},
    {"data": list(range(100))}, {"data": [[1, ["deep"]]]}, {"o": {"a": {"b": {"c": 1}}}},
])
def test_kwargsrepr_is_what_celery_writes(kwargs):
    assert kwargs_repr(TEMPLATE, kwargs) == saferepr(kwargs, 1024)


def test_a_new_task_id_is_a_random_version_4_uuid_in_its_usual_text_form():
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for task_id in ids:
        parsed = uuid.UUID(task_id)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == task_id


def test_a_records_hash_pairs_are_its_non_empty_fields_as_to_hash_encodes_them():
    record = TaskRecord(id=new_id(), type="data", priority="high", queue="q",
                        state="QUEUED", params={"data": [1, "é"]}, submitted_at=1.25,
                        progress={"done": 1, "total": 2})
    pairs = hash_pairs(record)
    fields = {name: value for name, value in record.to_dict().items() if value is not None}
    assert dict(zip(pairs[::2], pairs[1::2], strict=True)) == to_hash(fields)
    assert TaskRecord.from_hash(dict(zip(pairs[::2], pairs[1::2], strict=True))) == record


@pytest.mark.parametrize("kwargs", [
    {}, {"data": [1, 2.5, None, True]}, {"subject": "héllo \"quoted\" 😀", "body": "a\nb"},
    {"path": "a\\b"}, {"data": "x" * 1100},
])
def test_a_redis_encoder_writes_what_redis_payload_writes(kwargs):
    template = Template(exchange="", routing_key="q.normal", priority=0,
                        headers={"lang": "py", "task": "t", "id": None, "eta": None,
                                 "timelimit": [None, None], "root_id": None,
                                 "origin": "gen1@host", "stamps": {}},
                        properties={"delivery_mode": 2, "reply_to": "r"},
                        embed={"callbacks": None}, serializer="json", declare=(),
                        kwargsrepr_maxsize=1024)
    encoder = RedisEncoder(template)
    assert encoder.reproduces("an-id", kwargs)
    encoded, whole = (json.loads(text) for text in (encoder.encode("an-id", kwargs),
                                                    redis_payload(template, "an-id", kwargs)))
    assert encoded["properties"].pop("delivery_tag") != whole["properties"].pop("delivery_tag")
    assert encoded == whole


def _records(n: int) -> list[TaskRecord]:
    return [TaskRecord(id=new_id(), type="data", priority="normal", queue="q", state="QUEUED",
                       submitted_at=1.0) for _ in range(n)]


class _FailingSecondBatch(base.Publisher):
    """A publisher whose broker takes every batch but the second, of which it takes the
    first 30 tasks."""

    def __init__(self) -> None:
        super().__init__(runtime=None)
        self.batches = 0

    def build(self, batch):
        self.batches += 1
        if self.batches == 2:
            def fail() -> None:
                raise base.Unsent("broker unreachable at amqp://h//", batch[30:])
            return fail
        return lambda: None


def test_a_failed_batch_counts_what_was_queued_and_names_its_unsent_tasks_and_all_after(
        monkeypatch):
    # Given 250 tasks, and a broker that takes 30 of the second batch of 100 and then fails
    tasks = _records(250)
    monkeypatch.setattr(publish, "publisher", lambda runtime: _FailingSecondBatch())
    counted: list[int] = []
    # When they are sent in batches of 100
    with pytest.raises(NotQueued) as raised:
        publish.send_all(None, tasks, batch_size=100, progress=counted.append)
    # Then the first batch and 30 of the second count as queued, the rest not
    assert raised.value.queued == 130
    assert raised.value.unqueued == [task.id for task in tasks[130:]]
    assert raised.value.message == ("broker unreachable at amqp://h//; "
                                    "130 of 250 tasks queued, 120 not queued")
    assert counted == [100]


def test_when_a_batchs_first_step_fails_the_tasks_of_its_later_steps_are_unsent_too():
    fast, slow = _records(3), _records(2)

    def fail() -> None:
        raise base.Unsent("refused", fast[1:])

    with pytest.raises(base.Unsent) as raised:
        base._run_each([(fast, fail), (slow, lambda: None)])
    assert raised.value.records == fast[1:] + slow


def test_a_single_task_not_queued_says_so_in_a_word():
    error = NotQueued("broker unreachable at amqp://h//", 0, ["an-id"])
    assert error.message == "broker unreachable at amqp://h//; the task was not queued"
    assert error.to_dict()["not_queued"] == ["an-id"]


@pytest.mark.parametrize(("numbers", "text"), [
    ([], ""), ([7], "line 7"), ([3, 4, 5, 9], "lines 3-5, 9"),
    (list(range(1, 40, 2)), "lines 1, 3, 5, 7, 9, 11, 13, 15, 17, 19 and 10 more ranges"),
])
def test_the_lines_not_queued_are_named_as_ranges(numbers, text):
    assert bulk._ranges(numbers) == text


def test_submitted_at_is_stamped_in_order_across_batches_and_eta_keeps_its_delay():
    # Given two batches prepared a while ago, one task delayed by 30 s
    sender = base.Publisher(runtime=None)
    first, second = _records(3), _records(2)
    second[1].eta = second[1].submitted_at + 30
    # When they are stamped as they are written, one after the other
    sender._stamp(first)
    sender._stamp(second)
    # Then the stamps are now, strictly in order, and the delayed task is still due 30 s after
    stamps = [record.submitted_at for record in first + second]
    assert stamps == sorted(set(stamps)) and stamps[0] > 1.0
    assert second[1].eta - second[1].submitted_at == pytest.approx(30)
