"""Prometheus metrics, read from the broker and the records at scrape time (bounded cost)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from taskq import records
from taskq.store import flow as flow_figures
from taskq.store import rate_limits, text
from taskq.store.workers import BUSY, ONLINE, list_workers

if TYPE_CHECKING:
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

SAMPLE = 5000  # most recent tasks read per scrape: keeps a scrape to a few round trips
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
FIELDS = ("type", "state", "submitted_at", "eta", "started_at", "finished_at", "attempts")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def registry_for(runtime: Runtime) -> CollectorRegistry:
    """A registry of its own per app: nothing touches prometheus_client's global default."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TaskqCollector(runtime))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


@dataclass
class Sample:
    """What the most recent records say: timings and retries."""

    retries: Counter[str] = field(default_factory=Counter)
    run: dict[str, list[float]] = field(default_factory=dict)
    wait: dict[str, list[float]] = field(default_factory=dict)


class TaskqCollector(Collector):
    """Collects every taskq metric on each scrape, from the broker and the record store."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable[Metric]:
        yield _queue_depth(self.runtime)
        yield from _counts(self.runtime)
        yield from _sample_metrics(read_sample(self.runtime))
        yield _workers_online(self.runtime)
        yield from _rate_limits(self.runtime)
        yield from _flow(flow_figures.read(self.runtime))


def _queue_depth(runtime: Runtime) -> Metric:
    from taskq.broker.queues import queue_stats

    family = GaugeMetricFamily("taskq_queue_depth", "Messages waiting in a queue",
                               labels=["queue", "type", "priority"])
    for queue in queue_stats(runtime, oldest=False):  # the depth is all a scrape needs
        family.add_metric([queue.name, queue.type, queue.priority], queue.depth)
    return family


def read_sample(runtime: Runtime) -> Sample:
    """Read the SAMPLE most recent records in two round trips."""
    store = runtime.store
    sample = Sample()
    with store.reachable():
        ids = store.client.zrevrange(f"{store.prefix}:tasks", 0, SAMPLE - 1)
        pipe = store.client.pipeline(transaction=False)
        for task_id in ids:
            pipe.hmget(store.key(text(task_id)), FIELDS)
        rows = pipe.execute()
    for row in rows:
        if row[0] is not None:
            _add(sample, dict(zip(FIELDS, (text(v) if v else None for v in row),
                                  strict=True)))
    return sample


def _add(sample: Sample, row: dict[str, str | None]) -> None:
    type_name, state = row["type"] or "", row["state"] or ""
    sample.retries[type_name] += max(records.read_count(row["attempts"]) - 1, 0)
    started = records.read_time(row["started_at"])
    finished = records.read_time(row["finished_at"])
    ready = records.read_time(row["eta"]) or records.read_time(row["submitted_at"])
    if started is not None and ready is not None:
        sample.wait.setdefault(type_name, []).append(max(started - ready, 0.0))
    if state in records.FINAL_STATES and started is not None and finished is not None:
        sample.run.setdefault(type_name, []).append(max(finished - started, 0.0))


def _counts(runtime: Runtime) -> Iterator[Metric]:
    """Exact counts from the record indexes: one ZCARD per (state, type, priority) and per
    dead-letter set, all in one round trip."""
    settings, store = runtime.settings, runtime.store
    cells = list(itertools.product(records.STATES, settings.task_types, settings.priorities))
    pipe = store.client.pipeline(transaction=False)
    for state, type_name, priority in cells:
        pipe.zcard(store.cell_key(state, type_name, priority))
    for type_name in settings.task_types:
        pipe.zcard(store.dlq_key(type_name))
    pipe.hget(store.stats_key, "dropped")
    with store.reachable():
        *found, dropped = [int(n or 0) for n in pipe.execute()]
    by_type_state: Counter[tuple[str, str]] = Counter()
    for (state, type_name, _), count in zip(cells, found, strict=False):
        by_type_state[(type_name, state)] += count
    tasks = GaugeMetricFamily("taskq_tasks", "Tasks by type and state (records kept)",
                              labels=["type", "state"])
    for (type_name, state), count in sorted(by_type_state.items()):
        tasks.add_metric([type_name, state], count)
    yield tasks
    dead = GaugeMetricFamily("taskq_dead_letters", "Dead letters: tasks that failed for good "
                             "and were not retried or purged", labels=["type"])
    for type_name, count in zip(settings.task_types, found[len(cells):], strict=True):
        dead.add_metric([type_name], count)
    yield dead
    yield CounterMetricFamily("taskq_dropped_messages", "Messages workers dropped without "
                              "running them because their task had no record", value=dropped)


def _sample_metrics(sample: Sample) -> Iterator[Metric]:
    retries = GaugeMetricFamily("taskq_task_retries", "Retried attempts (attempts after the "
                                f"first), among the {SAMPLE} most recent tasks", labels=["type"])
    for type_name, count in sorted(sample.retries.items()):
        retries.add_metric([type_name], count)
    yield retries
    yield _histogram("taskq_task_run_seconds", "Run time of finished tasks (last attempt)",
                     sample.run)
    yield _histogram("taskq_task_queue_wait_seconds",
                     "Time from due (submitted, or its ETA) to started", sample.wait)


def _histogram(name: str, doc: str, values: dict[str, list[float]]) -> Metric:
    family = HistogramMetricFamily(name, f"{doc}, among the {SAMPLE} most recent tasks",
                                   labels=["type"])
    for type_name, observed in sorted(values.items()):
        buckets = [(_bound(b), sum(1 for v in observed if v <= b)) for b in BUCKETS]
        buckets.append(("+Inf", len(observed)))
        family.add_metric([type_name], buckets, sum(observed))
    return family


def _bound(value: float) -> str:
    return repr(float(value))


def _workers_online(runtime: Runtime) -> Metric:
    """Workers whose heartbeat is fresh: one that died stops counting within 2 intervals."""
    family = GaugeMetricFamily("taskq_workers_online", "Workers with a fresh heartbeat",
                               labels=["profile"])
    online: Counter[str] = Counter({p: 0 for p in runtime.settings.workers})
    for worker in list_workers(runtime, current=False):  # a gone worker's profile reads 0
        online[worker.profile] += worker.state in (ONLINE, BUSY)
    for profile, count in sorted(online.items()):
        family.add_metric([profile], count)
    return family


def _rate_limits(runtime: Runtime) -> Iterator[Metric]:
    """Each rate-limited type: its limit, its rate over the last WINDOW seconds, whether it
    is at its limit now, and how often a task taken over it went back to its queue."""
    usage = rate_limits.read_usage(runtime) if rate_limits.limits_of(runtime.settings) else {}
    window = rate_limits.WINDOW
    families = (
        (GaugeMetricFamily("taskq_rate_limit_per_second", "Global rate limit of a type, "
                           "tasks a second", labels=["type"]), lambda u: u.limit.rate),
        (GaugeMetricFamily("taskq_rate_per_second", f"Tasks of a rate-limited type started "
                           f"a second, over the last {window} s", labels=["type"]),
         lambda u: u.current),
        (GaugeMetricFamily("taskq_rate_limited", "1 while a type has no token: its tasks "
                           "wait in their queues", labels=["type"]), lambda u: int(u.limited)),
        (CounterMetricFamily("taskq_rate_held_back", "Tasks taken over their type's rate "
                             "limit and put back at the head of their queue",
                             labels=["type"]), lambda u: u.held_back),
    )
    for family, value in families:
        for type_name, found in sorted(usage.items()):
            family.add_metric([type_name], value(found))
        yield family


def _flow(flow: flow_figures.FlowFigures) -> Iterator[Metric]:
    """Dependencies, delayed tasks, idempotency keys and schedules (one round trip)."""
    yield GaugeMetricFamily("taskq_tasks_waiting_for_dependencies", "Tasks WAITING for the "
                            "tasks they were submitted --after", value=flow.waiting)
    yield GaugeMetricFamily("taskq_delayed_tasks", "Delayed (SCHEDULED) tasks waiting in the "
                            "schedule to be moved to their queues", value=flow.delayed)
    yield CounterMetricFamily("taskq_deduplicated", "Submits whose idempotency key named an "
                              "earlier task: nothing queued", value=flow.deduplicated)
    yield GaugeMetricFamily("taskq_schedules", "Schedules (periodic tasks) stored",
                            value=flow.schedules)
    yield GaugeMetricFamily("taskq_schedules_paused", "Schedules paused", value=flow.paused)
