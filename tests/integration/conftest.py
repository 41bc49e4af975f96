"""Integration fixtures: an isolated deployment per test with real brokers and real workers.

`deployment` is an embedded-broker deployment unless the test is marked `brokers`:
`@pytest.mark.brokers` runs it once per broker (embedded, RabbitMQ + Redis, Redis) and
`@pytest.mark.brokers("redis", "embedded")` on the ones named. Each run is isolated from other
users of the shared servers: a RabbitMQ vhost made for this session, a Redis database for tests
and a key prefix of its own, all removed afterwards. A server that is not reachable skips its
runs with the reason, or fails them when CI=true.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration.runner_db import runner_database

from taskq import config
from taskq.records import TaskRecord
from taskq.request import SubmitRequest
from taskq.runtime import Runtime

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0
BROKERS = ("embedded", "rabbitmq", "redis")
# The shared servers; a test run only ever touches its own vhost, database keys and prefix.
# Each pytest-xdist runner (gw0, gw1, …) takes the next database after the given one: a
# database's `unacked` hash is shared by every key prefix in it (kombu's, not ours), so two
# runners' Redis-broker tests in one database could restore each other's messages.
REDIS_URL = runner_database(os.environ.get("TASKQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/13"),
                            os.environ.get("PYTEST_XDIST_WORKER", ""))
AMQP_URL = os.environ.get("TASKQ_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")

# Fast retry policies, and the custom types from jobs.py, on top of the shipped config.
TEST_TYPES: dict[str, Any] = {
    "spin": {"function": "jobs:spin", "parameters": {"ms": {"kind": "number",
                                                          "required": True}},
             "retry": {"max_retries": 0, "backoff": 0.1, "backoff_max": 1, "jitter": False},
             "key_window": 2},  # idempotency keys hold 2 s (tests of the window)
    "flaky": {"function": "jobs:flaky",
              "parameters": {"marker_dir": {"kind": "string", "required": True},
                             "failures": {"kind": "integer", "default": 2}},
              "retry": {"max_retries": 3, "backoff": 0.2, "backoff_max": 2, "jitter": False}},
    # spin after leaving a marker file per run (the process id in its name)
    "marked": {"function": "jobs:marked",
               "parameters": {"marker_dir": {"kind": "string", "required": True},
                              "ms": {"kind": "number", "default": 0}},
               "retry": {"max_retries": 0, "backoff": 0.1, "backoff_max": 1, "jitter": False}},
    # flaky with retries slow enough to watch a task waiting in RETRY (1 s, then 2 s)
    "hesitant": {"function": "jobs:flaky",
                 "parameters": {"marker_dir": {"kind": "string", "required": True},
                                "failures": {"kind": "integer", "default": 2}},
                 "retry": {"max_retries": 2, "backoff": 1.0, "backoff_max": 10,
                           "jitter": False}},
    # flaky with a 30 s backoff: retries that wait far longer than the test
    "patient": {"function": "jobs:flaky",
                "parameters": {"marker_dir": {"kind": "string", "required": True},
                               "failures": {"kind": "integer", "default": 1}},
                "retry": {"max_retries": 1, "backoff": 30.0, "backoff_max": 30,
                          "jitter": False}},
    "crash": {"function": "jobs:crash", "parameters": {"code": {"kind": "integer",
                                                              "default": 1}},
              "retry": {"max_retries": 3, "backoff": 0.2, "backoff_max": 2, "jitter": False}},
    # spin with time limits: a soft limit of 1 s (an exception in the task), a hard one of 2 s
    "bounded": {"function": "jobs:spin", "time_limit": 2, "soft_time_limit": 1,
                "parameters": {"ms": {"kind": "number", "required": True}},
                "retry": {"max_retries": 0, "backoff": 0.1, "backoff_max": 1, "jitter": False}},
    # a soft time limit (1 s) far from the hard one: room for on_failure to ride out an outage
    "limited": {"function": "jobs:spin", "time_limit": 60, "soft_time_limit": 1,
                "parameters": {"ms": {"kind": "number", "required": True}},
                "retry": {"max_retries": 0, "backoff": 0.1, "backoff_max": 1, "jitter": False}},
    # flaky after spinning for `ms`: fails transiently while the test does something else
    "slow_flaky": {"function": "jobs:slow_flaky",
                   "parameters": {"marker_dir": {"kind": "string", "required": True},
                                  "failures": {"kind": "integer", "default": 1},
                                  "ms": {"kind": "number", "default": 0}},
                   "retry": {"max_retries": 3, "backoff": 0.2, "backoff_max": 2,
                             "jitter": False}},
    # fails transiently on its first run, then ignores its soft limit until the hard one
    "stubborn_later": {"function": "jobs:stubborn_later", "time_limit": 2,
                       "soft_time_limit": 1,
                       "parameters": {"marker_dir": {"kind": "string", "required": True},
                                      "ms": {"kind": "number", "required": True}},
                       "retry": {"max_retries": 2, "backoff": 0.2, "backoff_max": 2,
                                 "jitter": False}},
    "stubborn": {"function": "jobs:stubborn", "time_limit": 2, "soft_time_limit": 1,
                "parameters": {"ms": {"kind": "number", "required": True}},
                "retry": {"max_retries": 0, "backoff": 0.1, "backoff_max": 1, "jitter": False}},
}


def test_config() -> dict[str, Any]:
    raw = yaml.safe_load((REPO / "config" / "celery.yaml").read_text())
    raw["task_types"]["email_sending"]["retry"] = {
        "max_retries": 3, "backoff": 0.5, "backoff_max": 5, "jitter": False}
    raw["task_types"].update(TEST_TYPES)
    raw["smtp"]["timeout"] = 5
    return raw


@dataclass
class Deployment:
    """One isolated taskq deployment: its own home, config, key prefix and workers."""

    home: Path
    env: dict[str, str]
    broker: str = "embedded"
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime(config.load(env=self.env))
        return self._runtime

    def cli(self, *args: str, stdin: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `taskq ARGS` as a user would, in a subprocess."""
        return subprocess.run([sys.executable, "-m", "taskq", *args], input=stdin,
                              capture_output=True, text=True, env=self.env, timeout=timeout,
                              cwd=self.home)

    def cli_json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def start_worker(self, *args: str, ready: bool = True) -> subprocess.Popen[bytes]:
        log = (self.home / "logs")
        log.mkdir(parents=True, exist_ok=True)
        out = (log / f"test-worker-{len(self.workers)}.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "taskq", "worker", *args],
                                env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                cwd=self.home, start_new_session=True)
        out.close()
        self.workers.append(proc)
        if ready:
            self.wait_worker_ready(proc)
        return proc

    def wait_worker_ready(self, proc: subprocess.Popen[bytes]) -> str:
        store = self.runtime.store
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"worker exited {proc.returncode}: {self.worker_logs()}"
            for name in store.client.smembers(f"{store.prefix}:workers"):
                host = name.decode()
                if f".{proc.pid}@" in host and store.client.hget(
                        f"{store.prefix}:worker:{host}", "state") == b"online":
                    return host
            time.sleep(0.05)  # polling for readiness
        raise AssertionError(f"worker not ready: {self.worker_logs()}")

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:]
                         for p in sorted((self.home / "logs").glob("test-worker-*.log")))

    def kill_worker(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a worker's whole process group: its main process and its pool."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_workers(self, timeout: float = 30) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.workers.clear()

    def submit(self, type_name: str, priority: str | None = None, delay: float = 0,
               **params: Any) -> TaskRecord:
        from taskq.submit import submit

        return submit(self.runtime, SubmitRequest(type=type_name, priority=priority,
                                                  params=params, delay=delay))

    def wait(self, task_id: str, timeout: float = 60) -> TaskRecord:
        return self.runtime.store.wait(task_id, timeout)

    def nothing_queued(self) -> bool:
        """No task record and no message in any of this deployment's queues (any broker)."""
        from taskq.broker.queues import queue_stats

        store = self.runtime.store
        return (store.client.zcard(f"{store.prefix}:tasks") == 0
                and all(q.depth == 0 for q in queue_stats(self.runtime)))


def _short_home() -> Path:
    # Unix socket paths are limited to ~100 bytes, so homes live directly under /tmp.
    return Path(tempfile.mkdtemp(prefix="tq-", dir="/tmp"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "brokers(*names): run the test on each broker named "
                            "(all of embedded, rabbitmq, redis when none is)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("brokers")
    if marker is not None and "deployment" in metafunc.fixturenames:
        names = marker.args or BROKERS
        metafunc.parametrize("deployment", names, indirect=True, ids=list(names))


def unavailable(reason: str) -> None:
    """Skip with `reason`; in CI (CI=true) a missing server is a failure instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test database on the shared Redis, after checking that it answers."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """A vhost of this session's own on the shared RabbitMQ, deleted at the end."""
    from kombu import Connection

    vhost = f"taskq-test-{uuid.uuid4().hex[:8]}"
    made = _rabbitmqctl("add_vhost", vhost) and _rabbitmqctl(
        "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    # Without rabbitmqctl (a RabbitMQ in another container), the default vhost and the
    # per-test key prefix still keep runs apart.
    url = f"{AMQP_URL}/{vhost}" if made else f"{AMQP_URL}//"
    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "not available"
        if made:
            _rabbitmqctl("delete_vhost", vhost)
        unavailable(f"RabbitMQ not reachable at {AMQP_URL}: {exc}")
    yield url
    if made:
        _rabbitmqctl("delete_vhost", vhost)


def _rabbitmqctl(*args: str) -> bool:
    try:
        done = subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _broker_env(request: pytest.FixtureRequest, broker: str) -> dict[str, str]:
    if broker == "embedded":
        return {}
    backend = request.getfixturevalue("redis_url")
    if broker == "redis":
        return {"TASKQ_BROKER_URL": backend, "TASKQ_RESULT_BACKEND": backend}
    assert broker == "rabbitmq", broker
    return {"TASKQ_BROKER_URL": request.getfixturevalue("rabbitmq_url"),
            "TASKQ_RESULT_BACKEND": backend}


@pytest.fixture
def deployment(request: pytest.FixtureRequest, smtp_server: Any) -> Iterator[Deployment]:
    """An isolated deployment (embedded broker unless parametrised) with an SMTP server."""
    broker = getattr(request, "param", "embedded")
    urls = _broker_env(request, broker)
    home = _short_home()
    cfg = home / "celery.yaml"
    cfg.write_text(yaml.safe_dump(test_config()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQ_")}
    env.update({
        "TASKQ_CONFIG": str(cfg), "TASKQ_HOME": str(home),
        "TASKQ_KEY_PREFIX": f"tq{uuid.uuid4().hex[:8]}",
        "TASKQ_SMTP_URL": smtp_server.url, "TASKQ_FILES_ROOT": str(home / "files"),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(REPO)]),
        **urls,
    })
    dep = Deployment(home=home, env=env, broker=broker)
    env_at_start = dict(env)  # a test may point the deployment elsewhere; clean up ours
    try:
        yield dep
    finally:
        dep.stop_workers()
        _clean(dep, env_at_start)
        subprocess.run(["rm", "-rf", str(home)], check=False)


def _clean(dep: Deployment, env: dict[str, str]) -> None:
    from taskq.broker.embedded import EmbeddedBroker

    if dep._runtime is not None:
        _close_runtime(dep._runtime)
    if dep.broker == "embedded":
        EmbeddedBroker(dep.home).stop()
        return
    settings = config.load(env=env)
    if dep.broker == "rabbitmq":
        _delete_amqp_queues(settings)
    _delete_redis_keys(settings)


def _close_runtime(runtime: Runtime) -> None:
    made = vars(runtime)  # cached_property values: only close what the test opened
    if "celery" in made:
        made["celery"].close()
    if "redis" in made:
        made["redis"].close()


def _delete_amqp_queues(settings: config.Settings) -> None:
    from kombu import Connection

    from taskq import topology

    with Connection(settings.broker_url, connect_timeout=5) as conn:
        channel = conn.channel()
        for name in topology.all_queues(settings):
            channel.queue_delete(name)


def _delete_redis_keys(settings: config.Settings) -> None:
    """Everything this deployment left in the shared test database, and nothing else."""
    import redis

    client = redis.Redis.from_url(settings.result_backend or REDIS_URL, socket_timeout=5)
    prefix = settings.key_prefix
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    for binding in client.scan_iter(match="_kombu.binding*", count=1000):
        if prefix.encode() in binding:
            client.delete(binding)
        elif client.type(binding) == b"set":
            ours = [m for m in client.smembers(binding) if prefix.encode() in m]
            if ours:
                client.srem(binding, *ours)
    stale = [tag for tag, raw in client.hscan_iter("unacked") if f'"{prefix}.'.encode() in raw]
    if stale:
        client.hdel("unacked", *stale)
        client.zrem("unacked_index", *stale)
    client.close()
