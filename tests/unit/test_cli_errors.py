"""The CLI's error boundary: one line on stderr, the documented exit code, no traceback."""

from __future__ import annotations

import pytest

from taskq import cli


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    for var in ("TASKQ_CONFIG", "TASKQ_BROKER_URL", "TASKQ_RESULT_BACKEND", "TASKQ_TRACEBACK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TASKQ_HOME", str(tmp_path))
    cli._state["traceback"] = False


def run(*argv: str) -> int:
    return cli._run(list(argv))


def test_help_exits_0_and_lists_the_commands(capsys):
    assert run("--help") == 0
    out = capsys.readouterr().out
    for command in ("submit", "status", "worker", "up", "down", "demo", "config"):
        assert command in out


def test_invalid_config_exits_3_listing_every_problem(monkeypatch, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("key_prefx: x\nrecord_ttl: 5\n")
    monkeypatch.setenv("TASKQ_CONFIG", str(bad))
    assert run("config", "check") == 3
    err = capsys.readouterr().err
    assert err.startswith("error: invalid configuration in")
    assert "key_prefx: unknown key (did you mean 'key_prefix'?)" in err
    assert "record_ttl: must be ≥ 60" in err
    assert "Traceback" not in err


def test_config_check_of_the_shipped_config_exits_0(capsys):
    assert run("config", "check") == 0
    assert "configuration OK" in capsys.readouterr().err


def test_params_that_are_not_json_exit_2_before_any_connection(capsys):
    assert run("submit", "--type", "data", "--params", "{nope") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --params: not valid JSON")
    assert len(err.strip().splitlines()) == 1


def test_unknown_option_is_a_usage_error():
    assert run("submit", "--type", "data", "--colour", "red") == 2


def test_unreachable_backend_exits_7_naming_the_url_without_its_password(monkeypatch, capsys):
    # Given a broker and backend on a port where nothing listens
    monkeypatch.setenv("TASKQ_BROKER_URL", "amqp://guest:s3cret@127.0.0.1:1//")
    monkeypatch.setenv("TASKQ_RESULT_BACKEND", "redis://:s3cret@127.0.0.1:1/0")
    # When a command needs them
    code = run("status", "00000000-0000-0000-0000-000000000000")
    # Then it says which server is unreachable, once, with the password masked
    err = capsys.readouterr().err
    assert code == 7
    assert "result backend unreachable at redis://:***@127.0.0.1:1/0" in err
    assert "s3cret" not in err
    assert len(err.strip().splitlines()) == 1


def test_traceback_flag_re_raises_for_debugging(monkeypatch):
    bad_env = "amqp://127.0.0.1:1//"
    monkeypatch.setenv("TASKQ_BROKER_URL", bad_env)
    from taskq.errors import ConfigError

    with pytest.raises(ConfigError):
        run("--traceback", "status", "x")


def test_config_show_json_is_plain_json_with_masked_passwords(monkeypatch, capsys):
    import json

    monkeypatch.setenv("TASKQ_SMTP_URL", "smtps://me:hunter2@mail.example.com:465")
    assert run("config", "show", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["smtp"]["url"] == "smtps://me:***@mail.example.com:465"
    assert data["broker_url"] == "embedded"


def test_bench_with_fewer_than_one_run_exits_2_before_running_anything(capsys):
    assert run("bench", "--runs", "0") == 2
    assert capsys.readouterr().err == "error: --runs must be at least 1\n"
