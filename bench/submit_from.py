"""Time `taskq submit --from FILE` as a user runs it (a process of its own, start-up
included) on the benchmark's file of typed tasks (taskq/bench/taskfile.py), and print the
median wall time and CPU time of the runs.

    python bench/submit_from.py --broker embedded --lines 100000 --runs 3
    python bench/submit_from.py --broker rabbitmq --lines 100000 --runs 3 --base /tmp/base

--base DIR: also run the taskq package found in DIR (e.g. `git archive main taskq | tar -x
-C DIR`), alternately with this one, run for run, so that both see the same machine load.

embedded: a private broker under a fresh TASKQ_HOME (started by an untimed one-line run,
flushed between runs). rabbitmq: a vhost of its own on 127.0.0.1:5672 (made again between
runs, deleted after) and Redis 127.0.0.1:6379 db 12 for the records, on a key prefix of its
own (deleted after). No worker runs: the tasks are counted queued, then removed.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import redis

from taskq.bench import taskfile

AMQP = "amqp://guest:guest@127.0.0.1:5672"
REDIS = "redis://127.0.0.1:6379/12"
CONFIG = "config/celery.yaml"  # run from the repository's top, or set TASKQ_CONFIG


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", choices=("embedded", "rabbitmq"), default="embedded")
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base", help="a directory holding another taskq package")
    options = parser.parse_args()
    versions = {"this": ""} | ({"base": options.base} if options.base else {})
    with tempfile.TemporaryDirectory(prefix="tq-") as home:
        found = _measure(options.broker, Path(home), options.lines, options.runs, versions)
    for label, times in found.items():
        walls = [wall for wall, _ in times]
        cpus = [cpu for _, cpu in times]
        wall = statistics.median(walls)
        print(f"{label}: {options.broker}, {options.lines} lines, runs "
              + ", ".join(f"{w:.2f} s" for w in walls)
              + f"; median {wall:.2f} s = {options.lines / wall:,.0f} tasks/s; "
              f"CPU of the process: median {statistics.median(cpus):.2f} s")


def _measure(broker: str, home: Path, lines: int, runs: int, versions: Mapping[str, str]
             ) -> dict[str, list[tuple[float, float]]]:
    prefix = f"bulkb{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "TASKQ_HOME": str(home), "TASKQ_KEY_PREFIX": prefix,
           "TASKQ_CONFIG": os.environ.get("TASKQ_CONFIG") or str(Path(CONFIG).absolute())}
    if broker == "rabbitmq":
        _new_vhost(prefix)
        env |= {"TASKQ_BROKER_URL": f"{AMQP}/{prefix}", "TASKQ_RESULT_BACKEND": REDIS}
    path = taskfile.write(home / "tasks.jsonl", lines)
    one = taskfile.write(home / "one.jsonl", 1)
    found: dict[str, list[tuple[float, float]]] = {label: [] for label in versions}
    try:
        for where in versions.values():  # untimed: broker up, caches warm
            _run(_env(env, where), one)
        for _ in range(runs):
            for label, where in versions.items():
                found[label].append(_run(_env(env, where), path))
                _clean(broker, home, prefix)
    finally:
        _clean(broker, home, prefix, again=False)
        if broker == "embedded":
            subprocess.run([sys.executable, "-m", "taskq", "down"], env=env, check=False,
                           capture_output=True, timeout=60)
    return found


def _env(env: Mapping[str, str], where: str) -> dict[str, str]:
    return {**env, "PYTHONPATH": where} if where else dict(env)


def _run(env: Mapping[str, str], path: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `taskq submit --from path`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # (in the file's directory: `python -m` puts the working directory first on sys.path)
    done = subprocess.run([sys.executable, "-m", "taskq", "submit", "--from", str(path)],
                          env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False, timeout=900, cwd=path.parent)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"exit {done.returncode}: {done.stderr.decode()[-500:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def _clean(broker: str, home: Path, prefix: str, again: bool = True) -> None:
    if broker == "embedded":
        redis.Redis(unix_socket_path=str(home / "redis.sock")).flushdb()
        return
    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start:start + 1000])
    _ctl("delete_vhost", prefix)  # its queues and messages with it
    if again:
        _new_vhost(prefix)


def _new_vhost(name: str) -> None:
    _ctl("add_vhost", name)
    _ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=False, capture_output=True, timeout=60)


if __name__ == "__main__":
    main()
