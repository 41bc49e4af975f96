"""Global rate limits: a type's tasks start at its configured rate however many workers take
them, and the other types on the same workers are not held up."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from taskq import bulk, submit
from taskq.api import metrics
from taskq.request import SubmitRequest

pytestmark = pytest.mark.integration

RATE = 20  # tasks a second, across every worker
BURST = 4  # late workers (a loaded machine) lose no tokens while under 3 intervals late
# 100 tasks at 20/s take 5 s: long enough that start-up and the burst weigh little in the
# measured rate, short enough for the suite (twice, once per broker).
PACED = 100
OTHERS = 30
WORKERS = 3
TASK_MS = 10
PACED_MS = 1  # the limited tasks are about their rate, not their work: they take little


def _add_paced_type(deployment, rate: int = RATE) -> None:
    """A `paced` type (spin, limited to `rate`/s with a burst of BURST) in the deployment's
    config, before anything reads it."""
    path = Path(deployment.env["TASKQ_CONFIG"])
    raw = yaml.safe_load(path.read_text())
    raw["task_types"]["paced"] = dict(raw["task_types"]["spin"], rate_limit=f"{rate}/s",
                                      rate_burst=BURST)
    path.write_text(yaml.safe_dump(raw))


def _times(deployment, ids: list[str], field: str) -> list[float]:
    store = deployment.runtime.store
    pipe = store.client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hget(store.key(task_id), field)
    return sorted(float(at) for at in pipe.execute() if at is not None)


def _submit(deployment, type_name: str, count: int, ms: float = TASK_MS) -> list[str]:
    settings = deployment.runtime.settings
    records = [submit.prepare(settings, SubmitRequest(type=type_name, params={"ms": ms}))
               for _ in range(count)]
    return [record.id for record in bulk.submit_all(deployment.runtime, records)]


def _run_all(deployment, ids: list[str]) -> None:
    for task_id in ids:
        assert deployment.wait(task_id, timeout=60).state == "SUCCESS"


def _took(deployment, ids: list[str]) -> float:
    """Seconds from the first submit of `ids` to the last finish."""
    return (max(_times(deployment, ids, "finished_at"))
            - min(_times(deployment, ids, "submitted_at")))


@pytest.mark.brokers("embedded", "rabbitmq")
def test_a_limited_type_runs_at_its_rate_across_workers_and_others_are_not_slowed(
        deployment):
    # Given three one-process workers serving a type limited to 20/s and an unlimited one,
    # and how long the unlimited one's tasks take on them alone
    _add_paced_type(deployment)
    for _ in range(WORKERS):
        deployment.start_worker("--concurrency", "1", "--type", "paced,spin")
    alone = _submit(deployment, "spin", OTHERS)
    _run_all(deployment, alone)

    # When a backlog of the limited type is queued, then as many tasks of the other type
    paced = _submit(deployment, "paced", PACED, ms=PACED_MS)
    others = _submit(deployment, "spin", OTHERS)
    _run_all(deployment, paced + others)

    # Then the limited tasks started at 20/s (within 10%), the burst aside
    started = _times(deployment, paced, "started_at")
    rate = (len(started) - BURST) / (started[-1] - started[0])
    assert abs(rate - RATE) <= RATE * 0.1, f"{rate:.2f}/s"
    # And the other type's tasks did not wait behind them: all were done before the last
    # limited one started (had the limited tasks held the fetch or the processes while over
    # their limit, the others would have waited out the backlog's 5 s), in about the time
    # they took alone (a generous bound: the machine is shared, and the limited tasks that
    # do run take their share of the processes: on a loaded machine a 1 ms task costs tens
    # of ms of a process)
    assert max(_times(deployment, others, "finished_at")) < started[-1]
    assert _took(deployment, others) < 2 * _took(deployment, alone) + 1.0


@pytest.mark.brokers("embedded", "rabbitmq")
def test_types_queues_and_the_metrics_show_the_limit_and_its_use(deployment):
    # Given a type limited to 5/s, and a worker that ran a backlog of its tasks (2 s)
    _add_paced_type(deployment, rate=5)
    deployment.start_worker("--concurrency", "1", "--type", "paced")
    _run_all(deployment, _submit(deployment, "paced", 10))

    # When a user lists the types and the queues, and Prometheus scrapes the metrics
    found = {t["name"]: t for t in deployment.cli_json("types")}
    queues = {q["name"].rsplit(".", 2)[-2]: q for q in deployment.cli_json("queues")}
    scraped = metrics.render(metrics.registry_for(deployment.runtime)).decode()

    # Then the limited type shows its limit, its burst, its rate now and the tasks held back
    # (the worker took the backlog faster than the limit: some went back to their queue)
    usage = found["paced"]["rate"]
    assert (usage["limit"], usage["burst"]) == ("5/s", BURST)
    assert 0 < usage["current_per_second"] <= 5
    assert usage["held_back"] > 0
    assert found["spin"]["rate"] is None
    assert queues["paced"]["rate_limited"] in (True, False)
    assert queues["spin"]["rate_limited"] is None
    assert 'taskq_rate_limit_per_second{type="paced"} 5.0' in scraped
    assert 'taskq_rate_per_second{type="paced"} ' in scraped
    assert 'taskq_rate_held_back_total{type="paced"} ' in scraped
    assert 'type="spin"' not in scraped.split("taskq_rate_limit_per_second", 1)[1]


@pytest.mark.brokers("embedded", "rabbitmq")
def test_priority_still_holds_within_a_limited_type(deployment):
    # Given two workers serving a type limited to 5/s, busy with a backlog of its low tasks
    _add_paced_type(deployment, rate=5)
    for _ in range(2):
        deployment.start_worker("--concurrency", "1", "--type", "paced")
    settings = deployment.runtime.settings
    lows = [submit.prepare(settings, SubmitRequest(type="paced", priority="low",
                                                   params={"ms": TASK_MS}))
            for _ in range(15)]
    low_ids = [record.id for record in bulk.submit_all(deployment.runtime, lows)]
    deployment.wait(low_ids[BURST], timeout=30)  # the burst is spent: the type is limited

    # When a high task of that type is queued
    high = deployment.submit("paced", priority="high", ms=TASK_MS)
    started_high = deployment.wait(high.id, timeout=30).started_at

    # Then it is the next of its type to start: at most one low task (taken with the token
    # before it was queued) starts after it was submitted and before it
    _run_all(deployment, low_ids)
    between = [at for at in _times(deployment, low_ids, "started_at")
               if high.submitted_at <= at < started_high]
    assert len(between) <= 1, between
