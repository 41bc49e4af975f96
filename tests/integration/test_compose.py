"""compose.yml, checked without a Docker engine: it parses, every taskq service runs a real
taskq command line, sets only variables taskq reads, and its names and ports agree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from taskq import config

REPO = Path(__file__).resolve().parents[2]
SERVICES = {"rabbitmq", "redis", "api", "worker-priority", "worker-data", "worker-email",
            "worker-file", "flower"}
# Values for the variables compose.yml requires (${VAR:?...}) from whoever runs it.
REQUIRED = {"TASKQ_API_TOKEN": "a-token", "FLOWER_BASIC_AUTH": "admin:secret"}
_VAR = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def _interpolate(value):
    """Compose's ${VAR:-default} and ${VAR:?error}, as an empty environment would give."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: REQUIRED.get(m[1]) or (m[3] if m[2] == "-" else ""), value)
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose():
    return _interpolate(yaml.safe_load((REPO / "compose.yml").read_text()))


def _taskq_services(compose):
    return {name: s for name, s in compose["services"].items() if s.get("build")}


def _port(args, default):
    return int(args[args.index("--port") + 1]) if "--port" in args else default


def test_compose_has_the_whole_stack_each_with_a_healthcheck_and_restart_policy(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), name
        assert service.get("restart") == "unless-stopped", name


def test_every_taskq_service_runs_a_real_taskq_command_line(compose):
    settings = config.load(env={}, path=REPO / "config" / "celery.yaml")
    services = _taskq_services(compose)
    assert set(services) == SERVICES - {"rabbitmq", "redis"}
    for name, service in services.items():
        command = service["command"]
        assert command[0] == "taskq", name
        # --help parses every option given, so an unknown option or command fails it
        result = subprocess.run([sys.executable, "-m", "taskq", *command[1:], "--help"],
                                capture_output=True, text=True, timeout=60, cwd=REPO)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
        if command[1] == "worker":
            assert command[command.index("--profile") + 1] in settings.workers, name


def test_compose_sets_only_variables_that_taskq_reads(compose):
    known = set(config.ENV_OVERRIDES) | {"TASKQ_CONFIG"}
    for name, service in _taskq_services(compose).items():
        assert set(service["environment"]) <= known, name
    dockerfile = (REPO / "Dockerfile").read_text()
    assert set(re.findall(r"\b(TASKQ_\w+)=", dockerfile)) <= known


def test_urls_name_the_broker_and_backend_services_on_their_ports(compose):
    services = compose["services"]
    for name, service in _taskq_services(compose).items():
        env = service["environment"]
        broker, backend = urlsplit(env["TASKQ_BROKER_URL"]), urlsplit(env["TASKQ_RESULT_BACKEND"])
        assert (broker.scheme, broker.hostname, broker.port) == ("amqp", "rabbitmq", 5672), name
        assert (backend.scheme, backend.hostname, backend.port) == ("redis", "redis", 6379), name
        assert broker.username == services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_USER"]
        assert broker.password == services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_PASS"]
        assert set(service["depends_on"]) == {"rabbitmq", "redis"}, name
    published = {name: {p.split(":")[-1] for p in s.get("ports", [])}
                 for name, s in services.items()}
    assert {"5672", "15672"} <= published["rabbitmq"]
    assert "6379" in published["redis"]
    api, flower = services["api"]["command"], services["flower"]["command"]
    assert published["api"] == {str(_port(api, 5000))}
    assert published["flower"] == {str(_port(flower, 5555))}


def test_every_named_volume_is_declared_and_the_image_has_the_extras_it_runs(compose):
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith((".", "/")) or source in declared, (name, source)
    install = next(line for line in (REPO / "Dockerfile").read_text().splitlines()
                   if "pip install" in line)
    assert "api" in install and "flower" in install
