"""Schedules in Redis, shared by every host: their definitions, next ticks and the claims
that make each tick submitted once, whoever runs a scheduler.

Keys (under the deployment's key prefix):
- `<p>:schedule:<name>`: a hash: `spec` (JSON), `source` (config or cli), `paused`,
  `next_run` (the next tick, seconds since the epoch), `anchor` (an interval's ticks fall on
  anchor + k * interval), `created_at`, and what ran last: `last_run`, `last_task`, `runs`.
- `<p>:schedules`: the set of names; `<p>:schedules:due`: the next tick of each schedule that
  is not paused (a sorted set), so a scheduler reads only what is due.
- `<p>:schedules:pending`: ticks claimed whose task is not known to be queued yet
  (`<name> <tick>`, scored by when claimed): a scheduler killed between its claim and its
  submit leaves one, and another takes it over after PENDING_STALE seconds."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taskq import schedules
from taskq.errors import Conflict, NotFound
from taskq.schedules import Schedule

if TYPE_CHECKING:
    from taskq.config import Settings
    from taskq.store import TaskStore

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

# Seconds before another scheduler takes over a claimed tick. Short is safe: a tick's task id
# is the tick's own, so a takeover while its first holder still submits queues nothing twice.
PENDING_STALE = 5.0
_IDS = uuid.UUID("6f1d3a52-6b1e-4c55-9a43-0d6a8b6c2f10")  # namespace of ticks' task ids

# Move a schedule from tick ARGV[2] (its next_run, exactly as stored) to ARGV[3]; with a tick
# to submit (ARGV[4]), note it as pending, claimed at ARGV[5]. Refused (0) when the schedule
# is gone, paused, or already moved on: so of any number of schedulers reading the same
# next_run, exactly one claims it. KEYS: the hash, due set, pending set.
_CLAIM = """
local h = redis.call('HMGET', KEYS[1], 'next_run', 'paused')
if not h[1] or h[2] == '1' or h[1] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'next_run', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1] .. ' ' .. ARGV[4]) end
return 1
"""
# One look for a scheduler's pass, in one round trip: the server's clock, the schedules due by
# it and the pending ticks claimed more than ARGV[1] seconds before it (member, score, ...).
# KEYS: due set, pending set.
_LOOK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
return {t[1], t[2], redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now),
        redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[1]), 'WITHSCORES')}
"""
# Take over a pending tick whose claim is still the one read (scored ARGV[2]): one of the
# schedulers that see it stale gets it. KEYS: pending set. ARGV: member, old score, now.
_RETAKE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""
# Write a schedule unless one of its name exists (add), or (sync from the config) replace a
# config schedule whose definition changed; ARGV: name, mode (add|sync), spec, source,
# next_run, anchor, created_at. Returns 1 written, 0 kept, -1 exists (add), -2 not config's.
_PUT = """
local old = redis.call('HMGET', KEYS[1], 'spec', 'source', 'paused')
if old[1] then
  if ARGV[2] == 'add' then return -1 end
  if old[2] ~= 'config' then return -2 end
  if old[1] == ARGV[3] then return 0 end
end
redis.call('HSET', KEYS[1], 'spec', ARGV[3], 'source', ARGV[4], 'paused', old[3] or '0',
           'next_run', ARGV[5], 'anchor', ARGV[6], 'created_at', ARGV[7])
redis.call('SADD', KEYS[2], ARGV[1])
if (old[3] or '0') == '0' then redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1]) end
return 1
"""


@dataclass(frozen=True)
class Stored:
    """A schedule as Redis has it: its definition and its state."""

    schedule: Schedule
    source: str
    paused: bool
    next_run: str  # as stored: a claim compares it exactly
    anchor: float
    created_at: str
    last_run: float | None
    last_task: str | None
    runs: int

    def to_dict(self) -> dict[str, Any]:
        from taskq.records import iso_time

        return {**self.schedule.to_dict(), "source": self.source, "paused": self.paused,
                "next_run": None if self.paused else iso_time(float(self.next_run)),
                "last_run": iso_time(self.last_run),
                "last_task": self.last_task, "runs": self.runs}


