"""Serves the sidecar with waitress, refusing an open port without a token."""

from __future__ import annotations

import errno
import logging
import sys
from typing import TYPE_CHECKING

from taskq.errors import UsageError
from taskq.urls import exposure_problem

if TYPE_CHECKING:
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

THREADS = 8  # requests served at once; each holds at most one broker or Redis call
CHANNEL_TIMEOUT = 30  # seconds an idle or slow client connection is kept
# waitress buffers a body before Flask sees it: it cuts off far larger bodies (plain-text
# 413, nothing buffered), Flask answers the JSON 413 from api.max_body_bytes up to there.
WAITRESS_BODY_FACTOR = 4


def check_exposure(host: str, token: str | None, what: str = "the API",
                   fix: str = "set api.token in the config or TASKQ_API_TOKEN") -> None:
    """Refuse to listen beyond this machine without credentials."""
    problem = exposure_problem(host, token, what, fix)
    if problem:
        raise UsageError(problem)


def require_extra() -> None:
    """UsageError unless the `api` extra (Flask, waitress, prometheus-client) is installed."""
    try:
        import flask  # noqa: F401
        import prometheus_client  # noqa: F401
        import waitress  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"the REST API is not installed ({exc.name} is missing): "
                         "pip install 'taskq[api]'") from None


def listen_error(host: str, port: int, exc: OSError | ValueError) -> UsageError:
    """The one-line error for an address taskq cannot listen on (taken, unknown, refused)."""
    if getattr(exc, "errno", None) == errno.EADDRINUSE:
        return UsageError(f"port {port} on {host} is taken by another program: "
                          "choose another with --port")
    why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return UsageError(f"cannot listen on {host}:{port}: {why}")


def serve(runtime: Runtime, host: str | None = None, port: int | None = None) -> None:
    """Serve until interrupted; `host`/`port` override api.host/api.port."""
    require_extra()
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
    except (OSError, ValueError) as exc:  # waitress: ValueError for a host it cannot resolve
        raise listen_error(host, port, exc) from None
    logging.getLogger("taskq.api").info("taskq api listening on http://%s:%s", host, port)
    sys.stderr.flush()
    server.run()
    # waitress returns from run() only once interrupted (it catches Ctrl-C itself): an
    # interrupted command ends as one (exit 130).
    raise KeyboardInterrupt
