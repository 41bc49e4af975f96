"""Task records in Redis: written at submit and by workers, read by status, list and watch."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from taskq import errors, records
from taskq.errors import AmbiguousId, BrokerUnavailable, UnknownTask, WaitTimeout
from taskq.payload import is_text
from taskq.records import TaskRecord, hash_pairs, to_hash

if TYPE_CHECKING:
    import redis

# Seconds a state write keeps retrying while the backend is unreachable (taskq/broker/recovery.py).
WRITE_RETRY = 10.0
AMBIGUOUS_SHOWN = 10  # candidates an ambiguous id prefix lists
# How recent a waiting higher-priority task must be for a starting task to yield to it, by the
# Redis server's clock. The race it closes lasts milliseconds (a task taken just before a
# higher one was queued); the bound keeps a record whose message is gone (a purged queue) from
# holding lower work back. (A yield repeats only when it helped: taskq/broker/yielding.py.)
YIELD_WINDOW = 1.0
# Seconds a running attempt's lease lasts unless its worker renews it (taskq/broker/running.py).
RUN_LEASE = 10.0
# Seconds a per-second count of finished tasks is kept (watch reads the last 10).
FINISHED_KEPT = 60

# Part of the state write (_UPDATE) (its ARGV[3] is the key prefix, ARGV[4] the task id; `new`
# and `old` the states after and before): a task's first final state decides, for each of
# its waiters still WAITING, whether it is released now: REVOKED-to-be when this one did not
# succeed (unless it runs after any end), ready when it was the last one it waited for.
# Released ids go on the `released` list; `released` counts them (returned to the caller).
RELEASE_WAITERS = """
local released = 0
if new ~= old and (new == 'SUCCESS' or new == 'FAILURE' or new == 'REVOKED') then
  local waiters = ARGV[3] .. ':waiters:' .. ARGV[4]
  for _, w in ipairs(redis.call('SMEMBERS', waiters)) do
    local wkey = ARGV[3] .. ':task:' .. w
    local wrec = redis.call('HMGET', wkey, 'state', 'after_any', 'after_failed')
    if wrec[1] == 'WAITING' and not wrec[3] then
      local ready
      if new ~= 'SUCCESS' and wrec[2] ~= 'true' then
        redis.call('HSET', wkey, 'after_failed', ARGV[4] .. ' ended ' .. new)
        ready = true
      else
        ready = redis.call('HINCRBY', wkey, 'after_left', -1) <= 0
      end
      if ready then
        redis.call('RPUSH', ARGV[3] .. ':released', w)
        released = released + 1
      end
    end
  end
  redis.call('DEL', waiters)
