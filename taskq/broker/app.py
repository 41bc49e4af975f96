"""The Celery app factory: broker, queues, acks and prefetch that keep priority strict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery import Celery
from kombu import Queue

from taskq import topology
from taskq.broker import recovery
from taskq.broker.fetch import PriorityFetch
from taskq.broker.poison_hooks import DecodeGuard, HandOverGuard
from taskq.broker.running import RunLeases
from taskq.config import Settings
from taskq.config.schema import MAX_SECONDS

if TYPE_CHECKING:
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

HEARTBEAT = 10  # seconds between a RabbitMQ worker connection's heartbeats (see below)


def celery_config(settings: Settings, broker_url: str) -> dict[str, Any]:
    """Celery settings; each one here is a decision, explained where it is not obvious."""
    queues = [Queue(name, routing_key=name, durable=True)
              for name in topology.all_queues(settings)]
    return {
        "broker_url": broker_url,
        # Results and states live in taskq's own records (store.py), written once per
        # transition; Celery's result backend would duplicate them and slow every send.
        "result_backend": None,
        "task_ignore_result": True,
        "task_queues": queues,
        "task_default_queue": queues[0].name,
        "task_create_missing_queues": False,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # Strict priority: a worker holds no message it is not running (prefetch 1 per
        # process, ack after the run), and it fetches its queues in priority order
        # (taskq/broker/fetch/).
        # Nothing lost: acked after the run, requeued if the process running it dies.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # A delayed task falling due goes back to its queue, so the fetch keeps priority
        # strict; a worker holds at most HOLD_AHEAD delayed or rate-limited messages.
        "worker_consumer": "taskq.broker.holding:HoldingConsumer",
        "broker_transport_options": {
            "queue_order_strategy": "priority",
            # Redis: above the longest wait a worker holds (a retry's backoff; delayed tasks
            # wait in taskq/store/delayed.py) plus run, so a retried or long task is never handed
            # out twice; a dead worker's messages come back through the leases of
            # taskq/broker/recovery.py within seconds instead.
            "visibility_timeout": recovery.visibility_timeout(settings, MAX_SECONDS),
            # A producer's first connection (kombu's default_channel) gives up after ~1.5 s
            # instead of retrying for good: a submit to a broker that is down fails fast.
            # Workers reconnect with their own, unbounded retries (broker_connection_retry).
            "max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1,
        },
        # Durable queues (above) and persistent messages survive a broker restart.
        "task_default_delivery_mode": "persistent",
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 3.0,
        # RabbitMQ: a worker's connection heartbeats every few seconds, so the broker gives
        # back the messages of a worker that died or was cut off within about 30 s (with
        # Celery's 120 s, the server's 60 s was used: over 110 s). A worker whose event loop
        # stalls that long is dropped too, and its running tasks are not run twice for it
        # (their run leases, taskq/broker/running.py). `?heartbeat=N` in the broker URL
        # overrides it.
        "broker_heartbeat": HEARTBEAT,
        # Fail a publish within a few seconds when the broker is down, never hang.
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0,
                                      "interval_step": 0.5, "interval_max": 1},
        # Task events (what Flower shows) cost about a third of a worker's throughput, so
        # they start off; Flower switches them on in running workers (every 5 s), and
        # `taskq worker --events` starts with them on.
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "enable_utc": True,
    }


def create_app(settings: Settings, broker_url: str, runtime: Runtime | None = None,
               app_class: type[Celery] = Celery) -> Celery:
    """Build a Celery app for `settings`; does no I/O, so it can be built twice in a test.
    `app_class`: the runtime's is taskq.celery_calls.TaskqCelery, whose send_task submits."""
    from taskq.broker.tasks import register_tasks

    # The task consumer fetches by priority instead of subscribing (taskq/broker/fetch/); on
    # Redis brokers, unacked messages are leased (taskq/broker/recovery.py).
    app = app_class("taskq", set_as_current=False, amqp="taskq.broker.fetch:PriorityAMQP")
    app.conf.update(celery_config(settings, broker_url))
    app.steps["consumer"].add(PriorityFetch)
    app.steps["consumer"].add(recovery.Leases)
    app.steps["consumer"].add(RunLeases)  # one running attempt per task (taskq/broker/running.py)
    # A message that cannot be decoded or handed to a process fails its task (poison.py).
    app.steps["worker"].add(HandOverGuard)
    app.steps["consumer"].add(DecodeGuard)
    app.taskq_settings = settings
    app.taskq_runtime = runtime
    register_tasks(app, settings)
    return app
