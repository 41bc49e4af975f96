"""What every publisher shares: a batch's records written and its messages sent, the
tasks the broker did not take told apart (Unsent) and their records removed; Celery's own
send_task for brokers without a fast path (taskq/broker/publish/redis.py, amqp.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn

from taskq import errors, topology
from taskq.broker import messages
from taskq.errors import BrokerUnavailable
from taskq.urls import mask_url

if TYPE_CHECKING:
    from taskq.broker.messages import Template
    from taskq.records import TaskRecord
    from taskq.runtime import Runtime

# Seconds apart in submitted_at of the tasks written together, so the index keeps their order.
STAMP_STEP = 1e-6

# Remove the records of tasks whose messages the broker did not take, unless the task has
# moved on from QUEUED or SCHEDULED (a worker took it: its message got through after all), in
# one atomic step with the workers' state writes. A missing record counts as removed.
# KEYS: the records. ARGV: the index key, the index sets' prefix (as store.cell_key makes
# them), the id index, the task ids. Returns 1 (removed) or 0 (kept) per record.
_FORGET = """
local removed = {}
for k = 1, #KEYS do
  local rec = redis.call('HMGET', KEYS[k], 'state', 'type', 'priority')
  local state, id = rec[1], ARGV[k + 3]
  removed[k] = 0
  if state == 'QUEUED' or state == 'SCHEDULED' then
    redis.call('DEL', KEYS[k])
    redis.call('ZREM', ARGV[1], id)
    redis.call('ZREM', ARGV[3], id)
    redis.call('ZREM', ARGV[2] .. state .. ':' .. rec[2] .. ':' .. rec[3], id)
    removed[k] = 1
  elseif not state then
    removed[k] = 1
  end
end
return removed
"""


class Unsent(Exception):  # noqa: N818 - an outcome, caught by send_all
    """Raised by a batch's write step when the broker did not take all of it: `records` are
    the tasks it did not take (their records are removed), `problem` says why."""

    def __init__(self, problem: str, unsent: Sequence[TaskRecord]) -> None:
        super().__init__(problem)
        self.problem = problem
        self.records = list(unsent)
        self.after = 0  # where in send_all's tasks those never written begin


class Session:
    """One send_all's batches on their way: each is queued once its write step returns (a
    step returns the sizes of the batches it queued); finish() queues nothing more."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    def build(self, batch: Sequence[TaskRecord]) -> Callable[[], list[int]]:
        write = self.publisher.build(batch)

        def step() -> list[int]:
            write()
            return [len(batch)]
        return step

    def finish(self) -> list[int]:
        return []

    def close(self) -> None:
        """After the last step, or when send_all stops early."""


