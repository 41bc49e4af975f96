"""Throughput with 1, 2 and 3 worker hosts: each a network namespace (tests/hosts/fleet.py)
whose workers reach RabbitMQ and Redis through a relay, draining the same backlog.

    sudo .venv/bin/python bench/hosts.py --broker rabbitmq,redis --hosts 0,1,2,3 \\
        --tasks 20000 --out bench/results/hosts-2-cores.json

For each broker and host count: a fresh deployment (its own key prefix; on RabbitMQ a vhost
of its own), the backlog submitted with `taskq submit --from` (5 ms `spin` tasks, priorities
high, normal and low in turn), then a worker of 2 processes started on each host at once;
the drain rate is tasks / (last finish - first start), from the records. Host count 0 is
the baseline: one worker of 2 processes on this host, connected straight to the servers.
Checked and reported: every record SUCCESS, each counted done once (deployment and per
worker), the share of each host, and when each priority's last task finished.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "hosts")]

import yaml  # noqa: E402
from fleet import Fleet, launch_worker  # noqa: E402
from integration.conftest import (  # noqa: E402
    AMQP_URL,
    Deployment,
    _clean,
    _rabbitmqctl,
    test_config,
)

PRIORITIES = ("high", "normal", "low")
REDIS_URL = "redis://127.0.0.1:6379/12"  # taskq bench's database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="rabbitmq,redis")
    parser.add_argument("--hosts", default="0,1,2,3",
                        help="host counts to run; 0 is the baseline without namespaces")
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--ms", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    runs = [run(broker, int(n), args.tasks, args.ms, args.concurrency)
            for broker in args.broker.split(",") for n in args.hosts.split(",")]
    result = {"command": " ".join(sys.argv), "machine": machine(), "runs": runs}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


def run(broker: str, hosts: int, tasks: int, ms: float, concurrency: int) -> dict[str, Any]:
    """One drain of `tasks` by `hosts` hosts on `broker` (0: one worker here, straight to
    the servers), checked; its figures."""
    vhost = f"taskq-bench-{uuid.uuid4().hex[:8]}"
    dep = deployment(broker, vhost)
    try:
        with Fleet(hosts) as fleet:
            submit_backlog(dep, tasks, ms)
            started = time.time()
            args = ("--concurrency", str(concurrency))
            procs = {launch_worker(dep, host, *args): host.name for host in fleet.hosts}
            if not hosts:  # the baseline: one worker on this host, no namespace, no relay
                procs = {dep.start_worker(*args, ready=False): "local"}
            names = {dep.wait_worker_ready(proc): name for proc, name in procs.items()}
            wait_done(dep, tasks)
            figures = measure(dep, names, started)
            dep.stop_workers()
        figures.update(broker=broker, hosts=hosts, tasks=tasks, ms=ms,
                       processes=max(hosts, 1) * concurrency)
        print(json.dumps(figures), file=sys.stderr)
        return figures
    finally:
        dep.stop_workers()
        _clean(dep, dep.env)
        if broker == "rabbitmq":
            _rabbitmqctl("delete_vhost", vhost)
        shutil.rmtree(dep.home, ignore_errors=True)


def deployment(broker: str, vhost: str) -> Deployment:
    home = Path(tempfile.mkdtemp(prefix="tq-", dir="/tmp"))
    cfg = home / "celery.yaml"
    cfg.write_text(yaml.safe_dump(test_config()))
    if broker == "rabbitmq":
        assert _rabbitmqctl("add_vhost", vhost) and _rabbitmqctl(
            "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"), "rabbitmqctl failed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQ_")}
    env.update({
        "TASKQ_CONFIG": str(cfg), "TASKQ_HOME": str(home),
        "TASKQ_KEY_PREFIX": f"tqb{uuid.uuid4().hex[:8]}",
        "TASKQ_BROKER_URL": f"{AMQP_URL}/{vhost}" if broker == "rabbitmq" else REDIS_URL,
        "TASKQ_RESULT_BACKEND": REDIS_URL,
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "integration"), str(REPO)]),
    })
    return Deployment(home=home, env=env, broker=broker)


def submit_backlog(dep: Deployment, tasks: int, ms: float) -> None:
    path = dep.home / "backlog.jsonl"
    path.write_text("".join(
        json.dumps({"task_type": "spin", "priority": PRIORITIES[n % 3],
                    "parameters": {"ms": ms}}) + "\n" for n in range(tasks)))
    done = dep.cli("submit", "--from", str(path), timeout=600)
    assert done.returncode == 0, done.stderr


def wait_done(dep: Deployment, tasks: int, timeout: float = 1800) -> None:
    store = dep.runtime.store
    deadline = time.monotonic() + timeout
    while int(store.client.hget(store.stats_key, "done") or 0) < tasks:
        assert time.monotonic() < deadline, dep.worker_logs()
        time.sleep(0.2)  # polling the deployment's counter


def measure(dep: Deployment, names: dict[str, str], started: float) -> dict[str, Any]:
    """Drain rate, checks and shares from the records."""
    store = dep.runtime.store
    ids = [m.decode() for m in store.client.zrange(store.index_key, 0, -1)]
    records = [r for chunk in range(0, len(ids), 1000)
               for r in store.get_many(ids[chunk:chunk + 1000]) if r]
    first = min(r.started_at or 0 for r in records)
    last = max(r.finished_at or 0 for r in records)
    done = {names[w]: int(store.client.hget(store.worker_key(w), "done") or 0) for w in names}
    return {
        "tasks_per_s": round(len(records) / (last - first), 1),
        "drain_s": round(last - first, 2),
        "workers_started_s": round(first - started, 2),
        "all_success": all(r.state == "SUCCESS" for r in records) and len(records) == len(ids),
        "done_once": int(store.client.hget(store.stats_key, "done") or 0) == len(ids)
        == sum(done.values()),
        "done_per_host": done,
        "last_finish_s_by_priority": {
            p: round(max(r.finished_at or 0 for r in records if r.priority == p) - first, 2)
            for p in PRIORITIES},
    }


def machine() -> dict[str, Any]:
    rabbit = subprocess.run(["rabbitmqctl", "version"], capture_output=True, text=True)
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release(), "rabbitmq": rabbit.stdout.strip(),
            "load_at_start": os.getloadavg()}


if __name__ == "__main__":
    main()
