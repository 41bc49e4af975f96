"""The scheduler: a thread in every worker's main process that submits each schedule's due
ticks. Any number run at once; a tick is claimed in Redis before it is submitted (only one
scheduler's claim succeeds), its task id is the tick's own, and a claim whose scheduler
died before the task was queued is taken over by another (taskq/store/schedules.py)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from taskq import schedules
from taskq.broker.thread_step import ThreadStep
from taskq.errors import BrokerUnavailable, Conflict, TaskqError
from taskq.store.schedules import PENDING_STALE

if TYPE_CHECKING:
    from taskq.runtime import Runtime
    from taskq.store.schedules import ScheduleStore, Stored

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

POLL = 0.2  # seconds between looks at the due set
# A tick more than this late was missed (no scheduler ran at its time): its schedule's
# catch_up policy decides. Ticks late by less (a busy machine) are each still run.
GRACE = 5.0
log = logging.getLogger("taskq.periodic")


class Scheduler:
    """Submits due ticks, once each across every scheduler of the deployment."""

    def __init__(self, runtime: Runtime) -> None:
        from taskq.store.schedules import ScheduleStore

        self.runtime = runtime
        self.store: ScheduleStore = ScheduleStore(runtime.store, runtime.settings)

    def run_once(self) -> int:
        """One pass: claim and submit every due tick, take over stale claims; returns how
        many tasks it queued."""
        now, due, stale = self.store.look()
        queued = 0
        for name in due:
            stored = self.store.read(name)
            if stored is not None and not stored.paused:
                queued += self._advance(stored, now)
        for member, score in stale:
            if self.store.retake(member, score, now):
                name, _, tick = member.rpartition(" ")
                stored = self.store.read(name)
                if stored is None:
                    self.store.settle(name, float(tick), None, now)
                else:
                    queued += self.fire(stored, float(tick))
        return queued

    def _advance(self, stored: Stored, now: float) -> int:
        schedule, tick = stored.schedule, float(stored.next_run)
        if tick > now:
            return 0
        if now - tick <= GRACE:
            chosen: float | None = tick
            following = schedules.next_after(schedule, tick, stored.anchor)
        else:  # missed: no scheduler ran at its time
            latest = schedules.latest_at(schedule, now, stored.anchor)
            following = schedules.next_after(schedule, now, stored.anchor)
            on_time = latest is not None and now - latest <= GRACE
            chosen = latest if on_time or schedule.catch_up == "once" else None
            if chosen is None:
                log.info("schedule %s: skipped ticks missed since %s (catch_up: skip)",
                         schedule.name, tick)
        if not self.store.claim(schedule.name, stored.next_run, following, chosen, now):
            return 0  # another scheduler claimed it
        return 0 if chosen is None else self.fire(stored, chosen)

    def fire(self, stored: Stored, tick: float) -> int:
        """Submit a claimed tick's task under the tick's id; settle the claim once the task
        is known queued. Left pending (for a retake) when that is not known."""
        from taskq.request import SubmitRequest
        from taskq.submit import submit

        schedule = stored.schedule
        task_id = self.store.tick_task_id(stored, tick)
        request = SubmitRequest(type=schedule.type, priority=schedule.priority,
                                params=dict(schedule.parameters))
        try:
            submit(self.runtime, request, task_id=task_id)
        except Conflict:  # the id is taken: queued by an earlier holder of this claim?
            if not self._recorded(task_id):
                return 0  # its submit is under way, or died before its record: retake later
            self.store.settle(schedule.name, tick, task_id, self.store.now())
            return 0
        except BrokerUnavailable as exc:
            log.warning("schedule %s: tick %r not queued (retried in %g s): %s",
                        schedule.name, tick, PENDING_STALE, exc.message)
            return 0
        except TaskqError as exc:  # e.g. its type or parameters no longer fit the config
            log.error("schedule %s: tick %r dropped: %s", schedule.name, tick, exc.message)
            self.store.settle(schedule.name, tick, None, self.store.now())
            return 0
        self.store.settle(schedule.name, tick, task_id, self.store.now())
        log.info("schedule %s: queued task %s", schedule.name, task_id)
        return 1

    def _recorded(self, task_id: str) -> bool:
        return self.runtime.store.client.hget(self.runtime.store.key(task_id),
                                              "state") is not None

    def loop(self, stop: threading.Event) -> None:
        """Bring in the config's schedules, then run passes until `stop` is set. A pass that
        fails (Redis away) is tried again at the next; the failure is logged once."""
        synced, failing = False, False
        while not stop.wait(POLL):
            try:
                if not synced:
                    self.store.sync(remove_undeclared=True)
                    synced = True
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - never kills the worker; tried again
                if not failing:
                    log.warning("scheduler pass failed (tried again every %g s): %s", POLL,
                                exc)
                failing = True
                continue
            if failing:
                log.info("scheduler passes succeed again")
            failing = False


class PeriodicStep(ThreadStep):
    """Worker (consumer) step: runs a Scheduler in a thread of the worker's main process."""

    thread_name = "taskq-periodic"

    def loop(self, runtime: Runtime, stop: threading.Event) -> None:
        Scheduler(runtime).loop(stop)