class Publisher:
    """Sends batches of prepared records: each record is written (and its submitted_at
    stamped) before its message, and a message the broker did not take leaves no record."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._templates: dict[str, Template] = {}
        self._stamped = 0.0  # the last submitted_at given
        self._forget_script: Any = None

    def session(self) -> Session:
        return Session(self)

    def build(self, batch: Sequence[TaskRecord]) -> Callable[[], None]:
        """Do the CPU work of sending `batch` now (its messages made ready) and return the
        step that writes it, records before messages: send_all builds a batch while the one
        before it is being written."""
        fast: list[TaskRecord] = []
        slow: list[TaskRecord] = []
        for record in batch:
            (fast if self._fast(record) else slow).append(record)
        steps = [(fast, self._build_fast(fast))] if fast else []
        if slow:
            steps.append((slow, partial(self._send_each, slow)))
        return partial(_run_each, steps)

    def template(self, record: TaskRecord) -> Template:
        found = self._templates.get(record.queue)
        if found is None:
            found = messages.capture(self.runtime.celery, topology.task_name(record.type),
                                     record.queue)
            self._templates[record.queue] = found
        return found

    def _fast(self, record: TaskRecord) -> bool:
        template = self.template(record)
        return template.serializer == "json" and self._can(template)

    def _can(self, template: Template) -> bool:
        return False

    def _build_fast(self, batch: Sequence[TaskRecord]) -> Callable[[], None]:
        raise NotImplementedError

    def _send_each(self, batch: Sequence[TaskRecord]) -> None:
        """Celery's send_task per message, after the batch's records are written."""
        self.write_records(batch)
        for sent, record in enumerate(batch):
            try:
                celery_send(self.runtime, record)
            except BaseException as exc:
                self.fail(exc, batch[sent:])

    def _stamp(self, batch: Sequence[TaskRecord]) -> None:
        """Stamp submitted_at as the records are written, each a STAMP_STEP after the one
        before (a delayed task's eta keeps its delay after it)."""
        if not batch:
            return
        now = max(time.time(), self._stamped + STAMP_STEP)
        for n, record in enumerate(batch):
            at = now + n * STAMP_STEP
            if record.eta is not None:
                record.eta = at + (record.eta - (record.submitted_at or at))
            record.submitted_at = at
        self._stamped = now + (len(batch) - 1) * STAMP_STEP

    def _records_pipe(self, batch: Sequence[TaskRecord]) -> Any:
        self._stamp(batch)
        store = self.runtime.store
        pipe = store.client.pipeline(transaction=False)
        store.create_many(batch, pipe)
        return pipe

    def write_records(self, batch: Sequence[TaskRecord],
                      also: Callable[[Any], None] | None = None) -> None:
        """Stamp and write the batch's records (and what `also` adds to their pipeline);
        Unsent if the backend cannot take them."""
        try:
            with self.runtime.store.reachable():
                pipe = self._records_pipe(batch)
                if also is not None:
                    also(pipe)
                pipe.execute()
        except BrokerUnavailable as exc:
            try:  # part of a pipeline may have been written
                self.forget(batch)
            except BrokerUnavailable:
                pass
            raise Unsent(exc.message, batch) from None

    def forget(self, batch: Sequence[TaskRecord]) -> list[TaskRecord]:
        """Remove the records of tasks the broker did not take; returns those removed (a
        task a worker already took keeps its record: its message got through)."""
        if not batch:
            return []
        store = self.runtime.store
        if self._forget_script is None:
            self._forget_script = store.client.register_script(_FORGET)
        with store.reachable():
            removed = self._forget_script(
                keys=[store.key(record.id) for record in batch],
                args=[store.index_key, f"{store.prefix}:idx:", store.ids_key,
                      *(r.id for r in batch)])
        return [record for record, gone in zip(batch, removed, strict=True) if gone]

    def fail(self, exc: BaseException, unsent: Sequence[TaskRecord]) -> NoReturn:
        """After a failed publish: forget the records of `unsent`, then raise Unsent for a
        lost connection (or a step that was Unsent), else `exc` itself (a bug, Ctrl-C)."""
        self.raise_unsent(exc, self.forget(unsent))

    def raise_unsent(self, exc: BaseException, unsent: Sequence[TaskRecord]) -> NoReturn:
        """Raise Unsent for `unsent` after a lost connection (or a step that was Unsent),
        else `exc` itself (a bug, Ctrl-C)."""
        if isinstance(exc, Unsent):
            raise Unsent(exc.problem, unsent) from None
        problem = broker_unavailable(self.runtime, exc)
        if problem is None:
            raise exc
        raise Unsent(problem.message, unsent) from None


class CeleryPublisher(Publisher):
    """Any other transport: Celery's send_task for every message."""


def celery_send(runtime: Runtime, record: TaskRecord, producer: Any = None,
                retries: int = 0) -> None:
    """Celery's own send_task: the path for brokers without a fast one, and for delayed tasks
    and retries when due (taskq/broker/mover.py; `retries`: the attempts already made). On
    `producer` when given, without Celery's retries (its caller retries)."""
    runtime.celery.send_task(
        topology.task_name(record.type), kwargs=record.params, task_id=record.id,
        queue=record.queue, routing_key=record.queue, taskq_raw=True, retries=retries,
        **({"producer": producer, "retry": False} if producer is not None else {}))


def broker_unavailable(runtime: Runtime, exc: BaseException) -> BrokerUnavailable | None:
    """The error to show for a failed publish, if it was a connection failure."""
    if isinstance(exc, BrokerUnavailable):
        return exc
    if isinstance(exc, Exception) and is_connection_error(exc):
        return BrokerUnavailable("broker", mask_url(runtime.broker_url) or "", errors.reason(exc))
    return None


def is_connection_error(exc: Exception) -> bool:
    import redis
    from amqp.exceptions import AccessRefused
    from amqp.exceptions import ConnectionError as AmqpConnectionError
    from kombu.exceptions import OperationalError

    # A refused login (AccessRefused) or vhost (NotAllowed, an AMQP ConnectionError) too.
    return isinstance(exc, OperationalError | OSError | ConnectionError | redis.ConnectionError
                      | redis.TimeoutError | AmqpConnectionError | AccessRefused)


def _run_each(steps: Sequence[tuple[Sequence[TaskRecord], Callable[[], None]]]) -> None:
    """Run a batch's steps in order; when one fails, the tasks of those after it are unsent
    too (their records were never written)."""
    for n, (_, step) in enumerate(steps):
        try:
            step()
        except Unsent as exc:
            later = [record for batch, _ in steps[n + 1:] for record in batch]
            raise Unsent(exc.problem, exc.records + later) from None
