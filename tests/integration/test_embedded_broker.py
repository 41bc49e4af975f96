"""The embedded broker: a private redis-server on a unix socket, started on demand."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from taskq.broker.embedded import MAX_SOCKET_PATH, EmbeddedBroker
from taskq.errors import BrokerUnavailable, ConfigError

pytestmark = pytest.mark.integration

STARTER = """
import sys
from pathlib import Path
from taskq.broker.embedded import EmbeddedBroker
broker = EmbeddedBroker(Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
print(broker.ensure_running(), flush=True)
"""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    if len(os.fsencode(tmp_path / "redis.sock")) <= MAX_SOCKET_PATH:
        yield tmp_path
        return
    short = Path(tempfile.mkdtemp(prefix="taskq-", dir="/tmp"))  # tmp_path is too long a socket
    yield short
    shutil.rmtree(short, ignore_errors=True)


@pytest.fixture
def broker(home: Path) -> Iterator[EmbeddedBroker]:
    embedded = EmbeddedBroker(home)
    yield embedded
    embedded.stop()


def client(broker: EmbeddedBroker) -> redis.Redis:
    return redis.Redis.from_url(broker.redis_url, socket_timeout=2, socket_connect_timeout=2)


def servers_on(socket_path: Path) -> list[int]:
    """Live processes whose command line (redis-server's title) names this socket."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if os.fsencode(socket_path) in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


def exited(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_first_use_starts_a_server_that_answers_ping(broker: EmbeddedBroker) -> None:
    assert broker.is_running() is False

    assert broker.ensure_running() is True

    assert broker.is_running() is True
    assert client(broker).ping() is True
    assert broker.pid() is not None


def test_urls_name_the_socket_under_home(broker: EmbeddedBroker, home: Path) -> None:
    assert broker.socket_path == home.absolute() / "redis.sock"
    assert broker.broker_url == f"redis+socket://{home.absolute()}/redis.sock"
    assert broker.redis_url == f"unix://{home.absolute()}/redis.sock"


def test_server_never_listens_on_tcp_and_only_its_owner_may_connect(
    broker: EmbeddedBroker,
) -> None:
    broker.ensure_running()

    assert client(broker).config_get("port") == {"port": "0"}
    assert stat.S_IMODE(broker.socket_path.stat().st_mode) == 0o700


def test_second_ensure_running_returns_false_and_keeps_the_same_server(
    broker: EmbeddedBroker,
) -> None:
    broker.ensure_running()
    first = broker.pid()

    assert broker.ensure_running() is False

    assert broker.pid() == first
    assert servers_on(broker.socket_path) == [first]


def test_two_processes_starting_at_once_start_exactly_one_server(
    broker: EmbeddedBroker, home: Path,
) -> None:
    # Given four processes, each ready to call ensure_running
    starters = [subprocess.Popen([sys.executable, "-c", STARTER, str(home)], text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                for _ in range(4)]
    for starter in starters:
        assert starter.stdout is not None and starter.stdout.readline() == "ready\n"
    # When they are all released at once
    for starter in starters:
        assert starter.stdin is not None
        starter.stdin.write("\n")
        starter.stdin.flush()
    outputs = [starter.communicate(timeout=30)[0].strip() for starter in starters]
    # Then exactly one of them started the one server now running
    assert [starter.returncode for starter in starters] == [0, 0, 0, 0]
    assert sorted(outputs) == ["False", "False", "False", "True"]
    assert servers_on(broker.socket_path) == [broker.pid()]


def test_queued_data_survives_stop_and_restart(broker: EmbeddedBroker) -> None:
    # Given a list written to a running server
    broker.ensure_running()
    client(broker).rpush("queue", "a", "b")
    # When it is stopped and started again
    assert broker.stop() is True
    assert broker.is_running() is False
    assert broker.ensure_running() is True
    # Then the list is still there, from the append-only file
    assert client(broker).lrange("queue", 0, -1) == [b"a", b"b"]


def test_stop_returns_once_the_server_process_has_exited(broker: EmbeddedBroker) -> None:
    broker.ensure_running()
    pid = broker.pid()
    assert pid is not None

    assert broker.stop() is True

    assert exited(pid)
    assert broker.pid() is None


def test_stop_on_a_stopped_broker_returns_false(broker: EmbeddedBroker) -> None:
    assert broker.stop() is False

    broker.ensure_running()
    broker.stop()

    assert broker.stop() is False


def test_stale_socket_and_pidfile_from_a_crash_do_not_block_a_start(
    broker: EmbeddedBroker, home: Path,
) -> None:
    # Given the socket file and pidfile a crashed server leaves behind
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(broker.socket_path))
    (home / "redis.pid").write_text(f"{os.getpid()}\n")
    assert broker.socket_path.exists() and not broker.is_running()
    # When the broker is needed
    started = broker.ensure_running(timeout=5)
    # Then a new server starts on that socket
    assert started is True
    assert client(broker).ping() is True


def test_a_server_that_dies_while_starting_is_reported_with_its_log(
    broker: EmbeddedBroker, home: Path,
) -> None:
    # Given an append-only file the server cannot load
    (home / "redis").mkdir()
    (home / "redis" / "appendonly.aof").write_text("not an aof\n")
    # When the broker is needed, then the failure names the broker and quotes the log
    with pytest.raises(BrokerUnavailable) as raised:
        broker.ensure_running(timeout=5)
    assert raised.value.url == broker.broker_url
    assert "redis.log" in raised.value.message
    assert not broker.is_running()


def test_too_long_a_home_path_is_a_config_error_suggesting_taskq_home() -> None:
    home = Path("/tmp") / ("x" * MAX_SOCKET_PATH)

    with pytest.raises(ConfigError) as raised:
        EmbeddedBroker(home)

    assert str(home / "redis.sock") in raised.value.message
    assert "TASKQ_HOME" in raised.value.message
    assert not home.exists()