end
"""


# Update a record unless it is already final, so a late worker write never turns a
# REVOKED or SUCCESS task back into STARTED; with a list of allowed previous states, only
# from those (cancel's check-and-set). In the same atomic step it moves the id between the
# per-(state, type, priority) index sets that make `taskq list` pages cheap, files a FAILURE
# as a dead letter and counts finished tasks (deployment-wide and per worker). The event goes
# to the events channel and the task's own; on the task's own a final state's event carries
# the whole record when someone waits on it, so `wait` needs no second read.
# A task about to start yields (writes nothing) while one of the QUEUED index sets it is given
# (the higher priorities its worker reads) holds a task submitted in the last ARGV[7] seconds
# of the server's clock: that one was queued after this one was taken and is not running yet
# (tasks.TaskqTask.before_start).
# A start over a STARTED record with another started_at is a new run after one cut short (its
# worker was killed and the message redelivered, with Celery's retry count unchanged): its
# attempts count one more than the record's. (A progress write, or a start written twice
# through an outage, keeps started_at and counts nothing.)
# With an attempt error (JSON), it appends it to the record's `attempt_errors` list in the
# same step, so two writers never lose each other's entries (a read then a write would), and
# only once (the same entry sent again, by a retried call, is there already).
# Attempts are fenced: a worker starting attempt n claims it ('claim:n'), refused when the
# record has moved past it (a later attempt started, or attempt n already failed and waits to
# retry: a stale copy of its message, restored or redelivered), and counted in the record's
# `superseded`; its later writes ('hold:n': progress, retry, final) are accepted only while n
# is the record's current attempt. The claimed number is kept in the record's `fence` field,
# apart from `attempts` (which a run cut short also counts, as above).
# One running attempt per task: a claim that names its holder ('claim:n:host/pid') also takes
# the attempt's run lease (`<prefix>:run:<id>`, 'n:host/pid', RUN_LEASE long, renewed by the
# holder's worker); a claim of the same attempt by another holder while that lease lives is
# refused (-5: the attempt runs elsewhere; the delivery waits, taskq/broker/running.py). A RETRY or
# final write ends the attempt and its lease.
# A RETRY write with a next_attempt_at enters the task in the due set (`<prefix>:due`) in the
# same step: the mover publishes its next attempt when due (taskq/store/delayed.py), and until that
# attempt is claimed (RETRY, then QUEUED) a claim of the failed attempt is stale.
# KEYS: record, events channel, task channel, index sets to yield to... ARGV: ttl ('' keeps
# it), event, key prefix, task id, allowed previous states (',A,B,' or ''), now, yield window
# (seconds), attempt error to append ('' for none), attempt fence ('claim:n[:holder]',
# 'hold:n' or ''), field/value...
# A final state releases the task's waiters (RELEASE_WAITERS).
# Returns {1 written | 0 no record | -1 final | -2 not allowed | -3 yielded | -4 stale attempt
# | -5 running elsewhere, previous state, waiters released}.
_UPDATE = ("""
local rec = redis.call('HMGET', KEYS[1], 'state', 'type', 'priority', 'submitted_at', 'worker',
                      'attempts', 'started_at')
local old = rec[1]
if not old then return {0, ''} end
if old == 'SUCCESS' or old == 'FAILURE' or old == 'REVOKED' then return {-1, old} end
local kind, n, holder
local run_key = ARGV[3] .. ':run:' .. ARGV[4]
if ARGV[9] ~= '' then
  kind, n, holder = string.match(ARGV[9], '^(%a+):(%d+):?(.*)$')
  n = tonumber(n)
  -- the attempt last claimed, as workers number it ('fence'; `attempts`, which also counts
  -- runs cut short, on a record written before fences were kept)
  local current = tonumber(redis.call('HGET', KEYS[1], 'fence') or '')
    or tonumber(redis.call('HGET', KEYS[1], 'attempts') or '') or 0
  local stale
  if kind == 'claim' then
    -- attempt n already failed: waiting to retry (RETRY), or its retry queued (QUEUED)
    stale = n < current or (n == current and (old == 'RETRY' or old == 'QUEUED'))
  else
    stale = n ~= current
  end
  if stale then
    if kind == 'claim' then redis.call('HINCRBY', KEYS[1], 'superseded', 1) end
    return {-4, old}
  end
  -- one running attempt per task: attempt n running elsewhere holds its run lease (renewed
  -- while its worker lives, taskq/broker/running.py); a second delivery of it waits
  local run = kind == 'claim' and holder ~= '' and redis.call('GET', run_key)
  if run and old == 'STARTED' and run ~= n .. ':' .. holder
     and string.match(run, '^(%d+):') == tostring(n) then
    return {-5, old}
  end
end
if ARGV[5] ~= '' and not string.find(ARGV[5], ',' .. old .. ',', 1, true) then
  return {-2, old}
end
if #KEYS >= 4 then
  local t = redis.call('TIME')  -- the server's clock
  local since = t[1] + t[2] / 1000000 - tonumber(ARGV[7])
  for k = 4, #KEYS do
    if redis.call('ZCOUNT', KEYS[k], since, '+inf') > 0 then return {-3, old} end
  end
end
if #ARGV >= 10 then redis.call('HSET', KEYS[1], unpack(ARGV, 10)) end
if kind == 'claim' then
  redis.call('HSET', KEYS[1], 'fence', n)
  if holder ~= '' then redis.call('SET', run_key, n .. ':' .. holder, 'PX', RUN_LEASE_MS) end
