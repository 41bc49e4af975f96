"""Runs Flower, the Celery monitoring UI, against the configured broker (import is heavy)."""

from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING

from taskq.config import BASIC_AUTH
from taskq.errors import UsageError
from taskq.urls import exposure_problem

if TYPE_CHECKING:
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).


def argv(port: int, address: str, basic_auth: str | None) -> list[str]:
    """The `celery flower` arguments; basic auth also turns on Flower's HTTP API."""
    args = ["--quiet", "flower", f"--port={port}", f"--address={address}"]
    if basic_auth:
        args.append(f"--basic_auth={basic_auth}")
    return args


def run(runtime: Runtime, port: int | None = None, address: str = "127.0.0.1",
        basic_auth: str | None = None) -> None:
    """Serve Flower in this process until interrupted (SIGTERM stops it cleanly)."""
    settings = runtime.settings.flower
    auth = basic_auth or settings.basic_auth
    if auth is not None and not BASIC_AUTH.match(auth):
        raise UsageError("--basic-auth must look like user:password (no spaces)")
    problem = exposure_problem(address, auth, "Flower", "set flower.basic_auth or --basic-auth")
    if problem:
        raise UsageError(problem)
    try:
        import flower  # noqa: F401 - only to say what is missing
    except ImportError:
        raise UsageError("Flower is not installed: pip install 'taskq[flower]'") from None
    port = port or settings.port
    ensure_free(address, port)
    # Flower runs --quiet: say where it serves, as `taskq api` does.
    print(f"taskq flower listening on http://{address}:{port}", file=sys.stderr, flush=True)
    runtime.celery.start(argv(port, address, auth))


def ensure_free(address: str, port: int) -> None:
    """UsageError if Flower could not listen on `address`:`port` (taken, or no such address):
    it would fail only after starting, with a traceback. Bound as tornado binds (reusing an
    address in TIME_WAIT), on every address the name resolves to, then released."""
    from taskq.api.server import listen_error

    try:
        found = socket.getaddrinfo(address or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        for family, kind, proto, _, sockaddr in found:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(sockaddr)
    except OSError as exc:  # socket.gaierror included: an unknown address
        raise listen_error(address, port, exc) from None
