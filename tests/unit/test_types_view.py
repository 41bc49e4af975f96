"""`taskq types`: every declared type with what it takes, from the config alone."""

from __future__ import annotations

from pathlib import Path

import yaml

from taskq import config
from taskq.term import tables, types_view

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "celery.yaml"


def _settings(tmp_path: Path) -> config.Settings:
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    raw["task_types"]["thumbnail"] = {
        "alias": "thumb", "function": "json:dumps", "time_limit": 30,
        "parameters": {"path": {"kind": "string", "required": True},
                       "width": {"kind": "integer", "default": 128}},
        "retry": {"max_retries": 2, "backoff": 5, "backoff_max": 60, "jitter": False}}
    path = tmp_path / "celery.yaml"
    path.write_text(yaml.safe_dump(raw))
    return config.load(env={"TASKQ_HOME": str(tmp_path)}, path=path)


def test_a_custom_type_shows_its_function_parameters_retries_and_limits(tmp_path):
    # Given a config with a custom type
    found = {t["name"]: t for t in types_view.types_json(_settings(tmp_path))}
    # Then it is listed with the built-in ones, and what it takes is as declared
    assert list(found) == ["data_processing", "email_sending", "file_processing", "thumbnail"]
    thumb = found["thumbnail"]
    assert (thumb["alias"], thumb["builtin"], thumb["function"]) == ("thumb", False, "json:dumps")
    assert thumb["parameters"] == [
        {"name": "path", "kind": "string", "required": True, "default": None},
        {"name": "width", "kind": "integer", "required": False, "default": 128}]
    assert thumb["retry"] == {"max_retries": 2, "backoff": 5, "backoff_max": 60, "jitter": False}
    assert (thumb["time_limit"], thumb["rate_limit"]) == (30, None)


def test_a_built_in_type_names_each_parameter_the_validation_takes(tmp_path):
    found = {t["name"]: t for t in types_view.types_json(_settings(tmp_path))}
    email = {p["name"]: p for p in found["email_sending"]["parameters"]}
    assert list(email) == ["to", "cc", "subject", "body", "from"]
    assert email["to"]["required"] and email["subject"]["default"] == "taskq message"
    assert all(p["kind"] for p in email.values())


def test_the_text_view_gives_a_block_a_type_and_a_line_a_parameter(tmp_path):
    text = tables.types_text(types_view.types_json(_settings(tmp_path)))
    block = text.split("\n\n")[-1].splitlines()
    assert block == [
        "thumbnail (thumb): 2 retries, backoff 5 s up to 60 s; time limit 30 s",
        "  runs json:dumps",
        "  path   string; required",
        "  width  integer; default 128"]
