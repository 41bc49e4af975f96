"""`status` reads a record over a bare RESP connection (taskq/store/resp.py), not through
redis-py."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis_server import RedisServer

from taskq.broker.embedded import find_redis_server
from taskq.errors import BrokerUnavailable, UnknownTask
from taskq.store import resp

pytestmark = pytest.mark.integration


@pytest.mark.brokers
def test_a_bare_read_returns_the_record_the_store_returns(deployment):
    # Given a task that ran, with parameters that JSON escapes
    deployment.start_worker()
    record = deployment.submit("data", data=[{"label": "é 😀 \"q\"", "n": 1}])
    deployment.wait(record.id, timeout=30)
    runtime = deployment.runtime
    # When status reads it, and an id that was never submitted
    read = runtime.record(record.id)
    # Then it is the store's record, and the unknown id is an UnknownTask
    assert read == runtime.store.get(record.id)
    assert read.state == "SUCCESS"
    with pytest.raises(UnknownTask):
        runtime.record("no-such-id")


def test_status_does_not_import_redis_py(deployment):
    # Given a queued task
    record = deployment.submit("data", data=[1])
    # When `status` runs in a fresh interpreter that reports whether redis-py was imported
    probe = ("import sys; from typer.testing import CliRunner; from taskq.cli import app; "
             f"out = CliRunner().invoke(app, ['status', '{record.id}', '--json']); "
             "print(out.exit_code, 'redis' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], env=deployment.env,
                          capture_output=True, text=True, timeout=60)
    # Then it succeeded without redis-py
    assert done.stdout.split() == ["0", "False"], done.stderr


def test_a_password_and_a_database_in_the_url_are_used(tmp_path: Path):
    # Given a Redis server that requires a password, with a record in database 3
    sock = Path(f"/tmp/tq-resp-{time.monotonic_ns()}.sock")
    server = subprocess.Popen([find_redis_server(), "--port", "0", "--unixsocket", str(sock),
                               "--requirepass", "s3cret", "--save", "", "--appendonly", "no",
                               "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        # When connecting with the password and database 3, and without the password
        conn = resp.connect(f"unix://:s3cret@{sock}?db=3", 3, 5)
        assert conn is not None
        conn.command("HSET", "k", "field", "välue")
        # Then the hash is read back from database 3 only, and a missing password is refused
        assert conn.hgetall("k") == {b"field": "välue".encode()}
        conn.close()
        other = resp.connect(f"unix://:s3cret@{sock}?db=0", 3, 5)
        assert other is not None and other.hgetall("k") == {}
        other.close()
        with pytest.raises(resp.RespError, match="NOAUTH"):
            resp.connect(f"unix://{sock}?db=3", 3, 5)
    finally:
        server.terminate()
        server.wait(timeout=10)
        sock.unlink(missing_ok=True)



def test_a_wrong_password_is_reported_by_status_as_the_store_reports_it(deployment, redis_url):
    # Given a result backend of the test's own that takes one password, and a deployment
    # whose backend URL carries another
    with RedisServer(password="s3cret") as server:
        deployment.env["TASKQ_BROKER_URL"] = redis_url
        deployment.env["TASKQ_RESULT_BACKEND"] = server.url(password="wrong")
        # When status runs
        result = deployment.cli("status", "some-id")
        # Then it exits 7 with the store's own one-line message: the backend, its URL with
        # the password masked, and the server's refusal of that password
        with pytest.raises(BrokerUnavailable) as refused:
            deployment.runtime.store.get("some-id")
    assert result.returncode == 7, result.stderr
    assert result.stderr == f"error: {refused.value.message}\n"
    assert "invalid username-password pair" in result.stderr
    assert f"result backend unreachable at redis://:***@127.0.0.1:{server.port}/0" \
        in result.stderr
    assert "wrong" not in result.stderr


def test_piped_status_shows_a_failure_and_its_traceback_whole_and_unpadded(deployment):
    # Given a task that failed with a traceback
    deployment.start_worker("--type", "crash")
    failed = deployment.wait(deployment.submit("crash", code=7).id, timeout=30)
    assert failed.state == "FAILURE"
    # When `taskq status` is piped
    result = deployment.cli("status", failed.id)
    # Then every field is a plain line, the traceback whole and indented under its name,
    # and no line is padded out to a terminal's width
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"id         {failed.id}" in lines
    assert "error      ValueError: bad input 7" in lines
    assert "traceback  Traceback (most recent call last):" in lines
    shown = "\n".join(line[len("traceback  "):] for line in
                      lines[lines.index("traceback  Traceback (most recent call last):"):])
    assert shown == failed.traceback.rstrip()
    assert all(line == line.rstrip() for line in lines)
