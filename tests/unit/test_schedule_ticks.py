"""Schedules' definitions and ticks: validation, intervals, cron in a time zone across
daylight-saving transitions. No server."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from taskq import config, schedules
from taskq.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def settings() -> config.Settings:
    return config.load(env={}, path=REPO / "config" / "celery.yaml")


def daily(settings: config.Settings, cron: str, zone: str) -> schedules.Schedule:
    found, problems = schedules.parse(settings, "s", {"type": "data", "cron": cron,
                                                      "timezone": zone,
                                                      "parameters": {"data": "x"}}, "s")
    assert found is not None, problems
    return found


def ticks(schedule: schedules.Schedule, start: datetime, count: int) -> list[datetime]:
    moment, out = start.timestamp(), []
    for _ in range(count):
        moment = schedules.next_after(schedule, moment, 0.0)
        out.append(datetime.fromtimestamp(moment, ZoneInfo(schedule.timezone)))
    return out


def test_a_daily_time_skipped_by_spring_forward_runs_once_at_the_shifted_hour(
        settings: config.Settings) -> None:
    # Given 02:30 every day in Paris, where 2026-03-29 02:00 jumps to 03:00
    schedule = daily(settings, "30 2 * * *", "Europe/Paris")
    # When the ticks around that night are computed
    found = ticks(schedule, datetime(2026, 3, 28, 12, tzinfo=ZoneInfo("Europe/Paris")), 3)
    # Then that day runs once, at 03:00 (02:30 does not exist), and the next at 02:30
    assert [t.strftime("%m-%d %H:%M") for t in found] == ["03-29 03:00", "03-30 02:30",
                                                          "03-31 02:30"]


def test_a_daily_time_repeated_by_fall_back_runs_once(settings: config.Settings) -> None:
    # Given 01:30 every day in New York, where 2026-11-01 01:00-02:00 happens twice
    schedule = daily(settings, "30 1 * * *", "America/New_York")
    # When the ticks around that night are computed
    found = ticks(schedule, datetime(2026, 10, 31, 12, tzinfo=ZoneInfo("America/New_York")), 3)
    # Then 1 November runs once (the first 01:30, daylight time), then a day apart
    assert [t.strftime("%m-%d %H:%M %Z") for t in found] == [
        "11-01 01:30 EDT", "11-02 01:30 EST", "11-03 01:30 EST"]
    assert found[1].timestamp() - found[0].timestamp() == 25 * 3600


def test_an_hourly_expression_runs_in_both_repeated_hours_of_fall_back(
        settings: config.Settings) -> None:
    # Given every hour in New York across the night the clocks go back
    schedule = daily(settings, "0 * * * *", "America/New_York")
    # When four ticks from 00:30 are computed
    found = ticks(schedule, datetime(2026, 11, 1, 0, 30, tzinfo=ZoneInfo("America/New_York")), 4)
    # Then they are an hour apart in real time, 01:00 coming twice (EDT, then EST)
    stamps = [t.timestamp() for t in found]
    assert [b - a for a, b in zip(stamps, stamps[1:], strict=False)] == [3600.0] * 3
    assert [t.strftime("%H:%M %Z") for t in found] == ["01:00 EDT", "01:00 EST", "02:00 EST",
                                                       "03:00 EST"]


def test_the_latest_tick_of_a_daily_time_skips_the_repeated_occurrence(
        settings: config.Settings) -> None:
    # Given 01:30 daily in New York, and a moment after the second 01:30 of 1 November
    schedule = daily(settings, "30 1 * * *", "America/New_York")
    after = datetime(2026, 11, 1, 3, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
    # When the last tick at or before it is asked for
    latest = schedules.latest_at(schedule, after, 0.0)
    # Then it is the first 01:30 (EDT), the one that ran
    assert latest is not None
    assert datetime.fromtimestamp(latest, ZoneInfo("America/New_York")).strftime(
        "%H:%M %Z") == "01:30 EDT"


def test_an_interval_ticks_on_its_anchor_grid(settings: config.Settings) -> None:
    # Given a 10 s interval anchored at 1000
    found, _ = schedules.parse(settings, "s", {"type": "data", "interval": 10,
                                               "parameters": {"data": "x"}}, "s")
    assert found is not None
    # Then the next tick after 1023 is 1030, the latest at 1030 is 1030, and none before
    assert schedules.next_after(found, 1023.0, 1000.0) == 1030.0
    assert schedules.next_after(found, 1030.0, 1000.0) == 1040.0
    assert schedules.latest_at(found, 1030.0, 1000.0) == 1030.0
    assert schedules.latest_at(found, 999.0, 1000.0) is None


@pytest.mark.parametrize(("change", "problem"), [
    ({"interval": 0}, "interval: must be a number of seconds from 1"),
    ({"interval": -5}, "interval: must be a number of seconds from 1"),
    ({"interval": float("nan")}, "interval: must be a number of seconds from 1"),
    ({"interval": float("inf")}, "interval: must be a number of seconds from 1"),
    ({"interval": 10 ** 30}, "interval: must be a number of seconds from 1"),
    ({"interval": True}, "interval: must be a number of seconds from 1"),
    ({"interval": "5"}, "interval: must be a number of seconds from 1"),
    ({"interval": None, "cron": "61 * * * *"}, "cron: not a cron expression"),
    ({"interval": None, "cron": "* * * *"}, "cron: not a cron expression"),
    ({"interval": None, "cron": "* * * * *\n"}, "cron: not a cron expression"),
    ({"interval": None, "cron": "* " * 500}, "cron: not a cron expression"),
    ({"interval": None, "cron": "* * * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"interval": None, "cron": "* * * * *", "timezone": "../../etc/passwd"},
     "unknown time zone"),
    ({"cron": "* * * * *"}, "give either cron or interval"),
    ({"type": "nope"}, "unknown task type 'nope'"),
    ({"catch_up": "always"}, "catch_up: must be skip or once"),
    ({"priority": "urgent"}, "priority: must be one of high, normal, low"),
    ({"parameters": {"data": 5}}, "s.parameters.data: must be a string"),
    ({"cronn": "x"}, "s.cronn: unknown key (did you mean 'cron'?)"),
])
def test_a_bad_schedule_names_its_problem(settings: config.Settings, change: dict[str, Any],
                                          problem: str) -> None:
    # Given a valid interval schedule with one thing changed
    raw = {"type": "data", "interval": 60, "parameters": {"data": "x"}, **change}
    raw = {k: v for k, v in raw.items() if v is not None}
    # When it is parsed
    found, problems = schedules.parse(settings, "s", raw, "s")
    # Then it is refused, naming what is wrong
    assert found is None
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize("name", ["", "a b", "-x", "x" * 65, "é", "a\x00", 5, "a\nb", "ab\n"])
def test_a_bad_schedule_name_is_refused(settings: config.Settings, name: Any) -> None:
    found, problems = schedules.parse(settings, name, {"type": "data", "interval": 5,
                                                       "parameters": {"data": "x"}}, "s")
    assert found is None
    assert "a schedule's name is 1 to 64" in problems[0]


def test_schedules_in_the_config_are_loaded_and_their_problems_listed(tmp_path: Path) -> None:
    # Given the shipped config with one good and one bad schedule
    raw = yaml.safe_load((REPO / "config" / "celery.yaml").read_text())
    raw["schedules"] = {"nightly": {"type": "email", "cron": "0 3 * * *",
                                    "timezone": "Europe/Paris",
                                    "parameters": {"to": "ops@example.com"}},
                        "broken": {"type": "data", "interval": -1}}
    path = tmp_path / "celery.yaml"
    path.write_text(yaml.safe_dump(raw))
    # When it is loaded, Then the bad one's problems are named with their paths
    with pytest.raises(ConfigError) as caught:
        config.load(env={}, path=path)
    assert "schedules.broken.interval: must be a number of seconds" in caught.value.message
    # And without the bad one, the good one is in the settings
    del raw["schedules"]["broken"]
    path.write_text(yaml.safe_dump(raw))
    loaded = config.load(env={}, path=path)
    assert [(s.name, s.type, s.cron, s.timezone) for s in loaded.schedules] == [
        ("nightly", "email_sending", "0 3 * * *", "Europe/Paris")]


@pytest.mark.parametrize("name", ["\udcff", "a\nb", "x" * 10_000])
def test_a_name_no_schedule_can_have_is_not_found_without_asking_redis(
        settings: config.Settings, name: str) -> None:
    from taskq.errors import NotFound
    from taskq.store.schedules import ScheduleStore

    class NoRedis:
        prefix, client = "t", None  # any call to Redis would fail with an AttributeError

    with pytest.raises(NotFound, match="no schedule named"):
        ScheduleStore(NoRedis(), settings).get(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("options", [
    ["--interval", "0"], ["--interval", "-1"], ["--interval", "nan"], ["--interval", "inf"],
    ["--interval", "1e999"], ["--interval", "99999999999"], ["--interval", "soon"],
    ["--cron", "not cron"], ["--cron", "99 * * * *"], ["--cron", "* * * * * *"],
    ["--cron", "* * * * *", "--timezone", "Nowhere/Land"], ["--cron", "* * * * *\x1b[2J"],
    ["--interval", "5", "--catch-up", "twice"], ["--interval", "5", "--priority", "urgent"],
    ["--interval", "5", "--params", "{"], [],
])
def test_schedule_add_with_hostile_input_is_one_line_and_exit_2(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        options: list[str]) -> None:
    from taskq import cli

    # Given the shipped config and a home where no broker runs
    for var in ("TASKQ_BROKER_URL", "TASKQ_RESULT_BACKEND", "TASKQ_TRACEBACK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TASKQ_CONFIG", str(REPO / "config" / "celery.yaml"))
    monkeypatch.setenv("TASKQ_HOME", str(tmp_path))
    # When a bad schedule is added
    code = cli._run(["schedule", "add", "x", "--type", "data", "--param", "data=x", *options])
    # Then it exits 2 with one line, and no broker was started for it
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "redis.sock").exists()


def test_schedule_add_of_an_unknown_type_names_it(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from taskq import cli

    monkeypatch.setenv("TASKQ_CONFIG", str(REPO / "config" / "celery.yaml"))
    monkeypatch.setenv("TASKQ_HOME", str(tmp_path))
    assert cli._run(["schedule", "add", "x", "--type", "emial", "--interval", "5"]) == 2
    assert capsys.readouterr().err == (
        "error: invalid schedule: schedule.type: unknown task type 'emial' "
        "(did you mean 'email'?)\n")
