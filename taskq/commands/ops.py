"""Operations commands: list, cancel, retry, dead letters, queues, workers and watch."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from taskq.commands import completion
from taskq.commands.common import IdArg, JsonOpt, runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

TypeOpt = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045 - typer needs Optional
    "--type", "-t", autocompletion=completion.task_types,
    help="Only this task type (alias allowed); repeatable or comma-separated.")]
PriorityOpt = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--priority", "-p", autocompletion=completion.priorities,
    help="Only this priority; repeatable or comma-separated.")]
OneTypeOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--type", "-t", autocompletion=completion.task_types,
    help="Only dead letters of this task type.")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", help="At most this many (1-1000).")]

dlq_app = typer.Typer(help="Dead letters: tasks that failed for good.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the taskq CLI."""
    app.command("list")(list_)
    app.command()(cancel)
    app.command()(retry)
    app.command()(queues)
    app.command()(workers)
    app.command()(watch)
    app.add_typer(dlq_app, name="dlq")


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def list_(
    state: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--state", "-s", help="WAITING, QUEUED, SCHEDULED, STARTED, RETRY, SUCCESS, FAILURE or "
        "REVOKED; repeatable or comma-separated.")] = None,
    type_: TypeOpt = None,
    priority: PriorityOpt = None,
    since: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--since", help="Only tasks submitted in the last DURATION (90, 30s, 10m, 2h, 1d, 1w).")
    ] = None,
    limit: LimitOpt = 20,
    json_: JsonOpt = False,
) -> None:
    """List tasks, newest first, from the records kept since submit."""
    from taskq.store import listing
    from taskq.task import record_json
    from taskq.term import render, tables

    rt = runtime(start_broker=False)
    query = listing.build_query(rt.settings, _split(state), _split(type_), _split(priority),
                                since, limit)
    found = listing.list_tasks(rt, query)
    if json_:
        render.print_json([record_json(r) for r in found])
    else:
        tables.show(tables.tasks_grid(found), "no tasks match")


def cancel(
    task_id: IdArg,
    terminate: Annotated[bool, typer.Option(
        "--terminate", help="Also stop the task if it is running (SIGTERM to its process).")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Cancel a queued, delayed or retrying task (a running one with --terminate)."""
    from taskq import control
    from taskq.task import record_json
    from taskq.term import render

    rt = runtime()
    record = control.cancel(rt, rt.task_id(task_id), terminate)
    if json_:
        render.print_json(record_json(record))
    else:
        render.console(stderr=True).print(f"cancelled {record.id}: REVOKED")


def retry(task_id: IdArg, json_: JsonOpt = False) -> None:
    """Submit a failed task again as a new task linked to it; prints the new id."""
    from taskq import control
    from taskq.task import record_json
    from taskq.term import render

    rt = runtime()
    task_id = rt.task_id(task_id)
    record = control.retry(rt, task_id)
    if json_:
        render.print_json(record_json(record))
    else:
        render.console(stderr=True).print(f"retried {task_id} as {record.id}")
        print(record.id)


@dlq_app.command("list")
def dlq_list(type_: OneTypeOpt = None, limit: LimitOpt = 20, json_: JsonOpt = False) -> None:
    """List dead letters, most recently failed first."""
    from taskq import dlq
    from taskq.task import record_json
    from taskq.term import render, tables

    rt = runtime(start_broker=False)
    found = dlq.dead_letters(rt, type_, limit)
    if json_:
        render.print_json([record_json(r) for r in found])
    else:
        total = dlq.count(rt, type_)
        tables.show(tables.tasks_grid(found), "no dead letters", f"dead letters: {total}")


@dlq_app.command("retry")
def dlq_retry(
    all_: Annotated[bool, typer.Option("--all", help="Retry every dead letter.")] = False,
    type_: OneTypeOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Submit every dead letter (of one type with --type) again; reports counts."""
    from taskq import dlq
    from taskq.errors import UsageError
    from taskq.term import progress, render

    if not all_:
        raise UsageError("dlq retry needs --all (use `taskq retry ID` for one task)")
    rt = runtime()
    with progress.bar(dlq.count(rt, type_), "retrying") as advance:
        report = dlq.retry_all(rt, type_, advance)
    if json_:
        render.print_json(report.to_dict())
    else:
        render.console(stderr=True).print(
            f"retried {len(report.retried)} dead letters; skipped {len(report.skipped)}")


@dlq_app.command("purge")
def dlq_purge(type_: OneTypeOpt = None, json_: JsonOpt = False, yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask (needed when stdin is not a terminal).")] = False,
) -> None:
    """Delete every dead letter (of one type with --type), after asking; reports the count."""
    from taskq import dlq
    from taskq.config import resolve_type
    from taskq.errors import UsageError
    from taskq.term import render

    rt = runtime()
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("dlq purge deletes for good: pass --yes to confirm (stdin is not "
                             "a terminal to ask on)")
        which = f"of type {resolve_type(rt.settings, type_).name}" if type_ else "of every type"
        if not typer.confirm(f"Delete every dead letter {which}?", err=True):
            render.console(stderr=True).print("nothing purged")
            return
    purged = dlq.purge(rt, type_)
    if json_:
        render.print_json({"purged": purged})
    else:
        render.console(stderr=True).print(f"purged {purged} dead letters")


def queues(type_: TypeOpt = None, priority: PriorityOpt = None, json_: JsonOpt = False) -> None:
    """Each queue's depth, by priority, the age of its oldest waiting task, its consumers."""
    from taskq.broker import queues as queue_view
    from taskq.term import render, tables

    rt = runtime(start_broker=False)
    found = queue_view.queues_now(rt, _split(type_), _split(priority))
    if json_:
        render.print_json([queue_view.queue_json(q) for q in found])
    else:
        tables.show(tables.queues_grid(found), "no queues match")


def workers(json_: JsonOpt = False) -> None:
    """Each worker: host, profile, queues, state (online, busy, gone, stopped), current task."""
    from taskq.store import workers as workers_view
    from taskq.term import render, tables

    found = workers_view.list_workers(runtime(start_broker=False))
    if json_:
        render.print_json([workers_view.worker_json(w) for w in found])
    else:
        tables.show(tables.workers_grid(found), "no workers seen in the last day")


def watch(
    type_: TypeOpt = None,
    priority: PriorityOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit.")] = False,
    interval: Annotated[float, typer.Option(
        "--interval", help="Seconds between refreshes (0.05 to 10).")] = 0.5,
    all_workers: Annotated[bool, typer.Option(
        "--all-workers", help="Show stopped workers one a row, not as one summary line.")
    ] = False,
) -> None:
    """A live view of queues, workers, latest tasks, rates, retries and dead letters."""
    from taskq.term import watch as watching

    rt = runtime(start_broker=False)
    filters = watching.Filters.parse(rt.settings, _split(type_), _split(priority))
    watching.run(rt, filters, once=once, interval=interval, all_workers=all_workers)