end
if ARGV[8] ~= '' then
  local list = redis.call('HGET', KEYS[1], 'attempt_errors')
  if list and string.find(list, ARGV[8], 1, true) then
    -- already there: a retried call whose first reply was lost
  elseif list and string.match(list, '^%[.*%]$') and not string.match(list, '^%[%s*%]$') then
    list = string.sub(list, 1, -2) .. ',' .. ARGV[8] .. ']'
  else
    list = '[' .. ARGV[8] .. ']'
  end
  redis.call('HSET', KEYS[1], 'attempt_errors', list)
end
if ARGV[1] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local new = redis.call('HGET', KEYS[1], 'state')
local final = new == 'SUCCESS' or new == 'FAILURE' or new == 'REVOKED'
if final or new == 'RETRY' then redis.call('DEL', run_key) end  -- the attempt is over
if new == 'RETRY' then  -- the next attempt waits in the due set (taskq/store/delayed.py)
  local at = tonumber(redis.call('HGET', KEYS[1], 'next_attempt_at') or '')
  if at then redis.call('ZADD', ARGV[3] .. ':due', at, ARGV[4]) end
end
if old == 'STARTED' and new == 'STARTED' and rec[6]
   and redis.call('HGET', KEYS[1], 'started_at') ~= rec[7] then
  -- a new run of a task whose last run was cut short (a killed worker): it counts
  local before = tonumber(rec[6]) or 0
  if before >= (tonumber(redis.call('HGET', KEYS[1], 'attempts')) or 0) then
    redis.call('HSET', KEYS[1], 'attempts', before + 1)
  end
end
if new ~= old then
  local p, id, tail = ARGV[3], ARGV[4], ':' .. rec[2] .. ':' .. rec[3]
  redis.call('ZREM', p .. ':idx:' .. old .. tail, id)
  redis.call('ZADD', p .. ':idx:' .. new .. tail, rec[4] or ARGV[6], id)
  if new == 'SUCCESS' or new == 'FAILURE' then
    local counter = (new == 'SUCCESS') and 'done' or 'failed'
    redis.call('HINCRBY', p .. ':stats', counter, 1)
    -- and per second, kept a minute: what watch's done and failed per second are made of
    local second = p .. ':finished:' .. string.format('%d', math.floor(tonumber(ARGV[6])))
    redis.call('HINCRBY', second, counter, 1)
    redis.call('EXPIRE', second, 60)  -- FINISHED_KEPT
    local worker = redis.call('HGET', KEYS[1], 'worker')  -- the one that wrote this state
    if worker and redis.call('EXISTS', p .. ':worker:' .. worker) == 1 then
      redis.call('HINCRBY', p .. ':worker:' .. worker, counter, 1)
    end
  end
  if new == 'FAILURE' then redis.call('ZADD', p .. ':dlq:' .. rec[2], ARGV[6], id) end
end
""" + RELEASE_WAITERS + """
redis.call('PUBLISH', KEYS[2], ARGV[2])
if final and redis.call('PUBSUB', 'NUMSUB', KEYS[3])[2] > 0 then
  -- a waiter gets the final record with the event instead of reading it again
  local flat, record = redis.call('HGETALL', KEYS[1]), {}
  for i = 1, #flat, 2 do record[flat[i]] = flat[i + 1] end
  local event = cjson.decode(ARGV[2])
  event['record'] = record
  redis.call('PUBLISH', KEYS[3], cjson.encode(event))
else
  redis.call('PUBLISH', KEYS[3], ARGV[2])
end
return {1, old, released}
""").replace("RUN_LEASE_MS", str(int(RUN_LEASE * 1000)))

# Write a batch of new records in one command. A pipeline of an HSET per record cost the
# client about 20 us a record to pack and parse; one JSON argument for the whole batch costs
# it about 2. A new record is open, so it has no expiry (see TaskStore.create_many).
# KEYS: the records' keys. ARGV[1]: JSON, per record [field, value, ...].
_CREATE = """
local batch = cjson.decode(ARGV[1])
for k = 1, #KEYS do
  redis.call('HSET', KEYS[k], unpack(batch[k]))
  redis.call('PERSIST', KEYS[k])
