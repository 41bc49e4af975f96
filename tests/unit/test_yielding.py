"""The yield memory of a worker: one yield per task unless the yield helped."""

from __future__ import annotations

from types import SimpleNamespace

from taskq.yielding import YieldMemory

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
