"""The health checks are bounded as the README states: a server must accept a connection
within 3 s, and a Redis server (broker or backend) must answer within 5 s; /healthz is the
two checks, so it answers within their sum."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from taskq import config
from taskq.api import create_app
from taskq.broker import health
from taskq.runtime import Runtime
from taskq.urls import CONNECT_TIMEOUT, REPLY_TIMEOUT

REPO = Path(__file__).resolve().parents[2]
# Room for a loaded machine beyond a bound; less than the 2 s between the two bounds.
SLACK = 1.5


@contextmanager
def silent_port() -> Iterator[int]:
    """A port whose server accepts connections (the kernel completes them) and never
    answers: a hung server."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@contextmanager
def unanswered_port() -> Iterator[int]:
    """A port where a connection is never completed: its one-place accept queue is full, so
    the kernel drops new connection requests (as a firewall or a lost host would)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            yield port


def _runtime(tmp_path: Path, broker: str, backend: str) -> Runtime:
    env = {"TASKQ_BROKER_URL": broker, "TASKQ_RESULT_BACKEND": backend,
           "TASKQ_HOME": str(tmp_path)}
    return Runtime(config.load(env=env, path=REPO / "config" / "celery.yaml"))


def _timed(check: Callable[[Runtime], health.Check], runtime: Runtime
           ) -> tuple[health.Check, float]:
    began = time.monotonic()
    return check(runtime), time.monotonic() - began


def _both_timed(runtime: Runtime) -> list[tuple[health.Check, float]]:
    """The broker's and the backend's check, each with how long it took (run at the same
    time, to save the wait)."""
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(_timed, (health.check_broker, health.check_backend),
                             (runtime, runtime)))


@pytest.fixture(autouse=True, scope="module")
def _imported(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The first checks import Celery, kombu's transports and redis-py (a second or more
    # under load): not the checks' time. Nothing listens on port 1: refused at once.
    home = tmp_path_factory.mktemp("home")
    for broker in ("redis://127.0.0.1:1/0", "amqp://guest:guest@127.0.0.1:1//"):
        health.check_all(_runtime(home, broker, "redis://127.0.0.1:1/1"))


@pytest.mark.parametrize(("server", "broker", "bound"), [
    # a Redis that accepts connections and never replies, as broker and as backend: each
    # must answer within 5 s
    pytest.param(silent_port, "redis://127.0.0.1:{port}/0", REPLY_TIMEOUT,
                 id="a redis that never answers"),
    # a RabbitMQ broker and a Redis backend whose connections never complete: each must
    # accept the connection within 3 s
    pytest.param(unanswered_port, "amqp://guest:guest@127.0.0.1:{port}//", CONNECT_TIMEOUT,
                 id="a server that never takes the connection"),
])
def test_a_hung_server_is_reported_down_within_the_bound(tmp_path, server, broker, bound):
    # Given a broker and a backend on a hung server
    with server() as port:
        runtime = _runtime(tmp_path, broker.format(port=port), f"redis://127.0.0.1:{port}/1")
        # When both are checked
        checked = _both_timed(runtime)
    # Then each is reported down with the reason, within its bound
    for check, took in checked:
        assert not check.ok
        assert check.error
        assert took <= bound + SLACK, f"{check.name} took {took:.1f} s"


def test_a_redis_broker_that_never_takes_the_connection_is_down_within_3_s(tmp_path):
    with unanswered_port() as port:
        runtime = _runtime(tmp_path, f"redis://127.0.0.1:{port}/0", "redis://127.0.0.1:1/1")
        check, took = _timed(health.check_broker, runtime)
    assert not check.ok
    assert took <= CONNECT_TIMEOUT + SLACK, f"took {took:.1f} s"


def test_healthz_answers_503_within_the_sum_of_its_two_bounds(tmp_path):
    # Given a RabbitMQ broker whose connections never complete and a Redis backend that
    # never answers
    with unanswered_port() as broker_port, silent_port() as backend_port:
        runtime = _runtime(tmp_path, f"amqp://guest:guest@127.0.0.1:{broker_port}//",
                           f"redis://127.0.0.1:{backend_port}/1")
        client = create_app(runtime).test_client()
        # When /healthz is asked
        began = time.monotonic()
        reply = client.get("/healthz")
        took = time.monotonic() - began
    # Then it answers 503 naming both, within 3 s for the one and 5 s for the other
    assert reply.status_code == 503
    assert reply.json["status"] == "unavailable"
    assert reply.json["broker"]["ok"] is False and reply.json["broker"]["error"]
    assert reply.json["backend"]["ok"] is False
    assert "Timeout reading from socket" in reply.json["backend"]["error"]
    assert took <= CONNECT_TIMEOUT + REPLY_TIMEOUT + SLACK, f"took {took:.1f} s"
