"""Integration fixtures: an isolated deployment per test with real brokers and real workers."""

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

from taskq import config
from taskq.records import TaskRecord
from taskq.request import SubmitRequest
from taskq.runtime import Runtime

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0

# Fast retry policies, and the custom types from jobs.py, on top of the shipped config.
TEST_TYPES: dict[str, Any] = {
    "spin": {"function": "jobs:spin", "parameters": {"ms": {"kind": "number",
                                                          "required": True}},
             "retry": {"max_retries": 0, "backoff": 0.1, "backoff_max": 1, "jitter": False}},
    "flaky": {"function": "jobs:flaky",
              "parameters": {"marker_dir": {"kind": "string", "required": True},
                             "failures": {"kind": "integer", "default": 2}},
              "retry": {"max_retries": 3, "backoff": 0.2, "backoff_max": 2, "jitter": False}},
    "crash": {"function": "jobs:crash", "parameters": {"code": {"kind": "integer",
                                                              "default": 1}},
              "retry": {"max_retries": 3, "backoff": 0.2, "backoff_max": 2, "jitter": False}},
}


def test_config() -> dict[str, Any]:
    raw = yaml.safe_load((REPO / "config" / "celery.yaml").read_text())
    raw["task_types"]["email_sending"]["retry"] = {
        "max_retries": 3, "backoff": 0.3, "backoff_max": 5, "jitter": False}
    raw["task_types"].update(TEST_TYPES)
    raw["smtp"]["timeout"] = 5
    return raw


@dataclass
class Deployment:
    """One isolated taskq deployment: its own home, config, key prefix and workers."""

    home: Path
    env: dict[str, str]
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


def _short_home() -> Path:
    # Unix socket paths are limited to ~100 bytes, so homes live directly under /tmp.
    return Path(tempfile.mkdtemp(prefix="tq-", dir="/tmp"))


@pytest.fixture
def deployment(smtp_server: Any) -> Iterator[Deployment]:
    """An embedded-broker deployment with its own home and an SMTP server for email."""
    home = _short_home()
    cfg = home / "celery.yaml"
    cfg.write_text(yaml.safe_dump(test_config()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQ_")}
    env.update({
        "TASKQ_CONFIG": str(cfg), "TASKQ_HOME": str(home),
        "TASKQ_KEY_PREFIX": f"tq{uuid.uuid4().hex[:8]}",
        "TASKQ_SMTP_URL": smtp_server.url, "TASKQ_FILES_ROOT": str(home / "files"),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(REPO)]),
    })
    dep = Deployment(home=home, env=env)
    try:
        yield dep
    finally:
        dep.stop_workers()
        if dep._runtime is not None and dep.runtime.embedded is not None:
            dep.runtime.embedded.stop()
        else:
            from taskq.embedded import EmbeddedBroker

            EmbeddedBroker(home).stop()
        subprocess.run(["rm", "-rf", str(home)], check=False)
