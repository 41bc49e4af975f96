"""The yield memory of a worker: one yield per task unless the yield helped."""

from __future__ import annotations

from types import SimpleNamespace

from taskq.broker.yielding import YieldMemory, at_or_above

QUEUES = [SimpleNamespace(name=name) for name in ("t.high", "t.normal", "t.low")]


def test_a_task_taken_back_first_after_its_yield_runs_without_yielding_again():
    # Given a worker whose low task yielded
    memory = YieldMemory()
    memory.taken("low")
    memory.gave_back("low", "t.low")
    # When the next message it takes is that task again
    # Then it runs without yielding
    assert memory.taken("low") is True


def test_a_task_taken_back_after_a_higher_one_may_yield_again():
    # Given a worker whose low task yielded, and which then took a high task
    memory = YieldMemory()
    memory.gave_back("low", "t.low")
    memory.taken("high")
    # When it takes the low task again
    # Then that task may yield again (its yield helped)
    assert memory.taken("low") is False


def test_while_a_yield_waits_the_worker_reads_only_the_queues_above_it():
    # Given a worker whose normal task just yielded
    memory = YieldMemory(wait=60)
    memory.gave_back("task", "t.normal")
    # Then it reads only the high queue
    assert [q.name for q in memory.above(QUEUES)] == ["t.high"]
    # And once it takes a message, every queue again
    memory.taken("high")
    assert memory.above(QUEUES) == QUEUES


def test_a_yield_waits_no_longer_than_its_window():
    # Given a worker whose low task yielded with no time to wait
    memory = YieldMemory(wait=0)
    memory.gave_back("task", "t.low")
    # Then it reads every queue at once
    assert memory.above(QUEUES) == QUEUES


READ = [SimpleNamespace(name=name) for name in (
    "t.high", "u.high", "t.normal", "u.normal", "t.low", "u.low")]


def names(queues):
    return [queue.name for queue in queues]


def test_while_a_normal_task_is_handed_over_the_worker_takes_nothing_lower():
    # Given a worker that took a normal task no process has accepted yet
    # Then it reads every high and normal queue, and no low one
    assert names(at_or_above(READ, ["u.normal"])) == [
        "t.high", "u.high", "t.normal", "u.normal"]


def test_the_highest_task_handed_over_decides_what_the_worker_takes():
    # Given a worker handing over a low task and a high one
    # Then it reads only the high queues
    assert names(at_or_above(READ, ["t.low", "t.high"])) == ["t.high", "u.high"]


def test_with_nothing_handed_over_the_worker_reads_every_queue():
    assert at_or_above(READ, []) == READ


def test_a_queue_the_starvation_guard_reads_a_priority_up_counts_there():
    # Given a worker that reads t.low before the normal queues (its oldest task waited too
    # long) and hands over a normal task
    order = [SimpleNamespace(name=name) for name in ("t.high", "t.low", "t.normal", "u.low")]
    # Then it still reads t.low (read as normal), not u.low
    assert names(at_or_above(order, ["t.normal"])) == ["t.high", "t.low", "t.normal"]
