"""Operations commands: list, cancel, retry, dead letters, queues, workers and watch."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the taskq CLI."""
