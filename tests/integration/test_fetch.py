"""Fetching on Redis brokers: a message is never only in a worker's memory."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest
import redis
from kombu import Consumer, Queue
from relay import Relay

from taskq import topology
from taskq.broker import doorbell, recovery
from taskq.broker.app import create_app
from taskq.broker.fetch import redis as fetch_redis

pytestmark = pytest.mark.integration


def held_by(channel, prefix: str) -> list[bytes]:
    """Delivery tags of the messages of this deployment recorded as unacknowledged."""
    held = channel.client.hgetall(channel.unacked_key)
    return [tag for tag, raw in held.items() if recovery._routing_key(raw).startswith(prefix)]


@pytest.mark.brokers("embedded", "redis")
def test_a_message_popped_by_a_worker_that_dies_at_once_goes_back_to_its_queue(deployment):
    # Given a task queued and a worker's channel on the broker
    record = deployment.submit("data", data=[1, 2, 3])
    app = deployment.runtime.celery
    queue = topology.queue_name(deployment.runtime.settings, record.type, record.priority)
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        # When the worker pops it and dies before doing anything else with it
        assert fetch_redis.pop_unacked(channel, fetch_redis.pop_keys(channel, [queue])) is not None
        client = channel.client
        # Then the message is out of its queue but recorded as held, in the same step
        assert client.llen(queue) == 0
        prefix = deployment.runtime.settings.key_prefix
        tags = held_by(channel, prefix)
        assert len(tags) == 1
        assert client.zscore(channel.unacked_index_key, tags[0]) is not None
        # And once its lease runs out, it is back in its queue
        assert recovery.restore_expired(channel, prefix, lease=0) == 1
        assert client.llen(queue) == 1
    # And a worker runs it to the end
    deployment.start_worker()
    assert deployment.wait(record.id).state == "SUCCESS"


@pytest.mark.brokers("embedded", "redis")
def test_the_acks_held_back_are_removed_in_the_same_step_as_the_next_pop(deployment):
    # Given two tasks queued, and a worker's channel that has popped the first
    first, second = (deployment.submit("data", data=[n]) for n in (1, 2))
    app = deployment.runtime.celery
    queue = topology.queue_name(deployment.runtime.settings, first.type, first.priority)
    prefix = deployment.runtime.settings.key_prefix
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        keys = fetch_redis.pop_keys(channel, [queue])
        assert fetch_redis.pop_unacked(channel, keys) is not None
        [acked] = held_by(channel, prefix)
        # When its task is done and the next pop carries its ack
        assert fetch_redis.pop_unacked(channel, keys, [acked.decode()]) is not None
        # Then only the second is held: the first's entries are gone from hash and index
        held = held_by(channel, prefix)
        assert len(held) == 1 and held != [acked]
        assert channel.client.zscore(channel.unacked_index_key, acked) is None
        assert channel.client.llen(queue) == 0
        # (nothing of this test's is left held for the fixture's cleanup to restore)
        fetch_redis.pop_unacked(channel, keys, [held[0].decode()])


@pytest.mark.brokers("embedded", "redis")
def test_an_empty_set_of_queues_yields_nothing_and_holds_nothing(deployment):
    app = deployment.runtime.celery
    queue = topology.queue_name(deployment.runtime.settings, "data_processing", "high")
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        assert fetch_redis.pop_unacked(channel, fetch_redis.pop_keys(channel, [queue])) is None
        assert held_by(channel, deployment.runtime.settings.key_prefix) == []


@pytest.mark.brokers
def test_submitting_rings_the_doorbell_that_wakes_idle_workers(deployment):
    # Given a queue bound to the doorbell, as each worker binds one
    app = deployment.runtime.celery
    rings = []
    exchange = doorbell.exchange(deployment.runtime.settings)
    queue = Queue(f"{exchange.name}.test", exchange, durable=False, exclusive=True,
                  auto_delete=True)
    with app.connection_for_read() as connection:
        with Consumer(connection.channel(), queues=[queue], no_ack=True,
                      on_message=rings.append):
            with contextlib.suppress(socket.timeout):
                connection.drain_events(timeout=0.3)  # subscribed before anything is sent
            # When a task is submitted
            deployment.submit("data", data=[1])
            connection.drain_events(timeout=5)
    # Then the doorbell rang
    assert len(rings) == 1


@pytest.mark.brokers("redis")
def test_an_ack_held_for_a_pop_that_fails_goes_with_the_next_pop(deployment):
    # Given two tasks queued, and a worker's task consumer whose connection to Redis goes
    # through a relay, that has taken the first and finished it (its ack held for the next pop)
    first, second = (deployment.submit("data", data=[n]) for n in (1, 2))
    settings = deployment.runtime.settings
    prefix = settings.key_prefix
    queue = topology.queue_name(settings, first.type, first.priority)
    url = deployment.env["TASKQ_BROKER_URL"]
    host, port = url.split("//")[1].split("/")[0].split(":")
    taken = []
    with Relay((host, int(port))) as relay:
        app = create_app(settings, url.replace(f"{host}:{port}", f"127.0.0.1:{relay.port}"))
        with app.connection_for_read() as connection:
            channel = connection.default_channel
            consumer = fetch_redis.RedisPollingConsumer(channel, queues=[Queue(queue)],
                                                  accept=["json"], on_message=taken.append)
            assert consumer.fetch()
            [acked] = held_by(channel, prefix)
            taken[0].ack()
            # When the connection is cut at the next pop
            relay.cut()
            with pytest.raises(redis.ConnectionError):
                consumer.fetch()
            # Then the ack is not lost: once the connection is back, the next pop carries it
            relay.restore()
            assert consumer.fetch()
            held = held_by(channel, prefix)
            assert len(held) == 1 and held != [acked]
            taken[1].ack()
            consumer.flush_acks()
            assert held_by(channel, prefix) == []


@pytest.mark.brokers("embedded", "redis")
def test_leases_go_by_the_redis_servers_clock_not_by_each_hosts(deployment, monkeypatch):
    # Given a task queued, and a worker's channel on the broker
    record = deployment.submit("data", data=[1])
    app = deployment.runtime.celery
    prefix = deployment.runtime.settings.key_prefix
    queue = topology.queue_name(deployment.runtime.settings, record.type, record.priority)
    real = time.time
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        keys = fetch_redis.pop_keys(channel, [queue])
        # When a worker whose clock is 30 s behind takes it and renews its lease
        monkeypatch.setattr(time, "time", lambda: real() - 30)
        assert fetch_redis.pop_unacked(channel, keys) is not None
        [tag] = held_by(channel, prefix)
        recovery.renew(channel)
        # Then a scan by a host whose clock is 30 s ahead does not find its lease run out
        monkeypatch.setattr(time, "time", lambda: real() + 30)
        assert recovery.restore_expired(channel, prefix) == 0
        assert held_by(channel, prefix) == [tag]
        monkeypatch.undo()
        # And the lease is stamped by the server's clock
        score = channel.client.zscore(channel.unacked_index_key, tag)
        assert abs(score - recovery.server_time(channel.client)) < 5
        fetch_redis.pop_unacked(channel, keys, [tag.decode()])  # nothing left held
