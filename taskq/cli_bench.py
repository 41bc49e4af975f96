"""The benchmark command: taskq bench against plain Celery on the same broker."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the taskq CLI."""
