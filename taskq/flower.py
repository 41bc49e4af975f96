"""Runs Flower, the Celery monitoring UI, against the configured broker (import is heavy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskq.errors import UsageError

if TYPE_CHECKING:
    from taskq.runtime import Runtime


def argv(port: int, address: str, basic_auth: str | None) -> list[str]:
    """The `celery flower` arguments; basic auth also turns on Flower's HTTP API."""
    args = ["--quiet", "flower", f"--port={port}", f"--address={address}"]
    if basic_auth:
        args.append(f"--basic_auth={basic_auth}")
    return args


def run(runtime: Runtime, port: int | None = None, address: str = "127.0.0.1",
        basic_auth: str | None = None) -> None:
    """Serve Flower in this process until interrupted (SIGTERM stops it cleanly)."""
    from taskq.api.server import check_exposure

    settings = runtime.settings.flower
    auth = basic_auth or settings.basic_auth
    if auth is not None and ":" not in auth:
        raise UsageError("--basic-auth must look like user:password")
    check_exposure(address, auth, "Flower", "set flower.basic_auth or --basic-auth")
    try:
        import flower  # noqa: F401 - only to say what is missing
    except ImportError:
        raise UsageError("Flower is not installed: pip install 'taskq[flower]'") from None
    runtime.celery.start(argv(port or settings.port, address, auth))