end
return #KEYS
"""


class TaskStore:
    """Reads and writes task records under `<prefix>:task:<id>`; publishes state changes."""

    def __init__(self, client: redis.Redis, prefix: str, ttl: int, url: str) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl
        self.url = url
        self._update = client.register_script(_UPDATE)
        self._create = client.register_script(_CREATE)
        self._subscriptions = _Subscriptions(client)
        # Called after a final write released waiting tasks (set by Runtime.store).
        self.on_released: Callable[[], None] | None = None

    def key(self, task_id: str) -> str:
        return record_key(self.prefix, task_id)

    @property
    def events_channel(self) -> str:
        return f"{self.prefix}:events"

    def task_channel(self, task_id: str) -> str:
        return f"{self.prefix}:events:{task_id}"

    @property
    def index_key(self) -> str:
        """Every task id, scored by submitted_at."""
        return f"{self.prefix}:tasks"

    @property
    def ids_key(self) -> str:
        """Every task id, each scored 0, so in lexical order: the ids an id prefix begins are
        one range of it (resolve_id), however many tasks are kept."""
        return f"{self.prefix}:ids"

    def cell_key(self, state: str, type_name: str, priority: str) -> str:
        """The ids in one (state, type, priority), scored by submitted_at (kept by _UPDATE)."""
        return f"{self.prefix}:idx:{state}:{type_name}:{priority}"

    def run_key(self, task_id: str) -> str:
        """The run lease of a task's running attempt (kept by _UPDATE, renewed by
        taskq/broker/running.py): 'n:holder' while attempt n runs there."""
        return f"{self.prefix}:run:{task_id}"

    def dlq_key(self, type_name: str) -> str:
        """Dead letters of one type, scored by the time they failed."""
        return f"{self.prefix}:dlq:{type_name}"

    def worker_key(self, hostname: str) -> str:
        """One worker's heartbeat hash (taskq/broker/heartbeat.py; counters kept by _UPDATE)."""
        return f"{self.prefix}:worker:{hostname}"

    @property
    def workers_key(self) -> str:
        """The hostnames of the workers that have heartbeat hashes."""
        return f"{self.prefix}:workers"

    def count_dropped(self) -> None:
        """Count a message a worker dropped because its task has no record (metrics show it)."""
        with self.reachable():
            self.client.hincrby(self.stats_key, "dropped", 1)

    @property
    def stats_key(self) -> str:
        """Counters since the deployment began: finished tasks (done, failed) and messages
        dropped for want of a record (dropped)."""
        return f"{self.prefix}:stats"

    def finished_key(self, second: int) -> str:
        """Tasks finished (done, failed) in one second of epoch time; kept FINISHED_KEPT s."""
        return f"{self.prefix}:finished:{second}"

    def finished_since(self, now: float, seconds: int) -> tuple[int, int]:
        """How many tasks finished (done, failed) in the last `seconds` whole seconds, this one
        included: counted as each record became final, so one reading is the true figure."""
        last = int(now)
        pipe = self.client.pipeline(transaction=False)
        for second in range(last - seconds + 1, last + 1):
            pipe.hmget(self.finished_key(second), "done", "failed")
        with self.reachable():
            counts = pipe.execute()
        return (sum(int(done or 0) for done, _ in counts),
                sum(int(failed or 0) for _, failed in counts))

    @contextmanager
    def reachable(self) -> Iterator[None]:
        """Translate a lost connection into the one error that names the backend URL."""
        import redis

        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BrokerUnavailable("result backend", self.url, errors.reason(exc)) from None

    def create(self, record: TaskRecord, pipe: Any = None) -> None:
        """Write a new record (into `pipe` when given, so it joins the caller's round trip)."""
        self.create_many([record], pipe)

    def create_many(self, batch: Sequence[TaskRecord], pipe: Any = None) -> None:
        """Write new records (into `pipe` when given): one record as HSET and PERSIST, more in one
        script call (a pipeline with a script checks it is loaded first, a round trip a
        single submit should not pay); and one ZADD per index set. A record gets its expiry
        (record_ttl) with its final state, never before: however long a task waits for a
        worker, its record, and so its result, is kept."""
        target = pipe if pipe is not None else self.client.pipeline(transaction=False)
        cells: dict[str, dict[str, float]] = {}
        index: dict[str, float] = {}
        keys: list[str] = []
        rows: list[list[str]] = []
        single = len(batch) == 1
        for record in batch:
            key = self.key(record.id)
            pairs = hash_pairs(record)
            if single:
                target.hset(key, items=pairs)
                target.persist(key)  # a caller's id was claimed with a short-lived stub
            else:
                keys.append(key)
                rows.append(pairs)
            score = record.submitted_at or time.time()
            index[record.id] = score
            cell = self.cell_key(record.state, record.type, record.priority)
            cells.setdefault(cell, {})[record.id] = score
        if keys:
            self._create(keys=keys, args=[json.dumps(rows)], client=target)
        if index:
            target.zadd(self.index_key, index)
            target.zadd(self.ids_key, dict.fromkeys(index, 0))
        for cell, members in cells.items():
            target.zadd(cell, members)
        if pipe is None:
            with self.reachable():
                target.execute()

    def delete(self, task_id: str) -> None:
        """Remove a record and every index entry of it."""
        self.delete_many([task_id])

    def delete_many(self, task_ids: list[str]) -> None:
        """Remove records and every index entry of them, in two round trips."""
        if not task_ids:
            return
        read = self.client.pipeline(transaction=False)
        for task_id in task_ids:
            read.hmget(self.key(task_id), "state", "type", "priority")
        with self.reachable():
            found = read.execute()
            pipe = self.client.pipeline(transaction=False)
            for task_id, fields in zip(task_ids, found, strict=True):
                state, type_name, priority = (text(v) if v is not None else None
                                              for v in fields)
                pipe.delete(self.key(task_id))
                pipe.zrem(self.index_key, task_id)
                pipe.zrem(self.ids_key, task_id)
                if state and type_name and priority:
                    pipe.zrem(self.cell_key(state, type_name, priority), task_id)
                    pipe.zrem(self.dlq_key(type_name), task_id)
            pipe.execute()

    def resolve_id(self, text: str) -> str:
        """The task id `text` names: itself when it is a whole id or has a record, else the one
        id it begins (at least records.MIN_ID_PREFIX characters, any case); AmbiguousId when
        it begins more than one. An id nothing begins is returned as given (reading it then
        says it is unknown)."""
        if not records.is_id_prefix(text):
            return text
        with self.reachable():
            if self.client.exists(self.key(text)):
                return text
            found = self._begun_by(text.lower())
        if len(found) > 1:
            raise AmbiguousId(text, sorted(found)[:AMBIGUOUS_SHOWN])
        return found[0] if found else text

    def _begun_by(self, prefix: str) -> list[str]:
        """Up to AMBIGUOUS_SHOWN + 1 ids that begin `prefix`: one range of the id index, or,
        while it lacks ids the index by time holds (records written before it existed), one
        pass over every id (ZSCAN: a few seconds at a million)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.ids_key)
        pipe.zcard(self.index_key)
        pipe.zrangebylex(self.ids_key, b"[" + prefix.encode(), b"[" + prefix.encode() + b"\xff",
                         start=0, num=AMBIGUOUS_SHOWN + 1)
        indexed, kept, found = pipe.execute()
        if indexed >= kept:
            return [text(member) for member in found]
        scanned: list[str] = []
        pattern = prefix + "*"  # is_id_prefix: no glob characters in it
        for member, _ in self.client.zscan_iter(self.index_key, match=pattern, count=1000):
            scanned.append(text(member))
            if len(scanned) > AMBIGUOUS_SHOWN:
                break
        return scanned

    def get(self, task_id: str) -> TaskRecord:
        with self.reachable():
            data = self.client.hgetall(self.key(task_id))
        return record_from_fields(task_id, data)

    def get_many(self, task_ids: list[str]) -> list[TaskRecord | None]:
        """Records in one round trip; None where a record has expired."""
        pipe = self.client.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hgetall(self.key(task_id))
        with self.reachable():
            found = pipe.execute()
        return [TaskRecord.from_hash(decoded(d)) if d else None for d in found]

    def update(self, task_id: str, state: str, *, final: bool = False, ride_out: bool = False,
               attempt_error: dict[str, Any] | None = None, fence: str = "",
               **fields: Any) -> bool:
        """Set `state` and fields unless the record is final (appending `attempt_error` to
        its history, when given; only from the current attempt with `fence`); True when it
        was written."""
        return self.transition(task_id, state, final=final, ride_out=ride_out,
                               attempt_error=attempt_error, fence=fence, **fields)[0] == 1

    def transition(self, task_id: str, state: str, *, final: bool = False,
                   only_from: tuple[str, ...] = (), yield_to: Sequence[str] = (),
                   ride_out: bool = False,
                   attempt_error: dict[str, Any] | None = None, fence: str = "",
                   **fields: Any) -> tuple[int, str | None]:
        """Like update(), but only from `only_from` states when given, and not while one of
        the index sets `yield_to` holds a task submitted in the last YIELD_WINDOW seconds
        (by the server's clock); `attempt_error` is appended to `attempt_errors` in the same
        step; `fence` (claim(n) or holding(n)) refuses a stale attempt's write. Returns
        (outcome, previous state): 1 written, 0 no record, -1 already final, -2 not from that
        state, -3 yielded, -4 a stale attempt, -5 the attempt runs elsewhere (its run lease is
        held). With `ride_out` (a worker's writes) it retries through a backend outage of up
        to WRITE_RETRY seconds; a user's command fails at once instead."""
        values = to_hash({"state": state, **fields})
        now = time.time()
        event = json.dumps({"id": task_id, "state": state, "at": now})
        allowed = "," + ",".join(only_from) + "," if only_from else ""
        appended = json.dumps(attempt_error) if attempt_error is not None else ""
        args: list[Any] = [self.ttl if final else "", event, self.prefix, task_id, allowed, now,
                           YIELD_WINDOW, appended, fence]
        for name, value in values.items():
            args += [name, value]
        keys = [self.key(task_id), self.events_channel, self.task_channel(task_id), *yield_to]
        with self.reachable():
            if ride_out:
                reply = self._riding_out_outages(self._update, keys=keys, args=args)
            else:
                reply = self._update(keys=keys, args=args)
        if len(reply) > 2 and reply[2] and self.on_released is not None:
            self.on_released()
        return int(reply[0]), text(reply[1]) or None

    def _riding_out_outages(self, call: Any, **kwargs: Any) -> Any:
        """Retry a state write through a short backend outage (a restart) for up to
        WRITE_RETRY seconds: a worker's final write must not be lost to it. The write is
        idempotent (same fields; a final state is never overwritten)."""
        import redis

        deadline, pause = time.monotonic() + WRITE_RETRY, 0.1
        while True:
            try:
                return call(**kwargs)
            except (redis.ConnectionError, redis.TimeoutError):
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 1.0)

    def record_attempt_error(self, task_id: str, attempt: int, error: str, exc_type: str,
                             next_attempt_at: float | None) -> None:
        """Append one failed attempt to the record's history and mark it RETRY, in one atomic
        write (from that attempt only, while current) that rides out a backend outage as the
        worker's other writes do; with `next_attempt_at`, the same write enters the task in
        the due set, where the mover publishes its next attempt (taskq/store/delayed.py)."""
        self.update(task_id, records.RETRY, ride_out=True, fence=holding(attempt),
                    attempt_error=attempt_error(attempt, error, exc_type),
                    error=error, exc_type=exc_type, next_attempt_at=next_attempt_at)

    def wait(self, task_id: str, timeout: float | None) -> TaskRecord:
        """Block until the task is final; WaitTimeout after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        channel = self.task_channel(task_id)
        with self.reachable(), self._subscriptions.to(channel) as pubsub:
            return self._wait_on(pubsub, channel, task_id, deadline, timeout)

    def _wait_on(self, pubsub: Any, channel: str, task_id: str, deadline: float | None,
                 timeout: float | None) -> TaskRecord:
        # The record is read once the subscription is confirmed: a final state written after
        # that read is seen as its event. (Read on every (un)subscribe reply instead, a wait
        # on a kept connection cost two more round trips, run while the worker ran the task.)
        record: TaskRecord | None = None
        while record is None or not record.final:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:  # a last read decides (the first, with no time to subscribe)
                record = self.get(task_id)
                if record.final:
                    return record
                raise WaitTimeout(task_id, timeout or 0, record.state)
            # The record is re-read at least every second, so a missed message (reconnect)
            # costs at most a second, never a hang.
            message = pubsub.get_message(timeout=min(left, 1.0))
            if message is None or _is_subscribed(message, channel):
                record = self.get(task_id)
            elif _is_final_event(message, channel):
                record = _carried_record(message) or self.get(task_id)
        return record


class _Subscriptions:
    """Pub/sub connections for `wait`, one kept for the next call: a new connection for
    every wait cost ~0.65 ms of a ~3 ms submit-to-result round trip (measured on Redis)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._spare: Any = None
        self._pid = os.getpid()

    @contextmanager
    def to(self, channel: str) -> Iterator[Any]:
        pubsub = self._take()
        try:
            pubsub.subscribe(channel)
            yield pubsub
        except BaseException:
            pubsub.close()
            raise
        else:
            pubsub.unsubscribe(channel)
            self._keep(pubsub)

    def _take(self) -> Any:
        with self._lock:
            spare, self._spare = self._spare, None
            if spare is not None and self._pid == os.getpid():
                return spare
        # (Un)subscribe replies are read: the one confirming a wait's subscription says when
        # its record can be read without missing its final event (TaskStore._wait_on).
        return self.client.pubsub(ignore_subscribe_messages=False)

    def _keep(self, pubsub: Any) -> None:
        with self._lock:
            if self._spare is None:
                self._spare, self._pid = pubsub, os.getpid()
                return
        pubsub.close()


def _is_subscribed(message: dict[str, Any], channel: str) -> bool:
    """Whether `message` confirms the subscription to `channel` (not a reply of a kept
    connection's previous wait)."""
    return message.get("type") == "subscribe" and text(message.get("channel", b"")) == channel


def _is_final_event(message: dict[str, Any], channel: str) -> bool:
    if message.get("type") != "message":
        return False  # an (un)subscribe reply
    if text(message.get("channel", b"")) != channel:
        return False  # a late event of a kept connection's previous wait
    try:
        return json.loads(message["data"])["state"] in records.FINAL_STATES
    except (ValueError, KeyError, TypeError):
        return True  # not one of our events: read the record to be sure


def _carried_record(message: dict[str, Any]) -> TaskRecord | None:
    """The final record a final state's event carries (None from an older worker)."""
    try:
        carried = json.loads(message["data"]).get("record")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(carried, dict) or not carried:
        return None
    record = TaskRecord.from_hash({str(k): str(v) for k, v in carried.items()})
    return record if record.final else None


def claim(attempt: int, holder: str = "") -> str:
    """The fence of the STARTED write of attempt number `attempt`; with `holder` (who runs it:
    running.holder()) it also takes the attempt's run lease."""
    return f"claim:{attempt}:{holder}" if holder else f"claim:{attempt}"


def holding(attempt: int) -> str:
    """The fence of every later write of attempt number `attempt`."""
    return f"hold:{attempt}"


def attempt_error(attempt: int, error: str, exc_type: str) -> dict[str, Any]:
    """One entry of a record's `attempt_errors`."""
    return {"attempt": attempt, "error": error, "exc_type": exc_type, "at": time.time()}


def record_key(prefix: str, task_id: str) -> str:
    """The key of a task's record hash; UnknownTask for an id no task can have (not valid
    Unicode, e.g. invalid UTF-8 on the command line: it could not be sent to Redis)."""
    if not task_id.isascii() and not is_text(task_id):
        raise UnknownTask(task_id)
    return f"{prefix}:task:{task_id}"


def record_from_fields(task_id: str, data: dict[Any, Any]) -> TaskRecord:
    """The record of a hash as HGETALL returns it; UnknownTask if it is empty."""
    if not data:
        raise UnknownTask(task_id)
    return TaskRecord.from_hash(decoded(data))


def decoded(data: dict[Any, Any]) -> dict[str, str]:
    """A Redis hash as text."""
    return {text(k): text(v) for k, v in data.items()}


def text(value: Any) -> str:
    """A Redis reply as text (bytes that are not UTF-8 as U+FFFD: a read never fails on them)."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
