"""Runs a Celery worker for a profile, or for chosen priorities and task types."""

from __future__ import annotations

import gc
import importlib
import logging
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from taskq import topology
from taskq.config import Settings, resolve_type
from taskq.errors import TaskqError, UsageError, did_you_mean

if TYPE_CHECKING:
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker consumes: its queues in the order it reads them."""

    name: str
    types: tuple[str, ...]
    priorities: tuple[str, ...]
    queues: list[str]
    concurrency: int


def plan(settings: Settings, profile: str | None = None, priorities: list[str] | None = None,
         types: list[str] | None = None, concurrency: int | None = None) -> WorkerPlan:
    """A profile's layout, with --queues/--type/--concurrency overriding it."""
    name, chosen_types, chosen_prios, conc = "worker", list(settings.task_types), \
        list(settings.priorities), 2
    if profile is not None:
        if profile not in settings.workers:
            raise UsageError(f"unknown worker profile {profile!r}"
                             f"{did_you_mean(profile, list(settings.workers))}; "
                             f"known: {', '.join(settings.workers)}")
        p = settings.workers[profile]
        name, chosen_types, chosen_prios, conc = p.name, list(p.types), list(p.priorities), \
            p.concurrency
    if priorities:
        chosen_prios = [_priority(settings, q) for q in priorities]
    if types:
        chosen_types = [resolve_type(settings, t).name for t in types]
    if concurrency is not None and concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    ordered = tuple(p for p in settings.priorities if p in chosen_prios)
    return WorkerPlan(name=name, types=tuple(chosen_types), priorities=ordered,
                      queues=topology.consumed_queues(settings, chosen_types, ordered),
                      concurrency=concurrency or conc)


def _priority(settings: Settings, name: str) -> str:
    try:
        return settings.resolve_priority(name)
    except KeyError:
        raise UsageError(f"unknown queue {name!r} in --queues"
                         f"{did_you_mean(name, list(settings.priorities))}; "
                         f"use {', '.join(settings.priorities)}") from None


def run(runtime: Runtime, worker_plan: WorkerPlan, loglevel: str | None = None,
        events: bool = False) -> None:
    """Run the worker in this process until it is stopped: SIGTERM (warm shutdown) and SIGQUIT
    (cold) return, Ctrl-C raises KeyboardInterrupt; an exit of its own is an error."""
    _import_frozen()
    from celery import signals

    from taskq import logs
    from taskq.broker.heartbeat import Heartbeat
    from taskq.broker.mover import DueMover
    from taskq.periodic import PeriodicStep

    settings = runtime.settings
    signals.setup_logging.connect(
        lambda **_: logs.configure(settings, loglevel), weak=False)
    app = runtime.celery
    app.taskq_plan = worker_plan  # type: ignore[attr-defined]
    app.steps["consumer"].add(Heartbeat)
    app.steps["consumer"].add(PeriodicStep)  # this worker's scheduler (taskq/periodic.py)
    app.steps["consumer"].add(DueMover)  # delayed tasks to their queues when due
    as_root = _advise_against_root()
    worker = app.Worker(
        hostname=f"{worker_plan.name}.{os.getpid()}@{socket.gethostname()}",
        queues=worker_plan.queues, concurrency=worker_plan.concurrency,
        pool="taskq.broker.pool:TaskPool",  # prefork, keeping a task handed over at a stop
        optimization="fair", without_mingle=True, without_gossip=True,
        loglevel=loglevel or settings.log_level, quiet=True, task_events=events or None,
    )
    if as_root:
        logging.getLogger("taskq.worker").warning(ROOT_ADVICE)
    requested: list[str] = []  # the signal that asked the worker to stop, if one did
    signals.worker_shutting_down.connect(lambda sig, **_: requested.append(sig), weak=False)
    worker.start()
    if requested and requested[0] == "SIGINT":
        raise KeyboardInterrupt  # Ctrl-C: exit 130, as every command
    if worker.exitcode and not requested:
        raise TaskqError(f"worker {worker_plan.name} stopped with exit code {worker.exitcode}")


# What a worker imports before it forks its pool (the app, the worker's steps, the pool).
START_UP_MODULES = ("celery.signals", "taskq.broker.app", "taskq.logs",
                    "taskq.broker.heartbeat", "taskq.broker.mover", "taskq.periodic",
                    "taskq.broker.pool", "celery.apps.worker",
                    "celery.worker.components", "celery.worker.consumer")


def _import_frozen() -> None:
    """Import the worker's modules with garbage collection off, then freeze their objects.
    Celery collects garbage before forking each pool process (so that no garbage holding a
    connection is finalised in both processes); with the modules' objects frozen (they live
    as long as the worker), those collections scan only what was made since (the app, its
    connections), not every object: ~20 ms each here, and as much for the collections the
    imports themselves set off. The pool processes inherit the objects frozen, as the gc
    module advises before a fork: their collections leave the shared pages unwritten.
    Nothing connects before the freeze, so no garbage holding a connection is frozen."""
    gc.disable()
    try:
        for name in START_UP_MODULES:
            importlib.import_module(name)
    finally:
        gc.freeze()
        gc.enable()


ROOT_ADVICE = ("taskq worker: running as root; a task's code runs with every privilege. Run "
               "workers as an unprivileged user (e.g. User= in a systemd unit).")


def _advise_against_root() -> bool:
    """Whether this worker runs as root; if so, Celery's SecurityWarning is silenced (it
    tells the user to pass a --uid option taskq worker does not have): taskq's ROOT_ADVICE
    is logged instead, once logging is set up."""
    if os.geteuid() != 0:
        return False
    import warnings

    from celery.exceptions import SecurityWarning

    warnings.filterwarnings("ignore", category=SecurityWarning)
    return True
