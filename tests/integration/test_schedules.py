"""Schedules on real brokers: racing schedulers queue each tick once, a scheduler killed
mid-tick loses and duplicates nothing, pause and resume, and missed ticks' catch-up policy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from taskq.periodic import GRACE, Scheduler
from taskq.store.schedules import ScheduleStore, Stored

if TYPE_CHECKING:  # the fixture's class (conftest is not imported by name: several exist)
    from conftest import Deployment

pytestmark = pytest.mark.integration
STALL = Path(__file__).with_name("schedule_stall.py")


def schedules(dep: Deployment) -> ScheduleStore:
    return ScheduleStore(dep.runtime.store, dep.runtime.settings)


def add_every_second(dep: Deployment, name: str, catch_up: str = "skip") -> Stored:
    done = dep.cli("schedule", "add", name, "--type", "spin", "--param", "ms=1",
                   "--interval", "1", "--catch-up", catch_up)
    assert done.returncode == 0, done.stderr
    return schedules(dep).get(name)


def grid_ids(dep: Deployment, stored: Stored, until: float) -> dict[str, float]:
    """Every tick of a schedule (interval) from its first to `until`, by its task's id."""
    interval = stored.schedule.interval
    assert interval is not None
    found, k = {}, 1
    while stored.anchor + k * interval <= until:
        tick = stored.anchor + k * interval
        found[schedules(dep).tick_task_id(stored, tick)] = tick
        k += 1
    return found


def task_ids(dep: Deployment) -> set[str]:
    store = dep.runtime.store
    return {i.decode() for i in store.client.zrange(store.index_key, 0, -1)}


def wait_for(check: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)  # polling Redis


