"""A worker that still beats but whose main loop has stopped turning is stalled, not online."""

from __future__ import annotations

from taskq.store.heartbeats import GONE_AFTER, STALLED_AFTER
from taskq.store.workers import _info

NOW = 1_000_000.0


def _state(heartbeat_age: float, loop_age: float | None, state: str = "online") -> str:
    data = {"hostname": "worker.1@a", "state": state, "heartbeat_at": str(NOW - heartbeat_age)}
    if loop_age is not None:
        data["loop_at"] = str(NOW - loop_age)
    return _info(data, {}, NOW).state


def test_a_worker_whose_loop_turned_lately_is_online():
    assert _state(1, STALLED_AFTER - 1) == "online"


def test_a_beating_worker_whose_loop_has_not_turned_is_stalled():
    assert _state(1, STALLED_AFTER + 1) == "stalled"


def test_a_worker_without_a_heartbeat_is_gone_whatever_its_loop_did():
    assert _state(GONE_AFTER + 1, STALLED_AFTER + 1) == "gone"


def test_a_stopped_worker_stays_stopped():
    assert _state(GONE_AFTER + 1, STALLED_AFTER + 1, state="stopped") == "stopped"


def test_a_worker_that_does_not_report_its_loop_is_judged_by_its_heartbeat():
    assert _state(1, None) == "online"
