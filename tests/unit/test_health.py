"""The health checks are bounded, even against a server that never answers."""

from __future__ import annotations

import socket
from pathlib import Path

from taskq import config, health
from taskq.runtime import Runtime

REPO = Path(__file__).resolve().parents[2]


def test_a_redis_broker_that_accepts_connections_but_never_answers_is_reported_down(tmp_path):
    # Given a "broker" that accepts connections and never replies
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        env = {"TASKQ_BROKER_URL": f"redis://127.0.0.1:{port}/0",
               "TASKQ_RESULT_BACKEND": f"redis://127.0.0.1:{port}/1",
               "TASKQ_HOME": str(tmp_path)}
        runtime = Runtime(config.load(env=env, path=REPO / "config" / "celery.yaml"))
        # When the broker is checked
        check = health.check_broker(runtime)
    # Then it is reported down with a reason, instead of the check hanging
    assert not check.ok
    assert check.error