def start_scheduler(dep: Deployment, where: str) -> tuple[subprocess.Popen[bytes], Path]:
    marker = dep.home / f"stall-{where}-{time.monotonic_ns()}"
    proc = subprocess.Popen([sys.executable, str(STALL), where, str(marker)], env=dep.env,
                            cwd=dep.home, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dep.workers.append(proc)  # stopped (or killed) with the deployment's workers
    return proc, marker


def queued_messages(dep: Deployment) -> int:
    from taskq.broker.queues import queue_stats

    return sum(q.depth for q in queue_stats(dep.runtime))


@pytest.mark.brokers("embedded", "rabbitmq")
def test_two_workers_schedulers_queue_each_tick_of_a_one_second_interval_once(
        deployment: Deployment) -> None:
    # 12 ticks, not the 60: the claim is per tick, and 12 keep this test near 15 s.
    # Given two workers, each running its scheduler, and a schedule every second
    deployment.start_worker("--type", "spin", "--concurrency", "1")
    deployment.start_worker("--type", "spin", "--concurrency", "1")
    add_every_second(deployment, "race")
    # When they have raced for 12 ticks, and the schedule is paused
    wait_for(lambda: schedules(deployment).get("race").runs >= 12, what="12 runs")
    schedules(deployment).pause("race")
    stored = schedules(deployment).get("race")
    # Then every tick from the first to the last queued is one task, none missing or twice
    tasks = task_ids(deployment)
    expected = grid_ids(deployment, stored, max(grid_ids(deployment, stored,
                                                         float(stored.next_run)).values()))
    ran = [tick for task_id, tick in expected.items() if task_id in tasks]
    assert len(ran) >= 12
    assert tasks == {i for i, tick in expected.items() if tick <= max(ran)}
    assert stored.runs == len(tasks)
    # And each ran once
    for task_id in tasks:
        record = deployment.wait(task_id, timeout=30)
        assert (record.state, record.attempts) == ("SUCCESS", 1)


@pytest.mark.brokers("embedded", "rabbitmq")
@pytest.mark.parametrize("where", ["claimed", "queued"])
def test_a_scheduler_killed_mid_tick_loses_and_duplicates_nothing(
        deployment: Deployment, where: str) -> None:
    # Takes ~12 s: the takeover waits PENDING_STALE (5 s) after the claim.
    # Given a scheduler that stops mid-tick (after claiming it, or after queuing its task)
    stalled, marker = start_scheduler(deployment, where)
    stored = add_every_second(deployment, "killed")
    wait_for(marker.exists, what="the stalled tick")
    killed_tick = float(marker.read_text())
    # When it is SIGKILLed there, and another scheduler runs
    os.killpg(stalled.pid, signal.SIGKILL)
    stalled.wait()
    start_scheduler(deployment, "none")
    killed_id = schedules(deployment).tick_task_id(stored, killed_tick)
    store = schedules(deployment)
    wait_for(lambda: killed_id in task_ids(deployment)
             and not store.client.zcard(store.pending_key)
             and store.get("killed").runs >= 4, timeout=40, what="the takeover")
    store.pause("killed")
    deployment.stop_workers()
    # Then the killed tick's task was queued once, and every tick up to the last is a task
    tasks = task_ids(deployment)
    last = max(t for i, t in grid_ids(deployment, stored, store.now()).items() if i in tasks)
    expected = {i for i, t in grid_ids(deployment, stored, last).items()}
    assert tasks == expected
    # And each has exactly one message (no worker consumes them here)
    assert queued_messages(deployment) == len(tasks)


@pytest.mark.parametrize("catch_up", ["skip", "once"])
def test_pause_stops_the_ticks_and_resume_goes_on_without_a_burst(
        deployment: Deployment, catch_up: str) -> None:
    # Given a scheduler and a schedule every second that has run twice
    _, ready = start_scheduler(deployment, "none")
    stored = add_every_second(deployment, "paused", catch_up)
    store = schedules(deployment)
    wait_for(lambda: store.get("paused").runs >= 2, what="2 runs")
    # When it is paused for 3.5 s (3 ticks), then resumed
    store.pause("paused")
    paused_at = store.now()
    wait_for(lambda: store.now() > paused_at + 3.5, what="3.5 s of pause")
    before = task_ids(deployment)
    store.resume("paused")
    resumed_at = store.now()
    wait_for(lambda: store.get("paused").runs >= len(before) + 3, what="3 runs after resume")
    store.pause("paused")
    # Then no tick of the pause was queued while paused
    ticks = {i: t for i, t in grid_ids(deployment, stored, store.now()).items()}
    assert not [i for i in before if paused_at < ticks[i]]
    # And after it: none of the paused ticks (skip), or the latest of them once (once)
    tasks = task_ids(deployment)
    in_pause = sorted(ticks[i] for i in tasks if paused_at < ticks[i] <= resumed_at)
    assert len(in_pause) == (1 if catch_up == "once" else 0)
    # And the ticks after the resume are each queued once, without a gap
    after = sorted(ticks[i] for i in tasks if ticks[i] > resumed_at)
    assert len(after) >= 2
    assert after == [t for t in ticks.values() if resumed_at < t <= after[-1]]


@pytest.mark.parametrize(("catch_up", "expected"), [("skip", 0), ("once", 1)])
def test_ticks_missed_while_no_scheduler_ran_follow_the_catch_up_policy(
        deployment: Deployment, catch_up: str, expected: int) -> None:
    # Given a schedule every 10 s whose last six ticks passed with no scheduler running
    done = deployment.cli("schedule", "add", "missed", "--type", "spin", "--param", "ms=1",
                          "--interval", "10", "--catch-up", catch_up)
    assert done.returncode == 0, done.stderr
    store = schedules(deployment)
    now = store.now()
    anchor = now - 60 - GRACE - 2.5  # the latest tick is GRACE + 2.5 s late: missed
    store.client.hset(store.key("missed"), mapping={"anchor": repr(anchor),
                                                    "next_run": repr(anchor + 10)})
    store.client.zadd(store.due_key, {"missed": anchor + 10})
    # When a scheduler runs two passes
    scheduler = Scheduler(deployment.runtime)
    queued = scheduler.run_once() + scheduler.run_once()
    # Then it queued nothing (skip) or one task for the latest missed tick (once)
    stored = store.get("missed")
    assert queued == expected
    assert task_ids(deployment) == ({store.tick_task_id(stored, anchor + 60)}
                                    if expected else set())
    # And the next tick is the first after now, on the schedule's grid
    assert float(stored.next_run) == anchor + 70


def test_a_schedule_of_the_config_is_brought_in_by_a_worker_and_runs(
        deployment: Deployment) -> None:
    import yaml

    # Given a config declaring a schedule every second, and one added earlier by the config
    # that it no longer declares
    path = Path(deployment.env["TASKQ_CONFIG"])
    raw = yaml.safe_load(path.read_text())
    raw["schedules"] = {"every_second": {"type": "spin", "parameters": {"ms": 1},
                                         "interval": 1, "priority": "high"}}
    path.write_text(yaml.safe_dump(raw))
    deployment._runtime = None  # read the config again
    store = schedules(deployment)
    old = dict(raw["schedules"]["every_second"], parameters={"ms": 1})
    from taskq import schedules as definitions

    gone, _ = definitions.parse(deployment.runtime.settings, "gone", old, "s")
    assert gone is not None
    store.add(gone, source="config")
    assert deployment.cli_json("schedule", "list")[0]["name"] == "gone"  # no worker yet
    # When a worker starts
    deployment.start_worker("--type", "spin")
    wait_for(lambda: store.read("every_second") is not None
             and store.get("every_second").runs >= 2, what="2 runs")
    # Then the config's schedule runs, at its priority, and the undeclared one is gone
    listed = deployment.cli_json("schedule", "list")
    assert [(s["name"], s["source"], s["priority"]) for s in listed] == [
        ("every_second", "config", "high")]
    record = deployment.wait(listed[0]["last_task"], timeout=30)
    assert (record.state, record.priority) == ("SUCCESS", "high")
    # And the CLI will not remove it (a worker would bring it back): exit 8
    removed = deployment.cli("schedule", "remove", "every_second")
    assert removed.returncode == 8
    assert removed.stderr.startswith("error: schedule 'every_second' is declared in ")
