"""Serving commands: the REST sidecar (taskq api) and Flower (taskq flower)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from taskq.commands.common import runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

HostOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045 - typer needs Optional
    "--host", help="Address to listen on (default: api.host, 127.0.0.1).")]
PortOpt = Annotated[Optional[int], typer.Option(  # noqa: UP045
    "--port", min=1, max=65535, help="Port to listen on, 1-65535 (default from the config).")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the taskq CLI."""
    app.command("api")(api)
    app.command("flower")(flower)


def api(host: HostOpt = None, port: PortOpt = None) -> None:
    """Serve the REST API (waitress) until Ctrl-C; needs a token to listen beyond loopback."""
    from taskq.api import server

    server.serve(runtime(), host, port)


def flower(
    port: PortOpt = None,
    address: Annotated[str, typer.Option(
        "--address", help="Address to listen on; beyond loopback needs basic auth.")
    ] = "127.0.0.1",
    basic_auth: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--basic-auth", help="user:password (default: flower.basic_auth).")] = None,
) -> None:
    """Run Flower, the Celery monitoring UI, against the configured broker until Ctrl-C."""
    from taskq import flower as flowers

    flowers.run(runtime(), port, address, basic_auth)
