"""Writes records and publishes their messages in batches; a task counts as queued once the
broker has confirmed its message, and a task the broker did not take keeps no record. One
publisher per runtime, for its broker: Redis (redis.py), RabbitMQ (amqp.py, confirms.py) or
any other through Celery (base.py)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from itertools import groupby
from typing import TYPE_CHECKING

from taskq.broker.publish.base import (
    CeleryPublisher,
    Publisher,
    Session,
    Unsent,
    broker_unavailable,
)
from taskq.errors import NotQueued
from taskq.store import delayed
from taskq.urls import redis_client_url

if TYPE_CHECKING:
    from taskq.records import TaskRecord
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

_publishers: weakref.WeakKeyDictionary[Runtime, Publisher] = weakref.WeakKeyDictionary()


def publisher(runtime: Runtime) -> Publisher:
    """The runtime's publisher, made once (it keeps the message templates it captured)."""
    found = _publishers.get(runtime)
    if found is None:
        found = _publishers[runtime] = _make(runtime)
    return found


def close(runtime: Runtime) -> None:
    """Close the connections `runtime` opened to publish and to read (the Python API's
    Client.close); what was never opened is left alone."""
    found = _publishers.pop(runtime, None)
    own = getattr(found, "client", None)
    made = vars(runtime)  # cached_property values
    if own is not None and own is not made.get("redis"):
        own.close()
    if "celery" in made:
        made["celery"].close()
    if "redis" in made:
        made["redis"].close()


def _make(runtime: Runtime) -> Publisher:
    from taskq.broker.publish.amqp import AmqpPublisher
    from taskq.broker.publish.redis import RedisPublisher

    url = runtime.broker_url
    if url.startswith(("amqp://", "amqps://", "pyamqp://")):
        return AmqpPublisher(runtime)
    redis_url = redis_client_url(url)
    if redis_url is None:
        return CeleryPublisher(runtime)
    return RedisPublisher(runtime, redis_url,
                          shared=redis_url == redis_client_url(runtime.backend_url))


def send_one(runtime: Runtime, batch: Sequence[TaskRecord]) -> None:
    """Record and publish `batch` as one batch; NotQueued if the broker did not take all of
    it (a submit's tasks)."""
    send_all(runtime, batch, batch_size=max(1, len(batch)))


def send_all(runtime: Runtime, tasks: Sequence[TaskRecord], batch_size: int = 500,
             progress: Callable[[int], None] | None = None) -> None:
    """Record and publish `tasks` in batches, in order; `progress(n)` once a batch of n is
    queued. While a batch is written (by one writer thread, waiting on the servers most of
    the time) the next is built; a failed write stops the rest, and NotQueued says how many
    tasks were queued and names the others (the broker's confirmed tasks stay queued)."""
    if any(task.eta is not None for task in tasks):
        # delayed tasks wait in the due set, not as messages (taskq/store/delayed.py)
        _send_runs(runtime, tasks, batch_size, progress)
        return
    if not tasks:
        return
    session = publisher(runtime).session()
    try:
        _send_batches(session, tasks, batch_size, progress)
    except Unsent as exc:
        unqueued = [record.id for record in [*exc.records, *tasks[exc.after:]]]
        raise NotQueued(exc.problem, len(tasks) - len(unqueued), unqueued) from None
    finally:
        session.close()


def _send_runs(runtime: Runtime, tasks: Sequence[TaskRecord], batch_size: int,
               progress: Callable[[int], None] | None) -> None:
    """Send runs of delayed and of other tasks in turn, in submission order (their
    submitted_at stamps follow it); NotQueued counts and names the tasks of every run."""
    runs = [list(run) for _, run in groupby(tasks, key=lambda task: task.eta is not None)]
    sent = 0
    for n, run in enumerate(runs):
        try:
            if run[0].eta is not None:
                enter_delayed(runtime, run, batch_size, progress)
            else:
                send_all(runtime, run, batch_size, progress)
        except NotQueued as exc:
            after = [task.id for later in runs[n + 1:] for task in later]
            raise NotQueued(exc.problem, sent + exc.queued, exc.unqueued + after) from None
        sent += len(run)


def _send_batches(session: Session, tasks: Sequence[TaskRecord], batch_size: int,
                  progress: Callable[[int], None] | None) -> None:
    def finished(sizes: list[int]) -> None:
        for size in sizes:
            if progress is not None:
                progress(size)

    if len(tasks) <= batch_size:  # nothing to overlap: no thread (the sidecar's single submit)
        finished(_step(session.build(tasks), len(tasks)))
        finished(_step(session.finish, len(tasks)))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskq-publish") as writer:
        writing: Future[list[int]] | None = None
        for start in range(0, len(tasks), batch_size):
            end = min(start + batch_size, len(tasks))
            write = session.build(tasks[start:end])
            if writing is not None:
                finished(writing.result())
            writing = writer.submit(_step, write, end)
        if writing is not None:
            finished(writing.result())
        finished(writer.submit(_step, session.finish, len(tasks)).result())


def _step(write: Callable[[], list[int]], end: int) -> list[int]:
    """Run a write step; Unsent from it learns that the tasks from `end` on were not sent."""
    try:
        return write()
    except Unsent as exc:
        exc.after = end
        raise


def enter_delayed(runtime: Runtime, tasks: Sequence[TaskRecord], batch_size: int,
              progress: Callable[[int], None] | None) -> None:
    """Write delayed tasks' records and due entries, a batch per round trip; no message is
    published until a task is due. NotQueued names the tasks not written when one fails."""
    _reach_broker(runtime)
    sender, store = publisher(runtime), runtime.store
    for start in range(0, len(tasks), batch_size):
        batch = tasks[start:start + batch_size]
        try:
            sender.write_records(batch, also=partial(delayed.add, store, batch))
        except Unsent as exc:
            raise NotQueued(exc.problem, start, [r.id for r in tasks[start:]]) from None
        if progress is not None:
            progress(len(batch))


_reached: weakref.WeakSet[Runtime] = weakref.WeakSet()


def _reach_broker(runtime: Runtime) -> None:
    """Connect to the broker once per runtime: a submit to a broker it cannot reach (a wrong
    URL or password) fails now, as one without a delay does, not when its tasks fall due."""
    if runtime in _reached:
        return
    try:
        with runtime.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        problem = broker_unavailable(runtime, exc)
        if problem is None:
            raise
        raise problem from None
    _reached.add(runtime)
