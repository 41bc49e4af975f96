"""Serving commands: the REST sidecar (taskq api) and Flower (taskq flower)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the taskq CLI."""
