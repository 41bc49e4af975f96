"""The benchmark command: taskq bench against plain Celery on the same broker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def bench(
    broker: Annotated[str, typer.Option(
        "--broker", help="Comma-separated: embedded, rabbitmq, redis.")] = "embedded",
    size: Annotated[str, typer.Option(
        "--size", help="full (10,000 tasks; a few minutes) or tiny (a smoke test).")] = "full",
    out: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--out", help="Also write the results as JSON to this file.")] = None,
    redis_url: Annotated[str, typer.Option(
        "--redis-url", help="Redis for --broker redis, and results with rabbitmq.")
    ] = "redis://127.0.0.1:6379/12",
    amqp_url: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--amqp-url", help="RabbitMQ URL (default: a vhost of its own via rabbitmqctl).")
    ] = None,
    runs: Annotated[int, typer.Option(
        "--runs", help="Run everything this many times and report each figure's median.")
    ] = 1,
    json_: Annotated[bool, typer.Option("--json", help="Print plain JSON on stdout.")] = False,
) -> None:
    """Benchmark taskq against a plain Celery app with default settings on the same broker."""
    import json

    from taskq import render
    from taskq.bench import report, run, targets
    from taskq.errors import UsageError

    kinds = [b.strip() for b in broker.split(",") if b.strip()]
    for kind in kinds:
        if kind not in targets.BROKERS:
            raise UsageError(f"unknown broker {kind!r}; use {', '.join(targets.BROKERS)}")
    if size not in run.SIZES:
        raise UsageError(f"unknown size {size!r}; use {', '.join(run.SIZES)}")
    if runs < 1:
        raise UsageError("--runs must be at least 1")
    results = run.run(kinds, size, redis_url, amqp_url, runs)
    results["rows"] = report.rows(results)
    if out is not None:
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if json_:
        render.print_json(results)
    else:
        render.console().print(report.table(results))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the taskq CLI."""
    app.command("bench")(bench)
