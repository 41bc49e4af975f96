"""Submitters on several hosts at once through the API (`taskq api` in each host's namespace):
every task queued once with a record of its own, and priority holds across them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from fleet import HEARTBEAT, Host, start_worker, wait_for
from smtp_server import free_port

from taskq import topology
from taskq.broker.queues import depth_reader

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("hosts")]

TOKEN = "fleet-test-token"  # a non-loopback address needs one
BATCHES = 1  # of 1,000 low tasks (the most one POST takes), per host
HIGHS = 20  # high tasks per host, one POST each
CONCURRENCY = 2


def _serve(deployment: Any, host: Host) -> str:
    """`taskq api` in `host`'s namespace on its own address; its base URL once it answers."""
    port = free_port()
    env = host.env(deployment.env, heartbeat=HEARTBEAT) | {"TASKQ_API_TOKEN": TOKEN}
    with (deployment.home / f"api-{host.name}.log").open("ab") as log:
        proc = host.popen([sys.executable, "-m", "taskq", "api", "--host", host.address,
                           "--port", str(port)], env=env, stdout=log,
                          stderr=subprocess.STDOUT, cwd=deployment.home)
    url = f"http://{host.address}:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (deployment.home / f"api-{host.name}.log").read_text()
        try:
            return requests.get(f"{url}/healthz", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(ready, 30, f"the API on {host.name}")
    return url


def _post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = requests.post(url + path, json=body, timeout=60,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status_code == 202, reply.text
    return reply.json()  # type: ignore[no-any-return]


@pytest.mark.brokers("rabbitmq", "redis")
def test_api_submitters_on_three_hosts_queue_every_task_once_and_highs_go_first(
        deployment, fleet):
    store = deployment.runtime.store
    # Given three hosts each serving the API, and a worker of 2 processes on the first
    hosts = fleet(3).hosts
    with ThreadPoolExecutor(max_workers=len(hosts)) as starting:
        urls = list(starting.map(lambda host: _serve(deployment, host), hosts))
    start_worker(deployment, hosts[0], "--concurrency", str(CONCURRENCY))
    low = {"tasks": [{"task_type": "spin", "priority": "low", "parameters": {"ms": 5}}] * 1000}
    high = {"task_type": "spin", "priority": "high", "parameters": {"ms": 5}}
    with ThreadPoolExecutor(max_workers=len(hosts) * BATCHES) as pool:
        # When the three APIs take a batch of 1,000 low tasks each, all at the same time
        batches = list(pool.map(lambda url: _post(url, "/api/tasks/batch", low),
                                [url for url in urls for _ in range(BATCHES)]))
        lows = [task["id"] for batch in batches for task in batch["tasks"]]
        # And then, while the worker is working through the lows, 20 high tasks each, one
        # POST a task, all at the same time
        highs = [task["id"] for task in pool.map(lambda url: _post(url, "/api/tasks", high),
                                                 [url for url in urls for _ in range(HIGHS)])]
        highs_in = time.time()
    # Then every high task starts before the lows still waiting when the last one was in
    wait_for(lambda: all(r and r.state == "SUCCESS" for r in store.get_many(highs)), 60,
             f"every high task SUCCESS\n{deployment.worker_logs()}")
    last_high = max(r.started_at or 0 for r in store.get_many(highs) if r)
    overtaken = [r.id for r in store.get_many(lows)
                 if r and r.started_at and highs_in < r.started_at < last_high]
    # (but for those a process had already taken: one each)
    assert len(overtaken) <= CONCURRENCY, overtaken
    # When the worker stops (warmly: it finishes what it runs)
    deployment.stop_workers()
    # Then the 3,060 ids are unique, each with one record, QUEUED or run once to SUCCESS
    ids = lows + highs
    assert len(set(ids)) == len(ids) == len(hosts) * (BATCHES * 1000 + HIGHS)
    assert store.client.zcard(store.index_key) == len(ids)
    found = store.get_many(ids)
    states = {r.state for r in found if r}
    assert states <= {"QUEUED", "SUCCESS"} and all(found), states
    assert all(r.attempts == 1 for r in found if r and r.state == "SUCCESS")
    # And the broker holds exactly one message for each task still QUEUED
    waiting = _waiting_ids(deployment)
    queued = {r.id for r in found if r and r.state == "QUEUED"}
    assert [t for t in queued if waiting[t] != 1] == []
    # and none else: the warm shutdown ended and sent the acks of every task it ran
    stale = set(waiting) - queued
    assert stale == set(), [r and r.state for r in store.get_many(sorted(stale))]
    print(f"[{deployment.broker}] {len(ids)} tasks through 3 APIs; {len(ids) - len(queued)} "
          f"run; {len(stale)} run and still in the broker")


def _waiting_ids(deployment: Any) -> Counter[str]:
    """How many messages of each task id the deployment's queues hold."""
    settings = deployment.runtime.settings
    names = topology.all_queues(settings)
    reader = depth_reader(deployment.runtime)
    found: Counter[str] = Counter()
    try:
        if deployment.broker == "redis":
            for name in names:
                for key in reader._keys(name):  # type: ignore[attr-defined]
                    found.update(json.loads(raw)["headers"]["id"]
                                 for raw in reader.client.lrange(key, 0, -1))  # type: ignore
            return found
    finally:
        reader.close()
    from kombu import Connection

    with Connection(settings.broker_url, connect_timeout=5) as conn:
        channel = conn.channel()  # unacknowledged: back in their queues when it closes
        for name in names:
            while (message := channel.basic_get(name, no_ack=False)) is not None:
                found[message.headers["id"]] += 1
    return found
