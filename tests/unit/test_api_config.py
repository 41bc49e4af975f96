"""The api and flower config sections: defaults, validation with paths, the token override."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from taskq import config
from taskq.errors import ConfigError

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "celery.yaml"


def load(tmp_path: Path, api: object = None, flower: object = None,
         env: dict[str, str] | None = None) -> config.Settings:
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    if api is not None:
        raw["api"] = api
    if flower is not None:
        raw["flower"] = flower
    path = tmp_path / "celery.yaml"
    path.write_text(yaml.safe_dump(raw))
    return config.load(env={"TASKQ_HOME": str(tmp_path), **(env or {})}, path=path)


def test_shipped_config_serves_loopback_without_token_or_cors(tmp_path):
    settings = load(tmp_path)
    assert (settings.api.host, settings.api.port) == ("127.0.0.1", 5000)
    assert settings.api.token is None
    assert settings.api.cors_origins == ()
    assert settings.flower.basic_auth is None


def test_api_token_comes_from_the_environment(tmp_path):
    settings = load(tmp_path, env={"TASKQ_API_TOKEN": "s3cret"})
    assert settings.api.token == "s3cret"
    assert settings.public_dict()["api"]["token"] == "***"


def test_every_api_and_flower_problem_is_named_with_its_path(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, api={"port": 70000, "cors_origins": ["app.example.com"],
                            "max_body_bytes": 10, "tokn": "x"},
             flower={"basic_auth": "nocolon"})
    problems = "\n".join(caught.value.problems)
    assert "api.port: must be ≤ 65535" in problems
    assert "api.cors_origins[0]" in problems
    assert "api.max_body_bytes: must be ≥ 1024" in problems
    assert "api.tokn: unknown key (did you mean 'token'?)" in problems
    assert "flower.basic_auth: must look like user:password" in problems
