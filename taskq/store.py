"""Task records in Redis: written at submit and by workers, read by status, list and watch."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from taskq import records
from taskq.errors import BrokerUnavailable, UnknownTask, WaitTimeout
from taskq.records import TaskRecord, to_hash

if TYPE_CHECKING:
    import redis

# Update a record unless it is already final, so a late worker write never turns a
# REVOKED or SUCCESS task back into STARTED. ARGV: ttl ('' keeps it), event, field/value...
_UPDATE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 0 end
if state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED' then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if ARGV[1] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
redis.call('PUBLISH', KEYS[2], ARGV[2])
redis.call('PUBLISH', KEYS[3], ARGV[2])
return 1
"""


class TaskStore:
    """Reads and writes task records under `<prefix>:task:<id>`; publishes state changes."""

    def __init__(self, client: redis.Redis, prefix: str, ttl: int, url: str) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl
        self.url = url
        self._update = client.register_script(_UPDATE)

    def key(self, task_id: str) -> str:
        return f"{self.prefix}:task:{task_id}"

    @property
    def events_channel(self) -> str:
        return f"{self.prefix}:events"

    def task_channel(self, task_id: str) -> str:
        return f"{self.prefix}:events:{task_id}"

    @contextmanager
    def reachable(self) -> Iterator[None]:
        """Translate a lost connection into the one error that names the backend URL."""
        import redis

        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BrokerUnavailable("result backend", self.url, reason) from None

    def create(self, record: TaskRecord, pipe: Any = None) -> None:
        """Write a new record (into `pipe` when given, so it joins the caller's round trip)."""
        target = pipe if pipe is not None else self.client.pipeline(transaction=False)
        key = self.key(record.id)
        target.hset(key, mapping=to_hash(record.to_dict()))  # type: ignore[arg-type]
        target.expire(key, self._open_ttl(record))
        target.zadd(f"{self.prefix}:tasks", {record.id: record.submitted_at or time.time()})
        if pipe is None:
            with self.reachable():
                target.execute()

    def _open_ttl(self, record: TaskRecord) -> int:
        delay = max(0.0, (record.eta or 0) - time.time())
        return int(self.ttl + delay)

    def delete(self, task_id: str) -> None:
        with self.reachable():
            self.client.delete(self.key(task_id))
            self.client.zrem(f"{self.prefix}:tasks", task_id)

    def get(self, task_id: str) -> TaskRecord:
        with self.reachable():
            data = self.client.hgetall(self.key(task_id))
        if not data:
            raise UnknownTask(task_id)
        return TaskRecord.from_hash(_decoded(data))

    def update(self, task_id: str, state: str, *, final: bool = False, **fields: Any) -> bool:
        """Set `state` and fields unless the record is final; True when it was written."""
        values = to_hash({"state": state, **fields})
        event = json.dumps({"id": task_id, "state": state, "at": time.time()})
        args: list[Any] = [self.ttl if final else "", event]
        for name, value in values.items():
            args += [name, value]
        keys = [self.key(task_id), self.events_channel, self.task_channel(task_id)]
        with self.reachable():
            return int(self._update(keys=keys, args=args)) == 1

    def record_attempt_error(self, task_id: str, attempt: int, error: str, exc_type: str,
                             next_attempt_at: float | None) -> None:
        """Append one failed attempt to the record's history and mark it RETRY."""
        record = self.get(task_id)
        history = record.attempt_errors + [{"attempt": attempt, "error": error,
                                            "exc_type": exc_type, "at": time.time()}]
        self.update(task_id, records.RETRY, attempt_errors=history, error=error,
                    exc_type=exc_type, next_attempt_at=next_attempt_at)

    def wait(self, task_id: str, timeout: float | None) -> TaskRecord:
        """Block until the task is final; WaitTimeout after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.reachable():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(self.task_channel(task_id))
            try:
                return self._wait_on(pubsub, task_id, deadline, timeout)
            finally:
                pubsub.close()

    def _wait_on(self, pubsub: Any, task_id: str, deadline: float | None,
                 timeout: float | None) -> TaskRecord:
        record = self.get(task_id)
        while not record.final:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(task_id, timeout or 0, record.state)
            # The record is re-read after every event and at least every second, so a
            # missed message (reconnect) costs at most a second, never a hang.
            pubsub.get_message(timeout=min(left, 1.0))
            record = self.get(task_id)
        return record


def _decoded(data: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in data.items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