class ScheduleStore:
    """Reads and writes schedules under the deployment's key prefix."""

    def __init__(self, store: TaskStore, settings: Settings) -> None:
        self.store = store
        self.client: Any = store.client  # redis-py's reply types are too loose to check
        self.settings = settings
        self.names_key, self.due_key = self.summary_keys(store.prefix)
        self.pending_key = f"{store.prefix}:schedules:pending"

    @staticmethod
    def summary_keys(prefix: str) -> tuple[str, str]:
        """The set of names and the due set (for a reader without a ScheduleStore)."""
        return f"{prefix}:schedules", f"{prefix}:schedules:due"

    def key(self, name: str) -> str:
        return f"{self.store.prefix}:schedule:{name}"

    @contextmanager
    def reachable(self) -> Iterator[None]:
        with self.store.reachable():
            yield

    def now(self) -> float:
        """The Redis server's clock: every host's scheduler reads the same one."""
        seconds, micros = self.client.time()
        return float(seconds) + micros / 1e6

    def add(self, schedule: Schedule, source: str = "cli") -> Stored:
        """Store a new schedule; Conflict if one of that name exists."""
        with self.reachable():
            if self._put(schedule, "add", source) == -1:
                raise Conflict(f"schedule {schedule.name!r} already exists; "
                               "`taskq schedule remove` it first")
            return self.get(schedule.name)

    def sync(self, remove_undeclared: bool = False) -> None:
        """Bring the schedules declared in the config into Redis: new ones are added, changed
        ones replaced (starting afresh), and (`remove_undeclared`) config schedules this
        config no longer declares removed. Pause state and history are kept. Only workers
        sync (at start): a CLI or API with another config never changes the deployment's."""
        declared = {s.name for s in self.settings.schedules}
        with self.reachable():
            for schedule in self.settings.schedules:
                self._put(schedule, "sync", "config")
            for name in self._names() if remove_undeclared else []:
                if name not in declared and self.client.hget(self.key(name),
                                                             "source") == b"config":
                    self._delete(name)

    def _put(self, schedule: Schedule, mode: str, source: str) -> int:
        now = self.now()
        spec = json.dumps(schedule.to_dict(), sort_keys=True)
        first = schedules.next_after(schedule, now, now)
        return int(self.client.eval(_PUT, 3, self.key(schedule.name), self.names_key,
                                    self.due_key, schedule.name, mode, spec, source,
                                    repr(first), repr(now), repr(now)))

    def _names(self) -> list[str]:
        return sorted(n.decode() for n in self.client.smembers(self.names_key))

    def all(self) -> list[Stored]:
        with self.reachable():
            found = [self.read(name) for name in self._names()]
        return [s for s in found if s is not None]

    def get(self, name: str) -> Stored:
        found = None
        if isinstance(name, str) and schedules.NAME.fullmatch(name):
            with self.reachable():
                found = self.read(name)
        if found is None:
            shown = name.encode("utf-8", "backslashreplace").decode() if isinstance(
                name, str) else repr(name)
            raise NotFound(f"no schedule named {shown!r} (`taskq schedule list` shows them)")
        return found

    def read(self, name: str) -> Stored | None:
        data = {k.decode(): v.decode() for k, v in self.client.hgetall(self.key(name)).items()}
        if "spec" not in data:
            return None
        return Stored(schedule=Schedule(**json.loads(data["spec"])),
                      source=data.get("source", "cli"), paused=data.get("paused") == "1",
                      next_run=data["next_run"], anchor=float(data["anchor"]),
                      created_at=data["created_at"],
                      last_run=float(data["last_run"]) if data.get("last_run") else None,
                      last_task=data.get("last_task") or None, runs=int(data.get("runs", 0)))

    def pause(self, name: str) -> Stored:
        self.get(name)
        with self.reachable():
            pipe = self.client.pipeline()
            pipe.hset(self.key(name), "paused", "1")
            pipe.zrem(self.due_key, name)
            pipe.execute()
        return self.get(name)

    def resume(self, name: str) -> Stored:
        """Unpause: the next tick is the first after now, so no burst of the ticks paused
        over; with catch_up once, one task for them first (when a tick fell in the pause)."""
        stored = self.get(name)
        if not stored.paused:
            return stored
        schedule, now = stored.schedule, self.now()
        next_run = schedules.next_after(schedule, now, stored.anchor)
        latest = schedules.latest_at(schedule, now, stored.anchor)
        if schedule.catch_up == "once" and latest is not None \
                and latest >= float(stored.next_run):
            next_run = latest  # due now: claimed and run once, as any tick
        with self.reachable():
            pipe = self.client.pipeline()
            pipe.hset(self.key(name), mapping={"paused": "0", "next_run": repr(next_run)})
            pipe.zadd(self.due_key, {name: next_run})
            pipe.execute()
        return self.get(name)

    def remove(self, name: str) -> None:
        """Remove a schedule, unless this config declares it (a worker would bring it back)."""
        self.get(name)
        if name in {s.name for s in self.settings.schedules}:
            raise Conflict(f"schedule {name!r} is declared in {self.settings.source}: remove "
                           "it there (or pause it)")
        with self.reachable():
            self._delete(name)

    def _delete(self, name: str) -> None:
        pipe = self.client.pipeline()
        pipe.delete(self.key(name))
        pipe.srem(self.names_key, name)
        pipe.zrem(self.due_key, name)
        pipe.execute()

    # The scheduler's side (taskq/periodic.py).

    def look(self) -> tuple[float, list[str], list[tuple[str, float]]]:
        """The server's time, the names of the schedules due by it, and the pending ticks
        claimed more than PENDING_STALE seconds before it (member, score): one round trip."""
        seconds, micros, due, stale = self.client.eval(
            _LOOK, 2, self.due_key, self.pending_key, repr(PENDING_STALE))
        pairs = [(stale[i].decode(), float(stale[i + 1])) for i in range(0, len(stale), 2)]
        return int(seconds) + int(micros) / 1e6, [n.decode() for n in due], pairs

    def claim(self, name: str, expected: str, next_run: float, tick: float | None,
              now: float) -> bool:
        return bool(self.client.eval(_CLAIM, 3, self.key(name), self.due_key, self.pending_key,
                                     name, expected, repr(next_run),
                                     "" if tick is None else repr(tick), repr(now)))

    def retake(self, member: str, score: float, now: float) -> bool:
        return bool(self.client.eval(_RETAKE, 1, self.pending_key, member, repr(score),
                                     repr(now)))

    def settle(self, name: str, tick: float, task_id: str | None, now: float) -> None:
        """The tick's task is queued (or cannot be: `task_id` None): no longer pending."""
        pipe = self.client.pipeline()
        pipe.zrem(self.pending_key, f"{name} {tick!r}")
        if task_id is not None and self.client.exists(self.key(name)):
            pipe.hset(self.key(name), mapping={"last_run": repr(now), "last_task": task_id})
            pipe.hincrby(self.key(name), "runs", 1)
        pipe.execute()

    def tick_task_id(self, stored: Stored, tick: float) -> str:
        """The id of a tick's task: the same for every scheduler, so a tick submitted twice
        (a claim taken over from a scheduler that had queued it after all) is refused."""
        seed = f"{self.store.prefix}\0{stored.schedule.name}\0{stored.created_at}\0{tick!r}"
        return str(uuid.uuid5(_IDS, seed))
