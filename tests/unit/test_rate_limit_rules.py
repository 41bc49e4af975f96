"""Global rate limits in the config: a rate is a positive, finite, bounded number of tasks a
second, minute or hour, and a wrong one is a config error naming its path."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from rich.console import Console
from test_config import load_with, problems_of

from taskq.broker.queues import QueueInfo
from taskq.config.schema import per_second
from taskq.store import rate_limits
from taskq.term import tables

PATH = "task_types.email_sending.rate_limit"


@pytest.mark.parametrize(("text", "rate"), [
    ("10/s", 10.0), ("120/m", 2.0), ("1800/h", 0.5), ("0.5/s", 0.5), ("10000/s", 10000.0)])
def test_a_rate_is_read_as_tasks_a_second(text, rate):
    assert per_second(text) == rate


@pytest.mark.parametrize(("rate", "problem"), [
    ("0/s", "must be more than 0 tasks"),
    ("0.0/m", "must be more than 0 tasks"),
    ("-1/s", "must look like 10/s"),
    ("x/s", "must look like 10/s"),
    ("nan/s", "must look like 10/s"),
    ("10/d", "must look like 10/s"),
    ("1e9/s", "must look like 10/s"),
    ("10/s\n", "must look like 10/s"),
    ("20000/s", "must be at most 10000/s"),
    ("999999999999/h", "must be at most 10000/s"),
    (float("nan"), "must be a string"),
    (10, "must be a string"),
])
def test_a_wrong_rate_is_a_config_error_naming_its_path(tmp_path, rate, problem):
    found = problems_of(tmp_path, {"task_types": {"email_sending": {"rate_limit": rate}}})
    assert any(p.startswith(f"{PATH}: ") and problem in p for p in found), found


@pytest.mark.parametrize(("burst", "problem"), [
    (0, "must be ≥ 1"), (10**9, "must be ≤ 10000"), (2.5, "must be an integer")])
def test_a_wrong_burst_is_a_config_error_naming_its_path(tmp_path, burst, problem):
    found = problems_of(tmp_path, {"task_types": {"email_sending": {"rate_burst": burst}}})
    assert any(p.startswith("task_types.email_sending.rate_burst: ") and problem in p
               for p in found), found


def test_only_types_with_a_rate_limit_have_a_limit(tmp_path):
    # Given email_sending limited to 120 a minute, 5 at once
    settings = load_with(tmp_path, {"task_types": {"email_sending": {
        "rate_limit": "120/m", "rate_burst": 5}}})

    # When the limits are read
    limits = rate_limits.limits_of(settings)

    # Then only that type has one, one task every half second
    assert list(limits) == ["email_sending"]
    assert (limits["email_sending"].interval, limits["email_sending"].burst) == (0.5, 5)


def test_the_queues_table_marks_a_queue_whose_type_is_at_its_rate_limit():
    # Given two queues, one of a type at its limit now
    queues = [QueueInfo("tq.email_sending.normal", "email_sending", "normal", 12, 1,
                        rate_limited=True),
              QueueInfo("tq.data_processing.normal", "data_processing", "normal", 3, 1)]

    # When the table (queues, and watch's queue section) is drawn
    console = Console(record=True, width=120, force_terminal=False)
    console.print(tables.queues_table(queues, now=0.0))
    lines = console.export_text().splitlines()

    # Then only that queue's row says so
    assert any("email_sending" in line and "(rate-limited)" in line for line in lines)
    assert not any("data_processing" in line and "rate-limited" in line for line in lines)


@pytest.mark.parametrize("headers", [None, "not a mapping", ["task"], {"task": 7}])
def test_a_message_whose_headers_name_no_limited_task_is_not_held_back(tmp_path, headers):
    # Given a gate over email_sending limited to 1/s (no Redis: nothing may be asked)
    settings = load_with(tmp_path, {"task_types": {"email_sending": {"rate_limit": "1/s"}}})
    gate = rate_limits.RateGate(settings, client=None)

    # When an odd message is taken, Then it goes on (poison handling deals with it)
    assert gate.admit(SimpleNamespace(headers=headers))
    assert gate.next_open() is None


class _Unreachable:
    """A Redis client whose server is down."""

    def eval(self, *args, **kwargs):
        import redis

        raise redis.ConnectionError("connection refused")


def test_a_limited_task_waits_in_its_queue_while_the_buckets_cannot_be_read(tmp_path):
    # Given a gate over email_sending limited to 10/s, and the records' Redis down
    settings = load_with(tmp_path, {"task_types": {"email_sending": {"rate_limit": "10/s"}}})
    gate = rate_limits.RateGate(settings, client=_Unreachable())
    queues = [QueueInfo(name, "", "", 0, 0) for name in (
        "taskq.email_sending.high", "taskq.data_processing.high")]

    # When a task of that type is taken
    admitted = gate.admit(SimpleNamespace(headers={"task": "taskq.email_sending"}))

    # Then it goes back, and the type is skipped for about a second; other types are not
    assert not admitted
    assert 0 < gate.next_open() <= rate_limits.ON_ERROR_WAIT
    assert [q.name for q in gate.open(queues)] == ["taskq.data_processing.high"]
