"""Schedule commands: taskq schedule list | add | pause | resume | remove | run-now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from taskq.commands import completion
from taskq.commands.common import JsonOpt, runtime

if TYPE_CHECKING:
    from taskq.store.schedules import Stored

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

NameArg = Annotated[str, typer.Argument(help="The schedule's name.")]
Text = Optional[str]  # noqa: UP045 - typer needs Optional

schedule_app = typer.Typer(help="Periodic tasks: schedules every worker's scheduler runs.",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the taskq CLI."""
    app.add_typer(schedule_app, name="schedule")


@schedule_app.command("list")
def list_(json_: JsonOpt = False) -> None:
    """Every schedule: how often, its next run, paused or not, its runs and last task."""
    from taskq import schedule_ops
    from taskq.term import render, tables

    found = schedule_ops.store(runtime(start_broker=False))
    listed = found.all()
    if json_:
        render.print_json([s.to_dict() for s in listed])
    else:
        tables.show(tables.schedules_grid(listed, found.now()), "no schedules")


@schedule_app.command("add")
def add(
    name: NameArg,
    type_: Annotated[Text, typer.Option(
        "--type", "-t", autocompletion=completion.task_types, help="Task type or alias.")
    ] = None,
    priority: Annotated[Text, typer.Option(
        "--priority", "-p", autocompletion=completion.priorities,
        help="The tasks' priority (default: normal).")] = None,
    param: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--param", help="key=value (value parsed as JSON when it parses); repeatable.")] = None,
    params: Annotated[Text, typer.Option("--params", help="Parameters as a JSON object.")
                      ] = None,
    cron: Annotated[Text, typer.Option(
        "--cron", help="A 5-field cron expression, e.g. '*/5 * * * *'.")] = None,
    timezone: Annotated[Text, typer.Option(
        "--timezone", help="The cron expression's time zone (IANA name; default UTC).")
    ] = None,
    interval: Annotated[Text, typer.Option(
        "--interval", help="Seconds between ticks (1 to 31622400), instead of --cron.")
    ] = None,
    catch_up: Annotated[Text, typer.Option(
        "--catch-up", help="A tick missed while no scheduler ran: skip (default) or once.")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Add a schedule (stored in Redis: every host's workers see it)."""
    from taskq import schedule_ops

    raw = schedule_ops.from_cli(type_, priority, param or [], params, cron, timezone,
                                interval, catch_up)
    stored = schedule_ops.add(runtime(), name, raw)
    _show(stored, json_, "added")


@schedule_app.command("pause")
def pause(name: NameArg, json_: JsonOpt = False) -> None:
    """Pause a schedule: no tick is submitted until it is resumed."""
    from taskq import schedule_ops

    _show(schedule_ops.store(runtime()).pause(name), json_, "paused")


@schedule_app.command("resume")
def resume(name: NameArg, json_: JsonOpt = False) -> None:
    """Resume a schedule from its next tick (with catch_up once: one task for the ticks
    paused over first)."""
    from taskq import schedule_ops

    _show(schedule_ops.store(runtime()).resume(name), json_, "resumed")


@schedule_app.command("remove")
def remove(name: NameArg) -> None:
    """Remove a schedule added at run time (one from the config is removed there)."""
    from taskq import schedule_ops
    from taskq.term import render

    schedule_ops.store(runtime()).remove(name)
    render.console(stderr=True).print(f"removed schedule {name}", markup=False)


@schedule_app.command("run-now")
def run_now(name: NameArg, json_: JsonOpt = False) -> None:
    """Submit the schedule's task now (its ticks go on as before); prints the task id."""
    from taskq import schedule_ops
    from taskq.task import record_json
    from taskq.term import render

    record = schedule_ops.run_now(runtime(), name)
    if json_:
        render.print_json(record_json(record))
    else:
        render.console(stderr=True).print(render.submitted_line(record))
        print(record.id)


def _show(stored: Stored, json_: bool, done: str) -> None:
    from taskq.term import render

    data = stored.to_dict()
    if json_:
        render.print_json(data)
    else:
        render.console(stderr=True).print(
            f"{done} schedule {data['name']}: {data['type']} {stored.schedule.every}, "
            f"next run {data['next_run'] or '-'}", markup=False)
