"""Serves the sidecar with waitress, refusing an open port without a token."""

from __future__ import annotations

import ipaddress
import logging
import sys
from typing import TYPE_CHECKING

from taskq.errors import TaskqError, UsageError

if TYPE_CHECKING:
    from taskq.runtime import Runtime

THREADS = 8  # requests served at once; each holds at most one broker or Redis call
CHANNEL_TIMEOUT = 30  # seconds an idle or slow client connection is kept
# waitress buffers a body before Flask sees it: it cuts off far larger bodies (plain-text
# 413, nothing buffered), Flask answers the JSON 413 from api.max_body_bytes up to there.
WAITRESS_BODY_FACTOR = 4


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None, what: str = "the API",
                   fix: str = "set api.token in the config or TASKQ_API_TOKEN") -> None:
    """Refuse to listen beyond this machine without credentials."""
    if not token and not is_loopback(host):
        raise UsageError(f"refusing to serve {what} on {host} without authentication: {fix}, "
                         "or listen on 127.0.0.1")


def serve(runtime: Runtime, host: str | None = None, port: int | None = None) -> None:
    """Serve until interrupted; `host`/`port` override api.host/api.port."""
    from waitress import create_server

    from taskq import logs
    from taskq.api import create_app

    api = runtime.settings.api
    host, port = host or api.host, port if port is not None else api.port
    check_exposure(host, api.token)
    logs.configure(runtime.settings)
    # Built once here, not raced by the first requests' threads (starts an embedded broker).
    runtime.celery, runtime.store  # noqa: B018
    try:
        server = create_server(create_app(runtime), host=host, port=port, threads=THREADS,
                               channel_timeout=CHANNEL_TIMEOUT, ident="taskq",
                               max_request_body_size=api.max_body_bytes * WAITRESS_BODY_FACTOR)
    except OSError as exc:
        raise TaskqError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    logging.getLogger("taskq.api").info("taskq api listening on http://%s:%s", host, port)
    sys.stderr.flush()
    server.run()
