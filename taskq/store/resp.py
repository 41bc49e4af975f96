"""A bare RESP2 connection for reads that must start fast (`taskq status`).

`import redis` alone takes 110 to 170 ms on a small machine (redis-py imports its asyncio
client, and asyncio with it), more than half of a status command. A status is one HGETALL:
this module sends it over a plain socket. It takes the URLs it fully understands (redis://
and unix://, with a password, a user and a database); for any other (TLS, options in the
query) `connect` returns None and the caller uses redis-py.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Reply = bytes | int | list[Any] | None


class RespError(Exception):
    """The server answered a command with an error."""


class Connection:
    """One socket to a Redis server: a command at a time, its reply parsed."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")

    def command(self, *args: str | bytes) -> Reply:
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg.encode() if isinstance(arg, str) else arg
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))
        return self._reply()

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        flat = self.command("HGETALL", key)
        if not isinstance(flat, list):
            raise ConnectionError(f"HGETALL answered {flat!r}")
        return dict(zip(flat[::2], flat[1::2], strict=True))

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def _reply(self) -> Reply:
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed by the server")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.reader.read(size + 2)[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._reply() for _ in range(count)]
        raise ConnectionError(f"unexpected reply {line[:20]!r}")


def connect(url: str, connect_timeout: float, reply_timeout: float) -> Connection | None:
    """A connection to the server of a redis:// or unix:// URL, authenticated and on its
    database; None for a URL this module does not handle. OSError if it cannot connect."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if parts.scheme not in ("redis", "unix") or set(query) - {"db"}:
        return None
    if parts.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: Any = parts.path
        db = query.get("db", ["0"])[0]
    else:
        sock = socket.socket(socket.AF_INET6 if ":" in (parts.hostname or "") else
                             socket.AF_INET, socket.SOCK_STREAM)
        address = (parts.hostname or "localhost", parts.port or 6379)
        db = parts.path.strip("/") or query.get("db", ["0"])[0]
    sock.settimeout(connect_timeout)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    sock.settimeout(reply_timeout)
    conn = Connection(sock)
    try:
        if parts.password is not None:
            user = unquote(parts.username) if parts.username else None
            conn.command("AUTH", *([user] if user else []), unquote(parts.password))
        if db != "0":
            conn.command("SELECT", db)
    except BaseException:
        conn.close()
        raise
    return conn
