"""URLs: secrets masked for display, the Redis client a URL names, and which addresses stay on
this machine. Imports nothing else of taskq, so every layer may use it."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

# Credentials right after a scheme: everything up to the URL's last @ (a password may hold
# an unencoded @, /, : or anything but a space, so a careless URL is still masked whole).
# With a colon the user before it is kept (user:***@); without one, all of it (***@).
_SECRET = re.compile(r"(?<=://)(?:([^:/@\s]*):\S*|[^:/\s]*)@")

# Seconds to wait for a connection or a reply before calling a server unreachable.
CONNECT_TIMEOUT = 3.0
REPLY_TIMEOUT = 5.0
_REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://", "unix://")


def redis_client_url(url: str) -> str | None:
    """The redis-py URL of a kombu Redis URL, database included (None if not Redis)."""
    if not url.startswith(_REDIS_SCHEMES):
        return None
    if url.startswith("redis+socket://"):
        path, _, query = url[len("redis+socket://"):].partition("?")
        db = query.partition("virtual_host=")[2].partition("&")[0] or "0"
        return f"unix://{path}?db={db}"
    if url.startswith("unix://"):
        return url if "db=" in url else url + ("&" if "?" in url else "?") + "db=0"
    host = url.partition("://")[2].rpartition("@")[2]
    return url if "/" in host else url + "/0"


def redis_client(url: str, connect_timeout: float = CONNECT_TIMEOUT,
                 reply_timeout: float = REPLY_TIMEOUT, **options: Any) -> redis.Redis:
    """A redis-py client for a kombu or redis-py URL, with both timeouts (made lazily). A
    server that refuses the URL's database (beyond its `databases`) counts as unreachable,
    as a refused password does: the error then names the URL."""
    import redis

    return redis.Redis.from_url(redis_client_url(url) or url,
                                socket_connect_timeout=connect_timeout,
                                socket_timeout=reply_timeout,
                                redis_connect_func=_on_connect, **options)


def _on_connect(connection: Any) -> None:
    """redis-py's own connection set-up (AUTH, SELECT), with a refused SELECT raised as a
    ConnectionError instead of a ResponseError."""
    import redis

    try:
        connection.on_connect()
    except redis.ResponseError as exc:
        raise redis.ConnectionError(f"database {connection.db} refused: {exc}") from None


def mask_url(url: str | None) -> str | None:
    """Return `url` (or a text holding URLs) with any password replaced by ***."""
    if not url:
        return url
    return _SECRET.sub(lambda m: "***@" if m.group(1) is None else f"{m.group(1)}:***@", url)



def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False



def exposure_problem(host: str, token: str | None, what: str, fix: str) -> str | None:
    """Why serving `what` on `host` without credentials is refused (None when it is not)."""
    if not token and not is_loopback(host):
        return (f"refusing to serve {what} on {host} without authentication: {fix}, "
                "or listen on 127.0.0.1")
    return None
