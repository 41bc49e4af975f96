"""Every internal of celery, kombu, py-amqp and redis-py that taskq relies on still has the
shape taskq uses. pyproject.toml caps these libraries at the minor versions the suite passed
on; before lifting a cap, run this module on the new version: a failure names the internal
and the taskq module that uses it. (The AMQP frames taskq writes by hand are checked byte for
byte against py-amqp's frame writer in test_amqp_frames.py.)"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import amqp
import billiard
import celery
import celery.worker.strategy
import kombu
import redis
from amqp import method_framing
from amqp.abstract_channel import AbstractChannel
from celery.app.amqp import AMQP
from celery.concurrency import asynpool, prefork
from celery.worker import state
from celery.worker.request import Request as CeleryRequest
from kombu import Connection
from kombu.message import Message as KombuMessage
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.transport.pyamqp import Channel as PyamqpChannel
from redis.commands.core import Script

from taskq import config
from taskq.broker import messages
from taskq.broker.app import create_app
from taskq.broker.queues import RedisDepths
from taskq.urls import redis_client


def relies_on(holds: bool, internal: str, used_by: str) -> None:
    assert holds, (f"{internal} changed shape (taskq uses it in {used_by}): adapt taskq to "
                   f"the new version before moving its cap in pyproject.toml")


def parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_versions_checked_are_those_installed():
    # Given the caps in pyproject.toml, this module was written against these minors
    for module, minor in ((celery, "5.7"), (kombu, "5.7"), (billiard, "4.3"), (amqp, "5.4"),
                          (redis, "8.1")):
        version = getattr(module, "__version__", "")
        relies_on(version.startswith(minor + "."), f"{module.__name__} {minor}.x (found "
                  f"{version})", "pyproject.toml's caps")


# kombu: the Redis transport's unacked bookkeeping (taskq/broker/fetch/redis.py,
# taskq/broker/recovery.py)

class FakePipe:
    """Records the commands a kombu QoS sends; answers hget from `stored`."""

    def __init__(self, stored: dict[str, bytes] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.stored = stored or {}

    def __getattr__(self, name: str) -> Any:
        def command(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, *args, *kwargs.values()))
            if name == "hget":
                return self.stored.get(args[1])
            return self
        return command

    def transaction(self, func: Any, *watched: Any) -> None:
        func(self)

    def pipeline(self) -> FakePipe:
        return self


class FakeRedisChannel:
    do_restore = False  # nothing to put back when the test process exits
    unacked_key = kombu_redis.Channel.unacked_key
    unacked_index_key = kombu_redis.Channel.unacked_index_key
    unacked_mutex_key = "unacked_mutex"
    unacked_mutex_expire = 300
    visibility_timeout = 3600

    def __init__(self, pipe: FakePipe) -> None:
        self.pipe = pipe
        self.restored: list[tuple[Any, ...]] = []

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[FakePipe]:
        yield self.pipe

    def _do_restore_message(self, payload: Any, exchange: str, routing_key: str, pipe: Any,
                            leftmost: bool = False) -> None:
        self.restored.append((payload, exchange, routing_key, leftmost))


def test_kombu_records_a_held_message_as_the_fetch_script_does():
    # taskq/broker/fetch/redis.py's _POP writes what kombu's Redis QoS.append writes, in one
    # atomic step
    pipe = FakePipe()
    qos = kombu_redis.QoS(FakeRedisChannel(pipe), prefetch_count=1)
    message = SimpleNamespace(_raw={"body": "b"}, delivery_info={
        "exchange": "ex", "routing_key": "tq.data.high"})
    before = time.time()
    qos.append(message, "tag-1")
    written = {call[0]: call[1:] for call in pipe.calls}
    relies_on(written.get("hset") == ("unacked", "tag-1", json.dumps(
        [{"body": "b"}, "ex", "tq.data.high"])), "kombu Redis QoS.append's unacked hash "
        "entry [payload, exchange, routing key]",
        "taskq/broker/fetch/redis.py (_POP), taskq/broker/recovery.py")
    index = written.get("zadd", ())
    relies_on(index[:1] == ("unacked_index",) and before <= index[1]["tag-1"] <= time.time(),
              "kombu Redis QoS.append's unacked_index score (the time taken)",
              "taskq/broker/fetch/redis.py (_POP), taskq/broker/recovery.py (leases)")
    relies_on(qos._delivered.get("tag-1") is message, "kombu QoS._delivered",
              "taskq/broker/recovery.py renew()")


def test_kombu_keeps_its_in_memory_part_of_a_held_message_where_taskq_updates_it():
    # fetch/redis.py calls the virtual QoS's own append and ack, the Redis writes being its own
    qos = virtual.QoS(SimpleNamespace(do_restore=False), prefetch_count=1)
    virtual.QoS.append(qos, "message", "tag-1")
    relies_on(list(qos._delivered) == ["tag-1"], "kombu virtual QoS.append/_delivered",
              "taskq/broker/fetch/redis.py RedisPollingConsumer._take")
    virtual.QoS.ack(qos, "tag-1")
    relies_on(qos.can_consume(), "kombu virtual QoS.ack freeing the prefetch slot",
              "taskq/broker/fetch/redis.py RedisPollingConsumer._ack_in_memory")


def test_kombu_restores_a_message_by_tag_and_drops_its_unacked_entries():
    stored = {"tag-1": json.dumps([{"body": "b"}, "ex", "tq.data.high"]).encode()}
    pipe = FakePipe(stored)
    channel = FakeRedisChannel(pipe)
    qos = kombu_redis.QoS(channel, prefetch_count=1)
    relies_on(parameters(qos.restore_by_tag)[:3] == ["tag", "client", "leftmost"],
              "kombu Redis QoS.restore_by_tag(tag, client, leftmost)",
              "taskq/broker/fetch/redis.py (reject), taskq/broker/recovery.py (_restore)")
    qos.restore_by_tag("tag-1", leftmost=False)
    names = [call[:3] for call in pipe.calls]
    relies_on(("zrem", "unacked_index", "tag-1") in names and ("hdel", "unacked", "tag-1")
              in names, "kombu restore_by_tag removing the unacked entries",
              "taskq/broker/fetch/redis.py RedisPollingConsumer.reject")
    relies_on(channel.restored == [({"body": "b"}, "ex", "tq.data.high", False)],
              "kombu restore_by_tag putting the message back",
              "taskq/broker/fetch/redis.py, recovery.py")


def test_kombu_names_a_queues_priority_lists_as_taskq_reads_them():
    channel = object.__new__(kombu_redis.Channel)
    depths = object.__new__(RedisDepths)
    depths.prefix, depths.sep, depths.steps = "", kombu_redis.Channel.sep, \
        kombu_redis.PRIORITY_STEPS
    relies_on(list(channel.priority_steps) == list(kombu_redis.PRIORITY_STEPS) and
              depths._keys("q") == [channel._q_for_pri("q", step)
                                    for step in channel.priority_steps],
              "kombu Redis Channel._q_for_pri/priority_steps/sep/PRIORITY_STEPS",
              "taskq/broker/fetch/redis.py pop_keys, taskq/broker/queues.py RedisDepths")
    relies_on(hasattr(kombu_redis.Channel, "client")
              and callable(kombu_redis.Channel.conn_or_acquire),
              "kombu Redis Channel.client and conn_or_acquire",
              "taskq/broker/fetch/redis.py, taskq/broker/recovery.py")


def test_kombu_reads_the_redis_message_taskq_publishes():
    # Given the message taskq's bulk path LPUSHes (messages.redis_payload)
    settings = config.load(env={})
    app = create_app(settings, "redis://127.0.0.1:1/0")
    queue = f"{settings.key_prefix}.data_processing.high"
    template = messages.capture(app, "taskq.data_processing", queue)
    payload = json.loads(messages.redis_payload(template, "id-1", {"data": "x"}))
    # When kombu's virtual transport reads it, as the fetch does (channel.Message)
    with Connection("memory://") as conn:
        message = conn.default_channel.Message(payload, channel=conn.default_channel)
        # Then it has the body, the routing and the tag a worker needs
        relies_on(message.decode() == [[], {"data": "x"}, template.embed] and
                  message.delivery_info["routing_key"] == queue and
                  message.delivery_tag == payload["properties"]["delivery_tag"],
                  "kombu's Redis message format (virtual Message)",
                  "taskq/broker/messages.py redis_payload, taskq/broker/fetch/redis.py")
    relies_on(message.headers["id"] == "id-1" and message.headers["task"] ==
              "taskq.data_processing", "celery's send_task headers, captured",
              "taskq/broker/messages.py capture")


def test_kombu_message_state_and_decode_errors_are_where_taskq_sets_and_reads_them():
    message = KombuMessage(body=b"{}", channel=None)
    message._state = "ACK"
    relies_on(message.acknowledged, "kombu Message._state 'ACK'",
              "taskq/broker/fetch/consumer.py acknowledge")
    message._state = "REJECTED"
    relies_on(message.acknowledged, "kombu Message._state 'REJECTED'",
              "taskq/broker/fetch/redis.py reject")
    try:
        raise ValueError("bad body")
    except ValueError:
        import sys

        message.errors.append(sys.exc_info())
    seen: list[Any] = []
    message._reraise_error(lambda m, exc: seen.append((m, exc)))
    relies_on(len(seen) == 1 and seen[0][0] is message and isinstance(seen[0][1], ValueError),
              "kombu Message.errors/_reraise_error(callback)",
              "taskq/broker/fetch/consumer.py deliver")


# py-amqp and kombu's pyamqp channel (taskq/broker/fetch/amqp.py, taskq/broker/amqp_frames.py,
# taskq/broker/publish/amqp.py)

def test_py_amqp_fills_a_get_ok_reply_as_the_batched_fetch_expects():
    relies_on("returns_tuple" in parameters(AbstractChannel.wait),
              "py-amqp Channel.wait(returns_tuple=)", "taskq/broker/fetch/amqp.py _get_each")
    msg = SimpleNamespace()
    found = amqp.Channel._on_get_ok(SimpleNamespace(), 7, False, "ex", "q", 3, msg)
    relies_on(found is msg and msg.delivery_info == {
        "delivery_tag": 7, "redelivered": False, "exchange": "ex", "routing_key": "q",
        "message_count": 3}, "py-amqp Channel._on_get_ok(delivery_tag, redelivered, "
        "exchange, routing_key, message_count, msg)", "taskq/broker/fetch/amqp.py _get_each")
    relies_on("self.callbacks = {}" in inspect.getsource(amqp.Channel.__init__),
              "py-amqp Channel.callbacks (consumer tag -> callback)",
              "taskq/broker/fetch/amqp.py Standby")


def test_py_amqp_counts_a_write_in_bytes_sent_as_taskqs_own_writes_do():
    connection = SimpleNamespace(frame_max=131072, bytes_sent=0)
    write = method_framing.frame_writer(connection, SimpleNamespace(write=lambda data: None))
    write(1, 1, amqp.spec.Basic.Ack, b"", None)
    relies_on(connection.bytes_sent == 1 and "bytes_sent" in inspect.getsource(
        amqp.Connection.heartbeat_tick), "py-amqp Connection.bytes_sent (heartbeats)",
        "taskq/broker/amqp_frames.py send")
    relies_on(callable(getattr(amqp.Message(b""), "_serialize_properties", None)) and all(
        len(p) == 2 for p in amqp.Message.PROPERTIES),
        "py-amqp Message._serialize_properties/PROPERTIES", "taskq/broker/amqp_frames.py")


def test_kombus_pyamqp_channel_prepares_and_converts_messages_as_taskq_calls_it():
    relies_on(parameters(PyamqpChannel.prepare_message)[:7] == [
        "self", "body", "priority", "content_type", "content_encoding", "headers",
        "properties"], "kombu pyamqp Channel.prepare_message argument order",
        "taskq/broker/publish/amqp.py AmqpPublisher")
    relies_on(callable(PyamqpChannel.message_to_python), "kombu pyamqp "
              "Channel.message_to_python", "taskq/broker/fetch/amqp.py")


# celery: the worker's state and pool (taskq/broker/fetch/__init__.py), its AMQP helper and
# current task

def test_celery_worker_state_and_pool_are_where_the_fetch_reads_them():
    class Request:  # what the worker reserves: weakly referenced, by id
        id = "id-1"

    request = Request()
    state.task_reserved(request)
    try:
        relies_on(request in state.reserved_requests, "celery.worker.state."
                  "reserved_requests (the requests taken)",
                  "taskq/broker/fetch/__init__.py _free_processes")
    finally:
        state.task_ready(request)
    relies_on(hasattr(state, "active_requests") and
              "task_accepted(self)" in inspect.getsource(CeleryRequest.on_accepted) and
              "self._message = message" in inspect.getsource(CeleryRequest.__init__) and
              isinstance(inspect.getattr_static(CeleryRequest, "message"), property),
              "celery.worker.state.active_requests (the requests a pool process accepted) and "
              "Request.message", "taskq/broker/holding.py handing_over")
    relies_on(isinstance(inspect.getattr_static(prefork.TaskPool, "num_processes"), property),
              "celery prefork TaskPool.num_processes",
              "taskq/broker/fetch/__init__.py _free_processes")
    relies_on("self._pool = " in inspect.getsource(prefork.TaskPool.on_start) and
              "self.outbound_buffer = " in inspect.getsource(asynpool.AsynPool.__init__),
              "celery TaskPool._pool and AsynPool.outbound_buffer",
              "taskq/broker/fetch/__init__.py _handing_over")


def test_celery_s_pool_flush_drops_the_handed_over_jobs_that_taskq_s_pool_keeps():
    flush = inspect.getsource(asynpool.AsynPool.flush)
    relies_on("if not job._accepted" in flush and "job.discard()" in flush,
              "celery AsynPool.flush (drops the jobs no process has accepted)",
              "taskq/broker/pool.py")
    relies_on(prefork.TaskPool.Pool is asynpool.AsynPool,
              "celery prefork TaskPool.Pool (the process pool it builds)", "taskq/broker/pool.py")
    pool = inspect.getsource(asynpool.AsynPool)
    relies_on(all(name in pool for name in ("job._write_to", "self._busy_workers",
                                             "inqW_fd", "_is_alive()")),
              "celery AsynPool's job._write_to, _busy_workers and process inqW_fd/_is_alive",
              "taskq/broker/pool.py")


def test_celery_hands_a_request_to_the_pool_where_the_poison_guard_wraps_it():
    from billiard.pool import ApplyResult
    from celery.worker import components
    from celery.worker.consumer.consumer import Consumer
    from celery.worker.worker import WorkController

    used_by = "taskq/broker/poison_hooks.py HandOverGuard"
    relies_on("self._quick_acquire(self._process_task, req)"
              in inspect.getsource(WorkController._process_task_sem),
              "WorkController._process_task_sem calling self._process_task", used_by)
    pool_create = inspect.getsource(components.Pool.create)
    relies_on("w.process_task = w._process_task" in pool_create
              and "w._quick_release = w.semaphore.release" in pool_create,
              "celery Pool step setting process_task and _quick_release", used_by)
    relies_on("cache[self._job] = self" in inspect.getsource(ApplyResult.__init__)
              and "self.correlation_id = " in inspect.getsource(ApplyResult.__init__)
              and "self._accepted = " in inspect.getsource(ApplyResult.__init__),
              "billiard ApplyResult in the pool's _cache, with correlation_id and _accepted",
              used_by)
    handler = inspect.getsource(Consumer.create_task_handler)
    for name in ("on_unknown_message", "on_unknown_task", "on_invalid_task"):
        relies_on(f"{name} = self.{name}" in handler, f"celery Consumer.{name} read when "
                  "the task handler is built", "taskq/broker/poison_hooks.py DecodeGuard")
    relies_on(parameters(Consumer.on_decode_error) == ["self", "message", "exc"],
              "celery Consumer.on_decode_error(message, exc)",
              "taskq/broker/poison_hooks.py DecodeGuard")


def test_kombu_gives_back_what_a_redis_channel_holds_through_the_method_taskq_wraps():
    used_by = "taskq/broker/recovery.py spare_running_at_close"
    relies_on("self.restore_unacked()" in inspect.getsource(
        virtual.QoS.restore_unacked_once), "kombu QoS.restore_unacked_once calling "
        "self.restore_unacked()", used_by)
    relies_on(parameters(kombu_redis.QoS.restore_unacked) == ["self", "client"] and
              "self._delivered" in inspect.getsource(kombu_redis.QoS.restore_unacked),
              "kombu Redis QoS.restore_unacked(client) over _delivered", used_by)
    relies_on("self.qos.restore_unacked_once()" in inspect.getsource(virtual.Channel.close)
              or "self._qos.restore_unacked_once()" in inspect.getsource(virtual.Channel.close),
              "kombu's virtual Channel.close giving back what it holds", used_by)


def test_celery_tells_a_request_of_its_time_limits_as_taskq_overrides_it():
    from celery.worker.request import Request

    used_by = "taskq/broker/time_limits.py"
    relies_on(parameters(Request.on_timeout) == ["self", "soft", "timeout"],
              "celery Request.on_timeout(soft, timeout)", used_by)
    relies_on(isinstance(inspect.getattr_static(Request, "request_dict"), property) and
              hasattr(state, "should_terminate"),
              "celery Request.request_dict and worker state.should_terminate", used_by)


def test_celery_holds_delayed_and_rate_limited_requests_where_taskq_counts_them():
    from celery.worker.consumer import Consumer
    from celery.worker.request import Request
    from kombu.utils.limits import TokenBucket

    used_by = "taskq/broker/holding.py"
    relies_on(hasattr(state, "scheduled_requests") and callable(state.task_ready),
              "celery.worker.state.scheduled_requests and task_ready", used_by)
    relies_on("self.task_buckets = " in inspect.getsource(Consumer.__init__) and
              len(TokenBucket(1).contents) == 0,
              "celery Consumer.task_buckets of kombu TokenBuckets with .contents", used_by)
    relies_on(parameters(Consumer.apply_eta_task) == ["self", "task"] and
              parameters(Consumer._limit_post_eta) == ["self", "request", "bucket", "tokens"],
              "celery Consumer.apply_eta_task(task) and _limit_post_eta(request, bucket, "
              "tokens)", used_by)
    source = inspect.getsource(celery.worker.strategy.default)
    relies_on("apply_eta_task = consumer.apply_eta_task" in source and
              "limit_post_eta = consumer._limit_post_eta" in source,
              "celery's default strategy calling the consumer's apply_eta_task", used_by)
    relies_on(all(isinstance(inspect.getattr_static(Request, name), property)
                  for name in ("eta", "message")), "celery Request.eta and .message", used_by)


def test_celery_builds_its_task_consumer_through_the_helper_taskq_replaces():
    relies_on(parameters(AMQP.TaskConsumer)[:4] == ["self", "channel", "queues", "accept"],
              "celery AMQP.TaskConsumer(channel, queues, accept)",
              "taskq/broker/fetch/__init__.py PriorityAMQP")
    from celery.worker.consumer.tasks import Tasks  # the step PriorityFetch requires

    relies_on(callable(Tasks), "celery.worker.consumer.tasks:Tasks",
              "taskq/broker/fetch/__init__.py")
    from celery import current_task

    relies_on(not current_task, "celery.current_task, a proxy that is false outside a task",
              "taskq/logs.py")


def test_celery_send_task_is_captured_without_io():
    app = create_app(config.load(env={}), "redis://127.0.0.1:1/0")
    template = messages.capture(app, "taskq.data_processing", "taskq.data_processing.low")
    relies_on(template.routing_key == "taskq.data_processing.low" and
              template.headers.get("task") == "taskq.data_processing" and
              template.serializer == "json" and template.kwargsrepr_maxsize > 0,
              "celery send_task's producer.publish(...) call and amqp.kwargsrepr_maxsize",
              "taskq/broker/messages.py capture")


# redis-py (taskq/broker/fetch/redis.py's script, taskq/urls.py's connection set-up)

def test_redis_py_runs_a_script_made_without_a_client_on_the_one_given():
    script = Script(None, b"return 1")  # type: ignore[arg-type]
    relies_on(len(script.sha) == 40 and parameters(script.__call__)[:3] == [
        "keys", "args", "client"], "redis-py Script(None, body) and __call__(keys, args, "
        "client)", "taskq/broker/fetch/redis.py _POP_SCRIPT")


def test_redis_py_takes_the_connection_set_up_taskq_gives_it():
    client = redis_client("redis://127.0.0.1:1/7")
    connection = client.connection_pool.make_connection()
    relies_on(client.connection_pool.connection_kwargs.get("db") == 7 and connection.db == 7,
              "redis-py connection_kwargs['db'] / Connection.db",
              "taskq/broker/publish/redis.py RedisPublisher, taskq/urls.py")
    relies_on(connection.redis_connect_func is not None and callable(connection.on_connect),
              "redis-py redis_connect_func and Connection.on_connect",
              "taskq/urls.py redis_client")
    client.close()


def test_celery_gives_a_request_s_dict_to_the_pool_and_its_failures_to_the_main_process():
    from celery.app import trace
    from celery.worker.request import Request

    used_by = "taskq/broker/delivery.py and taskq/broker/running.py"
    relies_on(parameters(Request.on_failure) == ["self", "exc_info", "send_failed_event",
                                                 "return_ok"] and
              "self._request_dict" in inspect.getsource(Request.execute_using_pool),
              "celery Request.on_failure(exc_info, ...) and the request dict sent to the pool",
              used_by)
    relies_on("request.update(" in inspect.getsource(trace.fast_trace_task) and
              "self._message = message" in inspect.getsource(Request.__init__) and
              "worker_pid" in inspect.getsource(Request.on_accepted),
              "celery's pool request from the request dict, Request._message and worker_pid",
              used_by)
    relies_on(hasattr(state, "active_requests") and hasattr(state, "reserved_requests"),
              "celery.worker.state.active_requests and reserved_requests", used_by)


def test_celery_s_event_loop_waits_for_a_first_frame_through_the_function_taskq_replaces():
    from celery.worker import loops

    relies_on("hub.call_soon(_quick_drain, connection)" in inspect.getsource(loops.asynloop)
              and "timeout" in inspect.signature(loops._quick_drain).parameters,
              "celery.worker.loops._quick_drain(connection, timeout), called by asynloop on "
              "RabbitMQ", "taskq/broker/fetch/__init__.py _no_first_wait")
