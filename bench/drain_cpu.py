"""Where a taskq worker's CPU goes while it drains a backlog: the CPU time of its main process
and of each pool process over the drain, as a share of one core.

    python bench/drain_cpu.py --tasks 10000

A worker of 2 processes (`taskq worker -c 2 --type noop`, a process of its own) drains that
many no-op tasks queued beforehand on Redis 127.0.0.1:6379 db 12 (broker and records), under
a key prefix of its own, deleted after. The drain is timed from the first task's finish to
the last one's, as `taskq bench` times it; a process near 100% of a core would be the bound.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

from taskq import config
from taskq.bench.measure import delete_matching
from taskq.bench.run import CONFIG
from taskq.bulk import submit_all
from taskq.request import SubmitRequest
from taskq.runtime import Runtime
from taskq.submit import prepare

REDIS = "redis://127.0.0.1:6379/12"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    tasks = parser.parse_args().tasks
    with tempfile.TemporaryDirectory(prefix="tq-") as home:
        env = _env(Path(home))
        runtime = Runtime(config.load(env=env))
        try:
            _drain(runtime, env, Path(home), tasks)
        finally:
            prefix = env["TASKQ_KEY_PREFIX"]
            for pattern in (f"{prefix}*", f"_kombu.binding*.{prefix}.*"):
                delete_matching(runtime.store.client, pattern)


def _env(home: Path) -> dict[str, str]:
    (home / "celery.yaml").write_text(CONFIG, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQ_")}
    env.update({"TASKQ_CONFIG": str(home / "celery.yaml"), "TASKQ_HOME": str(home),
                "TASKQ_KEY_PREFIX": f"tqcpu{uuid.uuid4().hex[:8]}",
                "TASKQ_BROKER_URL": REDIS, "TASKQ_RESULT_BACKEND": REDIS})
    return env


def _drain(runtime: Runtime, env: dict[str, str], home: Path, tasks: int) -> None:
    ids = [r.id for r in submit_all(runtime, [prepare(runtime.settings,
                                                      SubmitRequest(type="noop"))
                                              for _ in range(tasks)])]
    worker = subprocess.Popen([sys.executable, "-m", "taskq", "worker", "-c", "2", "--type",
                               "noop"], env=env, cwd=home, stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT)
    try:
        _finished(runtime, ids[0])
        main_process = psutil.Process(worker.pid)
        processes = {"main": main_process} | {
            f"pool {n}": child for n, child in enumerate(main_process.children(), 1)}
        before = {name: _cpu(p) for name, p in processes.items()}
        started = time.time()
        _finished(runtime, ids[-1])
        wall = time.time() - started
        print(f"drained {tasks - 1} tasks in {wall:.2f} s ({(tasks - 1) / wall:,.0f}/s)")
        for name, process in processes.items():
            used = _cpu(process) - before[name]
            print(f"  {name}: {used:.2f} s of CPU, {100 * used / wall:.0f}% of a core")
    finally:
        worker.terminate()
        worker.wait(30)


def _finished(runtime: Runtime, task_id: str) -> None:
    while runtime.store.client.hget(runtime.store.key(task_id), "finished_at") is None:
        time.sleep(0.005)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


if __name__ == "__main__":
    main()
