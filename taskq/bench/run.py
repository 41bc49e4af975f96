"""Runs every scenario on one broker for taskq and for the plain Celery app, in one go."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from taskq import config
from taskq.bench import measure, targets
from taskq.bench.celery_side import CelerySide
from taskq.bench.taskq_side import TaskqSide
from taskq.runtime import Runtime

DRAIN_TIMEOUT = 900.0
CONFIG = """\
# Written by taskq bench: the benchmark's own task types.
task_types:
  noop: {function: "taskq.bench.jobs:noop", retry: {max_retries: 0}}
  spin:
    function: "taskq.bench.jobs:spin"
    parameters: {ms: {kind: number, required: true}}
    retry: {max_retries: 0}
logging: {format: text, level: WARNING}
"""


@dataclass(frozen=True)
class Sizes:
    tasks: int = 10_000  # enqueued through each path, and drained
    round_trips: int = 300  # for the latency percentiles
    lows: int = 2_000  # low tasks queued before the high ones
    probes: int = 5  # high tasks sent one after another while the lows run
    low_ms: float = 10.0  # CPU time of each of those tasks
    cli_runs: int = 5  # runs of each command whose start-up is timed


SIZES = {
    "full": Sizes(),
    "tiny": Sizes(tasks=40, round_trips=5, lows=12, probes=1, cli_runs=1),
}


class Side(Protocol):
    name: str

    def enqueue_single(self, n: int) -> float: ...
    def enqueue_bulk(self, n: int) -> tuple[list[str], float]: ...
    def purge(self) -> None: ...
    def start_worker(self) -> float: ...
    def stop_worker(self) -> None: ...
    def finish_times(self, ids: list[str]) -> list[float] | None: ...
    def round_trip(self) -> float: ...
    def priority(self, lows: int, ms: float, probes: int) -> int: ...
    def help_argv(self) -> list[str]: ...
    def status_argv(self, task_id: str) -> list[str]: ...
    def stored_bytes(self, task_id: str) -> int: ...
    def cleanup(self) -> None: ...


def run(brokers: list[str], size: str, redis_url: str, amqp_url: str | None,
        runs: int = 1) -> dict[str, Any]:
    """Every scenario on each broker, `runs` times (round by round, so a machine that slows
    down weighs on every broker alike); the median of each figure as plain data, and with
    more than one run, every run's figures under "runs"."""
    sizes = SIZES[size]
    out: dict[str, Any] = {"size": size, "sizes": asdict(sizes), "machine": machine(),
                           "versions": versions(), "started_at": time.time(), "brokers": {}}
    each: dict[str, list[dict[str, dict[str, float]]]] = {kind: [] for kind in brokers}
    for _ in range(runs):
        for kind in brokers:
            each[kind].append(run_broker(kind, sizes, redis_url, amqp_url))
    out["brokers"] = {kind: medians(found) for kind, found in each.items()}
    out["repeat"] = runs
    if runs > 1:
        out["runs"] = each
    out["seconds"] = round(time.time() - out["started_at"], 1)
    return out


def medians(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per side, the median of each figure over `runs` (each: side -> figure -> value)."""
    return {side: {key: statistics.median(run[side][key] for run in runs)
                   for key in figures}
            for side, figures in runs[0].items()}


def run_broker(kind: str, sizes: Sizes, redis_url: str, amqp_url: str | None
               ) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="tqb-", dir="/tmp"))
    try:
        with targets.opened(kind, home, redis_url, amqp_url) as target:
            env = _env(home, target)
            runtime = Runtime(config.load(env=env))
            runtime.broker_url  # noqa: B018 - starts the embedded broker before timing
            sides: list[Side] = [TaskqSide(runtime, env, home),
                                 CelerySide(target.plain_broker, target.plain_backend,
                                            env, home)]
            try:
                return {side.name: scenarios(side, sizes, env) for side in sides}
            finally:
                for side in sides:
                    side.stop_worker()
                    side.cleanup()
                if runtime.embedded is not None:
                    runtime.embedded.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)


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


def scenarios(side: Side, sizes: Sizes, env: dict[str, str]) -> dict[str, float]:
    """Enqueue, drain and start-to-first-result, latency, priority and CLI start-up."""
    figures = {"enqueue_single_per_s": measure.rate(sizes.tasks,
                                                    side.enqueue_single(sizes.tasks))}
    side.purge()
    ids, seconds = side.enqueue_bulk(sizes.tasks)
    figures["enqueue_bulk_per_s"] = measure.rate(sizes.tasks, seconds)
    figures.update(_drain(side, ids))
    figures.update(_latency(side, sizes.round_trips))
    figures["priority_overtakes"] = side.priority(sizes.lows, sizes.low_ms, sizes.probes)
    figures["stored_bytes"] = side.stored_bytes(ids[0])
    side.stop_worker()
    figures["help_s"] = measure.command_seconds(side.help_argv(), env, sizes.cli_runs)
    figures["status_s"] = measure.command_seconds(side.status_argv(ids[0]), env,
                                                  sizes.cli_runs)
    return figures


def _drain(side: Side, ids: list[str]) -> dict[str, float]:
    started = side.start_worker()
    finishes = measure.poll(lambda: side.finish_times(ids), DRAIN_TIMEOUT, "drain")
    first, last = min(finishes), max(finishes)
    return {"worker_ready_s": first - started,
            "drain_per_s": measure.rate(len(ids) - 1, last - first)}


def _latency(side: Side, round_trips: int) -> dict[str, float]:
    for _ in range(3):  # warm connections and subscriptions
        side.round_trip()
    times = [side.round_trip() for _ in range(round_trips)]
    return {"latency_p50_ms": statistics.median(times) * 1000,
            "latency_p99_ms": measure.percentile(times, 99) * 1000}


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
    for name in ("taskq", "celery", "kombu", "redis", "hiredis", "amqp", "billiard"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
