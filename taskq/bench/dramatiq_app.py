"""The Dramatiq app the benchmark compares with: its Redis or RabbitMQ broker, the Redis
results middleware storing every result, everything else as shipped (checked with Dramatiq
2.2). `taskq bench` writes a module that calls `make_broker` for `dramatiq MODULE` to load."""

from __future__ import annotations

from typing import Any

ACTOR = "noop"
RESULT_TTL_MS = 600_000  # the results middleware's default, said out loud


def make_broker(broker_url: str, results_url: str, namespace: str) -> Any:
    """A broker with the no-op actor on queue `namespace`; results in `results_url`."""
    import dramatiq
    from dramatiq.results import Results
    from dramatiq.results.backends.redis import RedisBackend

    from taskq.bench import jobs

    if broker_url.startswith("amqp"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker: Any = RabbitmqBroker(url=broker_url)
    else:
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=broker_url, namespace=namespace)
    # Readable result keys (namespace:queue:actor:id), so that the benchmark can remove them.
    backend = RedisBackend(url=results_url, namespace=f"{namespace}-results",
                           use_namespace_prefix_keys=True)
    broker.add_middleware(Results(backend=backend, store_results=True,
                                  result_ttl=RESULT_TTL_MS))
    dramatiq.actor(broker=broker, actor_name=ACTOR, queue_name=namespace)(jobs.stamp)
    return broker


MODULE = """\
# Written by taskq bench: the Dramatiq worker's broker.
from taskq.bench.dramatiq_app import make_broker

broker = make_broker({broker_url!r}, {results_url!r}, {namespace!r})
"""
