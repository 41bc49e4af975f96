"""taskq as its users run it: `taskq submit --from FILE` as a process of its own (start-up
included) and the sidecar's batch route over HTTP, on a key prefix of their own (no worker
takes these tasks: they are counted queued, then removed)."""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from taskq import config
from taskq.bench import measure, taskfile
from taskq.bench.figures import Value
from taskq.bench.scenarios import Sizes
from taskq.bench.taskq_side import TaskqSide
from taskq.errors import TaskqError
from taskq.runtime import Runtime

BATCH_ROUTE = "/api/tasks/batch"
HTTP_TIMEOUT = 120.0  # a batch of 1,000 takes well under a second; a stuck server does not
READY_TIMEOUT = 30.0
FILE_TIMEOUT = 900.0  # `submit --from` of 100,000 tasks on a slow, busy machine


def api_installed() -> bool:
    """Whether the sidecar can run (the api extra)."""
    return all(importlib.util.find_spec(m) is not None for m in ("flask", "waitress"))


def measure_all(env: Mapping[str, str], home: Path, sizes: Sizes) -> dict[str, Value]:
    """The user-facing bulk figures, each in tasks a second."""
    env = {**env, "TASKQ_KEY_PREFIX": env["TASKQ_KEY_PREFIX"] + "u"}
    side = TaskqSide(Runtime(config.load(env=env)), env, home)
    taskfile.add_sample(home / "files")
    try:
        for _ in range(sizes.warm_runs):  # untimed: caches warm, as a user's are
            from_file(env, home, 1)
        side.purge()
        found: dict[str, Value] = {}
        for key, lines in (("submit_file_per_s", sizes.file_lines),
                           ("submit_big_file_per_s", sizes.big_file_lines)):
            found[key] = measure.rate(lines, from_file(env, home, lines))
            _forget(side)
        found["submit_http_batch_per_s"] = None
        if api_installed():
            seconds = http_batch(env, home, sizes.http_tasks, sizes.http_batch)
            found["submit_http_batch_per_s"] = measure.rate(sizes.http_tasks, seconds)
        return found
    finally:
        _forget(side)


def _forget(side: TaskqSide) -> None:
    side.purge()
    side.cleanup()


def from_file(env: Mapping[str, str], home: Path, lines: int) -> float:
    """Seconds of the whole `taskq submit --from FILE` process on `lines` typed tasks."""
    path = taskfile.write(home / f"tasks-{lines}.jsonl", lines)
    argv = [sys.executable, "-m", "taskq", "submit", "--from", str(path)]
    (seconds,) = measure.command_times(argv, env, 1, timeout=FILE_TIMEOUT)
    path.unlink()
    return seconds


def http_batch(env: Mapping[str, str], home: Path, tasks: int, per_request: int) -> float:
    """Seconds to POST `tasks` typed tasks, `per_request` a request on one connection, to a
    `taskq api` process started (and ready) beforehand."""
    bodies = [json.dumps({"tasks": [taskfile.task(i) for i in
                                    range(start, min(start + per_request, tasks))]}).encode()
              for start in range(0, tasks, per_request)]
    port = free_port()
    server = measure.start([sys.executable, "-m", "taskq", "api", "--port", str(port)], env,
                           str(home / "api.log"))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        measure.poll(lambda: _healthy(port), READY_TIMEOUT, "taskq api start")
        start = time.perf_counter()
        for body in bodies:
            _post(conn, body)
        return time.perf_counter() - start
    finally:
        conn.close()
        measure.stop(server)


def _post(conn: http.client.HTTPConnection, body: bytes) -> None:
    conn.request("POST", BATCH_ROUTE, body, {"Content-Type": "application/json"})
    reply = conn.getresponse()
    text = reply.read()
    if reply.status != 202:
        raise TaskqError(f"benchmark: POST {BATCH_ROUTE} answered {reply.status}: "
                         f"{text[:300].decode(errors='replace')}")


def _healthy(port: int) -> bool | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        return True if conn.getresponse().status == 200 else None
    except OSError:
        return None
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
