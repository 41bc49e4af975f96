"""The Redis lease settings, checked without a server."""

from __future__ import annotations

import json
from pathlib import Path

from taskq import config
from taskq.broker import recovery
from taskq.broker.app import celery_config
from taskq.config.schema import MAX_SECONDS

REPO = Path(__file__).resolve().parents[2]


def _settings():
    return config.load(env={}, path=REPO / "config" / "celery.yaml")


def test_kombu_never_hands_out_a_held_message_before_the_longest_backoff_and_run():
    settings = _settings()
    longest_run = max(t.time_limit or 0 for t in settings.task_types.values())
    options = celery_config(settings, "redis://")["broker_transport_options"]
    assert options["visibility_timeout"] > MAX_SECONDS + longest_run


def test_a_lease_is_renewed_several_times_before_it_runs_out():
    assert recovery.LEASE >= 4 * recovery.RENEW_EVERY


def test_only_messages_routed_to_a_queue_of_the_deployment_are_restored():
    raw = json.dumps([{"body": "..."}, "tq1.spin.low", "tq1.spin.low"]).encode()
    assert recovery._routing_key(raw).startswith("tq1.")
    assert recovery._routing_key(b"not json") == ""
    assert recovery._routing_key(json.dumps([{}]).encode()) == ""
