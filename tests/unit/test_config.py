"""Loading config/celery.yaml: defaults, environment overrides, and every problem named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from taskq import config
from taskq.errors import ConfigError

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
    assert config.mask_url("amqp://guest:s3cret@h:5672//") == "amqp://guest:***@h:5672//"
    assert config.mask_url("smtp://u:p/w@h:25") == "smtp://u:***@h:25"
    assert config.mask_url("redis://h:6379/0") == "redis://h:6379/0"


def test_config_show_masks_every_password(tmp_path):
    settings = load_with(tmp_path, {}, env={
        "TASKQ_BROKER_URL": "amqp://guest:hunter2@h:5672//",
        "TASKQ_RESULT_BACKEND": "redis://:hunter2@h:6379/0",
        "TASKQ_SMTP_URL": "smtps://me:hunter2@mail:465"})
    assert "hunter2" not in repr(settings.public_dict())
