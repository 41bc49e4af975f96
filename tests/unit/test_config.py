"""Loading config/celery.yaml: defaults, environment overrides, and every problem named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from taskq import config
from taskq.errors import ConfigError
from taskq.urls import mask_url

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "celery.yaml"


def load_with(tmp_path: Path, changes: dict, env: dict | None = None) -> config.Settings:
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    _merge(raw, changes)
    path = tmp_path / "celery.yaml"
    path.write_text(yaml.safe_dump(raw))
    return config.load(env={"TASKQ_HOME": str(tmp_path), **(env or {})}, path=path)


def _merge(into: dict, changes: dict) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def problems_of(tmp_path: Path, changes: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_with(tmp_path, changes)
    return caught.value.problems


def test_shipped_config_loads_with_the_embedded_broker(tmp_path):
    settings = load_with(tmp_path, {})
    assert settings.embedded
    assert settings.priorities == ("high", "normal", "low")
    assert set(settings.task_types) == {"data_processing", "email_sending", "file_processing"}
    assert set(settings.workers) == {"priority", "data", "email", "file"}
    assert settings.resolve_type("email").name == "email_sending"


def test_environment_overrides_broker_backend_smtp_and_files_root(tmp_path):
    settings = load_with(tmp_path, {}, env={
        "TASKQ_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
        "TASKQ_RESULT_BACKEND": "redis://127.0.0.1:6379/3",
        "TASKQ_SMTP_URL": "smtps://user:pw@mail.example.com:465",
        "TASKQ_FILES_ROOT": str(tmp_path / "files")})
    assert not settings.embedded
    assert settings.result_backend == "redis://127.0.0.1:6379/3"
    assert settings.smtp.url == "smtps://user:pw@mail.example.com:465"
    assert settings.files_root == tmp_path / "files"


def test_every_problem_is_listed_with_its_path(tmp_path):
    problems = problems_of(tmp_path, {
        "task_types": {"email_sending": {"retry": {"max_retries": -1, "backof": 2}}},
        "workers": {"email": {"types": ["emails"], "priorities": ["urgent"]}},
        "smtp": {"url": "http://mail"},
    })
    assert "task_types.email_sending.retry.max_retries: must be ≥ 0" in problems
    assert ("task_types.email_sending.retry.backof: unknown key (did you mean 'backoff'?)"
            in problems)
    assert any(p.startswith("workers.email.types[0]: unknown task type 'emails'")
               for p in problems)
    assert any(p.startswith("workers.email.priorities[0]: unknown queue priority 'urgent'")
               for p in problems)
    assert any(p.startswith("smtp.url: URL scheme must be one of") for p in problems)
    assert len(problems) == 5


def test_unknown_top_level_key_suggests_the_nearest(tmp_path):
    assert problems_of(tmp_path, {"brokr_url": "x"}) == [
        "brokr_url: unknown key (did you mean 'broker_url'?)"]


def test_wrong_types_are_named(tmp_path):
    problems = problems_of(tmp_path, {"record_ttl": "a week",
                                      "task_types": {"data_processing": {"time_limit": True}}})
    assert "record_ttl: must be an integer, got 'a week'" in problems
    assert "task_types.data_processing.time_limit: must be a number, not a boolean" in problems


def test_an_external_broker_needs_a_result_backend(tmp_path):
    problems = problems_of(tmp_path, {"broker_url": "amqp://127.0.0.1//"})
    assert problems == ["result_backend: required when broker_url is set (a redis:// URL)"]


def test_a_custom_type_needs_a_function_and_known_parameter_kinds(tmp_path):
    problems = problems_of(tmp_path, {"task_types": {"thumb": {
        "parameters": {"w": {"kind": "integr"}}}}})
    assert "task_types.thumb.function: required for a custom type (module:function)" in problems
    assert any(p.startswith("task_types.thumb.parameters.w.kind: must be one of")
               and "did you mean 'integer'" in p for p in problems)


def test_invalid_yaml_is_a_config_error_naming_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("queues: [high\n")
    with pytest.raises(ConfigError) as caught:
        config.load(env={}, path=path)
    assert str(path) in caught.value.message
    assert "not valid YAML" in caught.value.problems[0]


def test_passwords_are_masked_in_urls():
    assert mask_url("amqp://guest:s3cret@h:5672//") == "amqp://guest:***@h:5672//"
    assert mask_url("smtp://u:p/w@h:25") == "smtp://u:***@h:25"
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"


def test_config_show_masks_every_password(tmp_path):
    settings = load_with(tmp_path, {}, env={
        "TASKQ_BROKER_URL": "amqp://guest:hunter2@h:5672//",
        "TASKQ_RESULT_BACKEND": "redis://:hunter2@h:6379/0",
        "TASKQ_SMTP_URL": "smtps://me:hunter2@mail:465"})
    assert "hunter2" not in repr(settings.public_dict())


# Files that are not a config: one problem, exit 3, never a traceback

@pytest.mark.parametrize(("content", "problem"), [
    (b"\x00\x01\x02\xff\xfe", "not UTF-8 text: invalid start byte at byte 3"),
    (b'key_prefix: "caf\xe9"\n', "not UTF-8 text: invalid continuation byte at byte 16"),
    (b"a: " + b"[" * 5000 + b"]" * 5000, "nested deeper than 16 levels"),
    (b"a: " + b"[" * 17 + b"]" * 17, "nested deeper than 16 levels"),
    (b"a: &a [*a]\n", "nested deeper than 16 levels"),
    (b"\x00\x01\x02", "not valid YAML: unacceptable character #x0000: special characters are "
                      "not allowed"),
], ids=["binary", "latin-1", "5000 levels", "17 levels", "inside itself", "control bytes"])
def test_a_file_that_is_not_a_readable_config_is_one_problem(tmp_path, content, problem):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        config.load(env={}, path=path)
    assert caught.value.problems == [problem]


def test_a_chain_of_3000_yaml_aliases_is_as_deep_as_its_length(tmp_path):
    lines = ["x0: &x0 [1]"] + [f"x{i}: &x{i} [*x{i - 1}]" for i in range(1, 3000)]
    path = tmp_path / "chain.yaml"
    path.write_text("\n".join(lines))
    with pytest.raises(ConfigError) as caught:
        config.load(env={}, path=path)
    assert caught.value.problems == ["nested deeper than 16 levels"]


def test_an_alias_counts_as_deep_as_the_deepest_place_it_is_used(tmp_path):
    # Given a node 10 levels deep, used at the top and again 8 levels down
    path = tmp_path / "shared.yaml"
    path.write_text("a: &x " + "[" * 10 + "]" * 10 + "\nb: " + "[" * 7 + "*x" + "]" * 7 + "\n")
    with pytest.raises(ConfigError) as caught:
        config.load(env={}, path=path)
    assert caught.value.problems == ["nested deeper than 16 levels"]


def test_an_alias_used_many_times_is_measured_once(tmp_path):
    # Given a "billion laughs" file: nine levels of nine references each
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]"
                               for i in range(1, 10)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines))
    # Then it is refused for its unknown keys at once, not measured for ever
    with pytest.raises(ConfigError) as caught:
        config.load(env={}, path=path)
    assert caught.value.problems[0] == "a0: unknown key"


# URLs: what can be known from the URL itself is a config error

@pytest.mark.parametrize(("url", "problem"), [
    ("redis://127.0.0.1:99999/0", "port must be a number from 1 to 65535"),
    ("redis://127.0.0.1:0/0", "port must be a number from 1 to 65535"),
    ("redis://127.0.0.1:6379/abc", "database must be a number, e.g. redis://host:6379/0"),
    ("redis://127.0.0.1:6379/-1", "database must be a number, e.g. redis://host:6379/0"),
    ("unix:///tmp/r.sock?db=x", "database must be a number, e.g. unix://host:6379/0"),
    ("redis://:pa/ss@host:6379/0", "port must be a number from 1 to 65535 (a password "
     "holding / ? # or @ must be percent-encoded, e.g. / as %2F)"),
])
def test_a_backend_url_with_an_impossible_port_or_database_is_refused(tmp_path, url, problem):
    assert problems_of(tmp_path, {"broker_url": "amqp://h//", "result_backend": url}) == [
        f"result_backend: {problem}"]


def test_a_broker_url_with_an_impossible_port_is_refused(tmp_path):
    assert problems_of(tmp_path, {"broker_url": "amqp://u:p@h:70000//",
                                  "result_backend": "redis://h:6379/0"}) == [
        "broker_url: port must be a number from 1 to 65535"]


@pytest.mark.parametrize("url", ["redis://h:6379/99", "redis://:p%2Fw@h/3", "rediss://h",
                                 "unix:///tmp/r.sock?db=2", "redis://:p@ss@word@h:6379/0"])
def test_urls_whose_database_only_the_server_can_refuse_are_accepted(tmp_path, url):
    assert load_with(tmp_path, {"broker_url": "amqp://h//", "result_backend": url}
                     ).result_backend == url


# Numbers: finite, within documented bounds

@pytest.mark.parametrize(("changes", "problem"), [
    ({"record_ttl": 10**30}, "record_ttl: must be ≤ 3.1536e+08"),
    ({"smtp": {"timeout": float("nan")}}, "smtp.timeout: must be a finite number, got nan"),
    ({"smtp": {"timeout": 1e9}}, "smtp.timeout: must be ≤ 600"),
    ({"task_types": {"data_processing": {"retry": {"backoff": float("inf")}}}},
     "task_types.data_processing.retry.backoff: must be a finite number, got inf"),
    ({"task_types": {"data_processing": {"retry": {"max_retries": 2000}}}},
     "task_types.data_processing.retry.max_retries: must be ≤ 100"),
    ({"task_types": {"data_processing": {"time_limit": 1e300}}},
     "task_types.data_processing.time_limit: must be ≤ 604800"),
    ({"workers": {"data": {"concurrency": 10**6}}}, "workers.data.concurrency: must be ≤ 1024"),
    ({"api": {"port": 80000}}, "api.port: must be ≤ 65535"),
    ({"api": {"max_body_bytes": 2**40}}, "api.max_body_bytes: must be ≤ 1.07374e+09"),
    ({"files": {"root": "/tmp/a\0b"}}, "files.root: must not contain a NUL character"),
])
def test_numbers_out_of_range_and_nul_characters_are_refused(tmp_path, changes, problem):
    assert problem in problems_of(tmp_path, changes)


@pytest.mark.parametrize("token", ["   ", "\t\n"])
def test_a_blank_api_token_is_no_token(tmp_path, token):
    assert load_with(tmp_path, {}, env={"TASKQ_API_TOKEN": token}).api.token is None


def test_an_api_token_is_kept_without_surrounding_spaces(tmp_path):
    assert load_with(tmp_path, {"api": {"token": " s3cret "}}).api.token == "s3cret"


@pytest.mark.parametrize(("url", "masked"), [
    ("redis://:p@ss@word@h:6379/0", "redis://:***@h:6379/0"),
    ("amqp://user:p@ss:w/rd@h:5672/v", "amqp://user:***@h:5672/v"),
    ("redis://secret@h:6379/0", "redis://***@h:6379/0"),
    ("redis://h:6379/0", "redis://h:6379/0"),
    ("unix:///tmp/r.sock?db=1", "unix:///tmp/r.sock?db=1"),
    ("error at redis://:a@b@h:1/0 (refused)", "error at redis://:***@h:1/0 (refused)"),
])
def test_everything_between_the_scheme_and_the_last_at_sign_is_masked(url, masked):
    assert mask_url(url) == masked


def test_config_check_imports_each_task_types_function(tmp_path):
    settings = load_with(tmp_path, {"task_types": {
        "gone": {"function": "nonexistent.module:fn"}, "typo": {"function": "json:dumpz"},
        "value": {"function": "json:__doc__"}}})
    with pytest.raises(ConfigError) as caught:
        config.check_functions(settings)
    assert caught.value.problems == [
        "task_types.gone.function: cannot import nonexistent.module:fn "
        "(ModuleNotFoundError: No module named 'nonexistent')",
        "task_types.typo.function: cannot import json:dumpz "
        "(AttributeError: module 'json' has no attribute 'dumpz')",
        "task_types.value.function: json:__doc__ is not a function"]


def test_config_check_passes_the_shipped_functions(tmp_path):
    config.check_functions(load_with(tmp_path, {}))


def test_task_types_aliases_and_priorities_are_named_in_any_case(tmp_path):
    # Given the shipped config
    settings = load_with(tmp_path, {})
    # Then a type, an alias and a priority are found however they are typed
    assert settings.resolve_type("EMAIL").name == "email_sending"
    assert settings.resolve_type("Data_Processing").name == "data_processing"
    assert settings.resolve_priority("HIGH") == "high"
    # And a name that is not there in any case is still unknown
    with pytest.raises(KeyError):
        settings.resolve_type("mail")
    with pytest.raises(KeyError):
        settings.resolve_priority("urgent")



def test_a_key_window_is_a_day_by_default_and_bounded_to_a_month(tmp_path):
    assert load_with(tmp_path, {}).task_types["email_sending"].key_window == 86400
    assert load_with(tmp_path, {"task_types": {"email_sending": {"key_window": 60}}}
                     ).task_types["email_sending"].key_window == 60
    for bad in (0, 30 * 86400 + 1, "a day"):
        problems = problems_of(tmp_path, {"task_types": {"email_sending": {"key_window": bad}}})
        assert any(p.startswith("task_types.email_sending.key_window") for p in problems), bad


def test_outside_any_config_folder_the_checkout_s_config_is_found(tmp_path, monkeypatch):
    # Given a working directory with no config/ folder and no TASKQ_CONFIG
    monkeypatch.chdir(tmp_path)
    # Then the config found is the one beside the taskq package (a wheel's taskq/defaults/
    # copy is checked by .ci/run, which installs one)
    assert config.find_config({}) == REPO_CONFIG
