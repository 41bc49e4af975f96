"""Unit tests for the bulk path's pure parts: broker URL matching, the kwargsrepr header,
task ids and record fields."""

from __future__ import annotations

import json
import uuid

import pytest
from celery.utils.saferepr import saferepr

from taskq.messages import RedisEncoder, Template, kwargs_repr, redis_payload
from taskq.records import TaskRecord, hash_pairs, new_id, to_hash
from taskq.runtime import redis_client_url

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
