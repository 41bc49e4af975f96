"""Backoff arithmetic and queue naming: plain functions, no server."""

from __future__ import annotations

from pathlib import Path

from taskq import config, topology
from taskq.config import RetryPolicy
from taskq.retry import backoff_delay, exhausted


def test_backoff_doubles_from_the_first_delay_up_to_the_cap():
    policy = RetryPolicy(max_retries=6, backoff=2, backoff_max=20, jitter=False)
    assert [backoff_delay(policy, n) for n in range(5)] == [2, 4, 8, 16, 20]


def test_jitter_draws_uniformly_below_the_backoff():
    policy = RetryPolicy(max_retries=3, backoff=4, backoff_max=60, jitter=True)
    assert backoff_delay(policy, 2, rand=lambda: 0.5) == 8.0
    assert backoff_delay(policy, 2, rand=lambda: 0.0) == 0.0


def test_retries_are_exhausted_after_max_retries():
    policy = RetryPolicy(max_retries=2)
    assert [exhausted(policy, n) for n in range(4)] == [False, False, True, True]


def settings() -> config.Settings:
    path = Path(__file__).resolve().parents[2] / "config" / "celery.yaml"
    return config.load(env={"TASKQ_HOME": "/tmp/taskq-unit"}, path=path)


def test_workers_read_every_high_queue_before_any_normal_one():
    s = settings()
    queues = topology.consumed_queues(s, ["data_processing", "email_sending"], ["low", "high"])
    assert queues == ["taskq.data_processing.high", "taskq.email_sending.high",
                      "taskq.data_processing.low", "taskq.email_sending.low"]


def test_queue_names_parse_back_to_type_and_priority():
    s = settings()
    assert topology.parse_queue(s, "taskq.email_sending.high") == ("email_sending", "high")
    assert topology.parse_queue(s, "other.email_sending.high") is None
    assert topology.parse_queue(s, "taskq.nope.high") is None


def test_a_task_is_outranked_by_every_type_its_worker_reads_at_higher_priorities_only():
    s = settings()
    types, priorities = ["data_processing", "email_sending"], ["high", "low"]
    assert topology.outranking(s, types, priorities, "taskq.data_processing.low") == [
        ("data_processing", "high"), ("email_sending", "high")]
    # (normal is above low, but this worker does not read it; nothing is above high)
    assert topology.outranking(s, types, priorities, "taskq.email_sending.high") == []
    assert topology.outranking(s, types, ["normal", "low"], "taskq.data_processing.low") == [
        ("data_processing", "normal"), ("email_sending", "normal")]
    assert topology.outranking(s, types, priorities, "celery") == []


def test_a_queue_ranks_by_its_priority_and_a_foreign_one_ranks_lowest():
    s = settings()
    assert topology.priority_rank(s, "taskq.email_sending.high") == 0
    assert topology.priority_rank(s, "taskq.data_processing.low") == 2
    assert topology.priority_rank(s, "celery") == 2
