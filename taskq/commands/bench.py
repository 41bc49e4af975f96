"""The benchmark command: taskq bench against its peers on the same broker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).


def bench(
    broker: Annotated[str, typer.Option(
        "--broker", help="Comma-separated: embedded, rabbitmq, redis.")] = "embedded",
    size: Annotated[str, typer.Option(
        "--size", help="full (10,000 tasks; minutes) or tiny (a smoke test).")] = "full",
    peers: Annotated[str, typer.Option(
        "--peers", help="Comma-separated: celery, dramatiq, huey (the bench extra installs "
        "the last two); empty for taskq alone.")] = "celery",
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
    """Benchmark taskq against Celery, Dramatiq and Huey on the same broker."""
    import json

    from taskq.bench import peers as peer_list
    from taskq.bench import run
    from taskq.term import render

    kinds = run.checked(broker, size, runs)
    names, notes = peer_list.usable(peer_list.parse(peers))
    for note in notes:
        render.console(stderr=True).print(note)
    results = run.run(kinds, size, redis_url, amqp_url, runs, names)
    if out is not None:
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    _show(results, json_)


def _show(results: dict[str, Any], json_: bool) -> None:
    """JSON, tables on a terminal, or aligned text in a pipe."""
    import sys

    from taskq.bench import report
    from taskq.term import render

    console = render.console()
    if json_:
        render.print_json(results)
    elif console.is_terminal:
        for table in report.tables(results):
            console.print(table)
    else:
        sys.stdout.write(report.plain(results))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the taskq CLI."""
    app.command("bench")(bench)
