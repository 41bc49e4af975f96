"""A send_all's batches on their way to RabbitMQ, counted as queued once the broker confirms."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn

from taskq import records
from taskq.broker import amqp_frames
from taskq.broker.publish.base import Session, Unsent
from taskq.errors import BrokerUnavailable

if TYPE_CHECKING:
    from taskq.broker.publish.amqp import AmqpPublisher, Parts
    from taskq.records import TaskRecord

# Seconds a wait for the broker's confirms may take (RabbitMQ confirms a persistent message
# once it is on disk; it withholds confirms while an alarm blocks publishers).
CONFIRM_TIMEOUT = 10.0


class Window(Session):
    """One send_all's batches published one after the other on one channel of Celery's
    producer pool (held until close), in confirm mode: a batch's confirms are awaited after the
    next batch is written, so the broker stores one while the next is on its way; finish()
    awaits the last. A batch counts as queued once every message of it is confirmed.

    A lost connection is made again and what it left unconfirmed published again (as
    send_task does, under the app's task_publish_retry_policy), as new tasks (_reissue). Any
    other failure, a refusal or a confirm that does not come in time stops the window: the
    records of the tasks not confirmed are removed (Unsent)."""

    def __init__(self, publisher: AmqpPublisher) -> None:
        super().__init__(publisher)
        self.amqp = publisher
        self.batches: deque[Sequence[TaskRecord]] = deque()  # not yet wholly confirmed
        self.todo: deque[Parts] = deque()  # to publish
        self.on_wire: dict[int, Parts] = {}  # published on `channel`, by delivery tag
        self.confirmed: set[int] = set()  # id() of the records confirmed
        self.nacked = self.unanswered = 0
        self.channel: Any = None
        self._lent: Any = None  # Celery's producer_or_acquire() while the window holds it
        self._producer: Any = None

    def build(self, batch: Sequence[TaskRecord]) -> Callable[[], list[int]]:
        return partial(self._write, batch, [self.amqp.part(record) for record in batch])

    def _write(self, batch: Sequence[TaskRecord], parts: Sequence[Parts]) -> list[int]:
        self.batches.append(batch)
        try:
            self.amqp.write_records(batch)
        except Unsent as exc:
            self._fail(exc)
        self.todo.extend(parts)
        return self._run(finishing=False)

    def finish(self) -> list[int]:
        return self._run(finishing=True) if self.batches else []

    def _run(self, finishing: bool) -> list[int]:
        """Publish what is to publish and wait for the confirms of what was published before
        (all of it when finishing); returns the sizes of the batches now queued."""
        app = self.amqp.runtime.celery
        try:
            if self._producer is None:
                self._lent = app.producer_or_acquire()
                self._producer = self._lent.__enter__()
            ensured = self._producer.connection.ensure(
                self._producer, self._publish, **app.conf.task_publish_retry_policy)
            ensured(self._producer, finishing)
            if self.nacked or self.unanswered:
                self._publish(self._producer, True)  # the rest's confirms, before stopping
                raise Unsent(self.amqp.refusal(self.nacked, self.unanswered, CONFIRM_TIMEOUT),
                             [])
        except BaseException as exc:
            self._fail(exc)
        return self._done()

    def _publish(self, producer: Any, finishing: bool) -> None:
        """The step ensure() runs again after a lost connection: first publish again what the
        lost channel left unconfirmed; publish; wait."""
        if producer.channel is not self.channel:
            if self.on_wire:
                self._reissue()
            self.channel = producer.channel
            amqp_frames.confirms(self.channel).begin()
        confirms = amqp_frames.confirms(self.channel)
        before = confirms.last
        if self.todo:
            self.amqp.publish(producer, self.todo, confirms, self.on_wire)
        upto = confirms.last if finishing else before
        try:
            confirms.wait(CONFIRM_TIMEOUT, upto)
        finally:
            self._settle(confirms.settled)
        late = [tag for tag in self.on_wire if tag <= upto]
        self.unanswered += len(late)
        for tag in late:
            del self.on_wire[tag]

    def _settle(self, settled: dict[int, bool]) -> None:
        for tag in [tag for tag in self.on_wire if tag in settled]:
            part = self.on_wire.pop(tag)
            if settled[tag]:
                self.confirmed.add(id(part.record))
            else:
                self.nacked += 1

    def _reissue(self) -> None:
        """Messages written on a connection that was lost before the broker confirmed them:
        the broker may or may not have them, so each is published again as a new task (a new
        id and record), after its old record is removed: a worker drops a message whose
        record is missing, so the work is not queued twice. A task whose record has moved on
        (a worker took it) was queued after all."""
        lost = list(self.on_wire.values())
        self.on_wire.clear()
        removed = {id(record) for record in self.amqp.forget([part.record for part in lost])}
        again: list[Parts] = []
        for part in lost:
            if id(part.record) not in removed:
                self.confirmed.add(id(part.record))
                continue
            part.record.id = records.new_id()
            again.append(self.amqp.part(part.record))
        self.todo.extendleft(reversed(again))
        self.amqp.write_records([part.record for part in again])

    def _done(self) -> list[int]:
        """Take off the batches now wholly confirmed; their sizes."""
        done = []
        while self.batches and all(id(r) in self.confirmed for r in self.batches[0]):
            done.append(len(self.batches.popleft()))
        return done

    def _unconfirmed(self) -> list[TaskRecord]:
        return [record for batch in self.batches for record in batch
                if id(record) not in self.confirmed]

    def _fail(self, exc: BaseException) -> NoReturn:
        """Stop: remove the records of every task not confirmed, and raise Unsent for them
        (or `exc` itself: a bug, Ctrl-C)."""
        unconfirmed = self._unconfirmed()
        self.batches.clear()
        self._give_back()
        self.amqp.fail(exc, unconfirmed)

    def close(self) -> None:
        """After finish(), or when send_all stops early (a bug, Ctrl-C): what is unconfirmed
        then is not queued (its records are removed), and the producer goes back."""
        self._give_back()
        if self.batches:
            with contextlib.suppress(BrokerUnavailable):
                self.amqp.forget(self._unconfirmed())
            self.batches.clear()

    def _give_back(self) -> None:
        lent, self._lent, self._producer = self._lent, None, None
        self.todo.clear()
        self.on_wire.clear()
        if lent is not None:
            lent.__exit__(None, None, None)
