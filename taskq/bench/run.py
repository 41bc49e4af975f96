"""Runs every scenario on each broker for taskq and for each peer, in one go, and gathers the
figures (medians over runs) as plain data."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from taskq import config
from taskq.bench import figures, peers, scenarios, targets, user_paths
from taskq.bench.figures import Figures
from taskq.bench.scenarios import SIZES, Sizes
from taskq.bench.side import Side
from taskq.bench.taskq_side import TaskqSide
from taskq.errors import UsageError
from taskq.runtime import Runtime

CONFIG = """\
# Written by taskq bench: the built-in types (for `submit --from`) and the benchmark's own.
task_types:
  data_processing: {alias: data}
  email_sending: {alias: email}
  file_processing: {alias: file}
  noop: {function: "taskq.bench.jobs:noop", retry: {max_retries: 0}}
  spin:
    function: "taskq.bench.jobs:spin"
    parameters: {ms: {kind: number, required: true}}
    retry: {max_retries: 0}
logging: {format: text, level: WARNING}
"""
VERSIONS = ("taskq", "celery", "kombu", "redis", "hiredis", "amqp", "billiard", "dramatiq",
            "pika", "huey", "flask", "waitress")


def checked(brokers: str, size: str, runs: int) -> list[str]:
    """The brokers named in a comma-separated list, once the options are known to be good."""
    kinds = [b.strip() for b in brokers.split(",") if b.strip()]
    for kind in kinds:
        if kind not in targets.BROKERS:
            raise UsageError(f"unknown broker {kind!r}; use {', '.join(targets.BROKERS)}")
    if size not in SIZES:
        raise UsageError(f"unknown size {size!r}; use {', '.join(SIZES)}")
    if runs < 1:
        raise UsageError("--runs must be at least 1")
    return kinds


def run(brokers: list[str], size: str, redis_url: str, amqp_url: str | None,
        runs: int = 1, peer_names: Sequence[str] = ("celery",)) -> dict[str, Any]:
    """Every scenario on each broker, `runs` times (round by round, so a machine that slows
    down weighs on every broker alike); the median of each figure, its rows for the report,
    and with more than one run, every run's figures under "runs"."""
    sizes = SIZES[size]
    out: dict[str, Any] = {"size": size, "sizes": asdict(sizes), "machine": machine(),
                           "versions": versions(), "started_at": time.time(),
                           "peers": {name: peers.HOW[name] for name in peer_names}}
    each: dict[str, list[dict[str, Figures]]] = {kind: [] for kind in brokers}
    for _ in range(runs):
        for kind in brokers:
            each[kind].append(run_broker(kind, sizes, redis_url, amqp_url, peer_names))
    out["brokers"] = {kind: figures.medians(found) for kind, found in each.items()}
    out["repeat"] = runs
    if runs > 1:
        out["runs"] = each
    out["seconds"] = round(time.time() - out["started_at"], 1)
    out["rows"] = figures.rows(out)
    return out


def run_broker(kind: str, sizes: Sizes, redis_url: str, amqp_url: str | None,
               peer_names: Sequence[str]) -> dict[str, Figures]:
    """taskq's figures, then each peer's (n/a on a broker it cannot use), on one broker."""
    home = Path(tempfile.mkdtemp(prefix="tqb-", dir="/tmp"))
    try:
        with targets.opened(kind, home, redis_url, amqp_url) as target:
            env = _env(home, target)
            runtime = Runtime(config.load(env=env))
            runtime.broker_url  # noqa: B018 - starts the embedded broker before timing
            try:
                found = {"taskq": {**run_side(TaskqSide(runtime, env, home), sizes),
                                   **user_paths.measure_all(env, home, sizes)}}
                for name in peer_names:
                    side = peers.make(name, target, env, home)
                    found[name] = figures.not_applicable() if side is None else run_side(
                        side, sizes)
                return found
            finally:
                if runtime.embedded is not None:
                    runtime.embedded.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_side(side: Side, sizes: Sizes) -> Figures:
    """One side's scenarios; its worker is stopped and what it made removed, come what may."""
    try:
        return scenarios.run(side, sizes)
    finally:
        side.stop_worker()
        side.cleanup()


def _env(home: Path, target: targets.Target) -> dict[str, str]:
    (home / "celery.yaml").write_text(CONFIG, encoding="utf-8")
    # Bytecode is cached as an installed package has it (pip compiles at install): with
    # PYTHONDONTWRITEBYTECODE set, every command of an editable checkout compiled taskq's
    # modules again (30 to 40 ms of a --help here), while Celery's came compiled from its wheel.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TASKQ_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"TASKQ_CONFIG": str(home / "celery.yaml"), "TASKQ_HOME": str(home),
                "TASKQ_KEY_PREFIX": f"tqb{uuid.uuid4().hex[:8]}"})
    if target.broker_url:
        env["TASKQ_BROKER_URL"] = target.broker_url
    if target.backend_url:
        env["TASKQ_RESULT_BACKEND"] = target.backend_url
    return env


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "cpus": os.cpu_count(), "cpu": model,
            "python": platform.python_version()}


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in VERSIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
