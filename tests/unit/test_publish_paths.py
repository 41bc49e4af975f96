"""Unit tests for the bulk path's pure parts: broker URL matching and the kwargsrepr header."""

from __future__ import annotations

import pytest
from celery.utils.saferepr import saferepr

from taskq.messages import Template, kwargs_repr
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
