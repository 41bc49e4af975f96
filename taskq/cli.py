"""The taskq command line: thin commands (parse, call, render) behind one error boundary."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from taskq.commands import completion
from taskq.commands.common import IdArg, JsonOpt, runtime
from taskq.errors import BrokerUnavailable, ExitCode, NotQueued, TaskqError, UsageError

if TYPE_CHECKING:
    from taskq.records import TaskRecord
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

# Plain help and usage errors (rich_markup_mode=None): typer's rich help imports rich's
# markdown, traceback and syntax modules, which doubles `taskq --help` (0.29 -> 0.15 s).
app = typer.Typer(
    name="taskq", no_args_is_help=True, add_completion=True, rich_markup_mode=None,
    help="Background work on Celery: typed tasks, strict priorities, retries and status.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Check or show the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

WaitOpt = Annotated[bool, typer.Option("--wait", help="Wait until the task is final.")]
TimeoutOpt = Annotated[Optional[float], typer.Option(  # noqa: UP045 - typer needs Optional
    "--timeout", help="Seconds to wait with --wait (default: no limit).")]

_state = {"traceback": False}


def _show_version(asked: bool) -> None:
    if not asked:
        return
    from importlib.metadata import version

    from taskq import __version__, config
    from taskq.urls import mask_url

    try:
        broker = mask_url(config.load().broker_url) or "embedded"
    except TaskqError:
        broker = "unknown: the configuration is invalid (taskq config check says why)"
    print(f"taskq {__version__} (celery {version('celery')}, kombu {version('kombu')}, "
          f"broker {broker})")
    raise typer.Exit()


@app.callback()
def _options(
    traceback: Annotated[bool, typer.Option(
        "--traceback", envvar="TASKQ_TRACEBACK",
        help="Show the full traceback of an error (for debugging).")] = False,
    _version: Annotated[bool, typer.Option(
        "--version", "-V", callback=_show_version, is_eager=True,
        help="Show the versions of taskq, Celery and kombu and the broker used.")] = False,
) -> None:
    _state["traceback"] = traceback


@app.command()
def submit(
    type_: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--type", "-t", autocompletion=completion.task_types,
        help="Task type or alias: `taskq types` lists each with its parameters.")] = None,
    priority: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--priority", "-p", autocompletion=completion.priorities,
        help="high, normal or low (default: normal).")] = None,
    param: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--param", help="key=value (value parsed as JSON when it parses); repeatable.")] = None,
    params: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--params", help="All parameters as one JSON object.")] = None,
    delay: Annotated[float, typer.Option("--delay", help="Run after this many seconds.")] = 0.0,
    key: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--key", help="Idempotency key: a repeat within the type's key_window (24 h by "
        "default) queues nothing and gives the first task.")] = None,
    after: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--after", help="Wait for these tasks (ids or unique prefixes, comma-separated) to "
        "end SUCCESS before queuing; REVOKED if one does not.")] = None,
    after_any: Annotated[bool, typer.Option(
        "--after-any", help="With --after: queue the task however those end.")] = False,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = None,
    json_: JsonOpt = False,
    from_: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--from", help="Submit every task of a JSON-lines file (- for stdin): one "
        '{"task_type", "priority", "parameters", "delay", "key"} object a line.')] = None,
) -> None:
    """Submit a task (or a file of them with --from); prints its id."""
    from taskq import request
    from taskq import submit as submitting
    from taskq.task import record_json
    from taskq.term import render

    if from_ is not None:
        _refuse_with_from(type_, priority, param, params, delay, wait, key, after, after_any)
        return _submit_from(from_, json_)
    if type_ is None:
        raise UsageError("--type is required (or --from FILE)")
    timeout = request.wait_timeout(timeout)
    rt = runtime()
    record = submitting.submit(rt, request.from_cli(
        type_, priority, param or [], params, delay, key, request.parse_after(after), after_any))
    if wait:
        _finish_wait(rt, record.id, timeout, json_)
    elif json_:
        render.print_json(record_json(record))
    else:
        render.console(stderr=True).print(render.submitted_line(record))
        print(record.id)


def _refuse_with_from(*single_task_options: object) -> None:
    if any(option not in (None, [], 0.0, False) for option in single_task_options):
        raise UsageError("--from takes every task from the file: it cannot be combined with "
                         "--type, --priority, --param, --params, --delay, --key, --after, "
                         "--after-any or --wait")


def _submit_from(source: str, json_: bool) -> None:
    from taskq import bulk
    from taskq.term import progress, render

    rt = runtime()
    numbered = bulk.prepare_all(rt.settings, bulk.read_lines(source))
    try:
        with progress.bar(len(numbered), "submitting") as advance:
            bulk.submit_lines(rt, numbered, advance)
    except NotQueued as exc:  # the lines that were queued are printed all the same
        _print_submitted(bulk.queued_lines(numbered, exc), json_)
        raise
    _print_submitted(numbered, json_)
    repeats = sum(record.deduplicated for _, record in numbered)
    again = f" ({repeats} named by their key an earlier task: not queued again)" if repeats else ""
    render.console(stderr=True).print(f"submitted {len(numbered)} tasks from {source}{again}")


def _print_submitted(numbered: list[tuple[int, TaskRecord]], json_: bool) -> None:
    from taskq import bulk
    from taskq.term import render

    if json_:
        for number, record in numbered:
            render.print_json(bulk.summary_json(number, record))
    else:
        sys.stdout.write("".join(f"{record.id}\n" for _, record in numbered))


@app.command()
def status(task_id: IdArg, wait: WaitOpt = False, timeout: TimeoutOpt = None,
           json_: JsonOpt = False) -> None:
    """Show a task's state, result and error (ID: the whole id or a unique prefix of at least
    6 characters)."""
    from taskq import request
    from taskq.task import record_json
    from taskq.term import render

    timeout = request.wait_timeout(timeout)
    rt = runtime(start_broker=False)
    task_id = rt.task_id(task_id)
    if wait:
        _finish_wait(rt, task_id, timeout, json_)
        return
    record = rt.record(task_id)
    if json_:
        render.print_json(record_json(record))
    else:
        render.show_record(record)


def _finish_wait(rt: Runtime, task_id: str, timeout: float | None, json_: bool) -> None:
    from taskq.errors import TaskFailed
    from taskq.task import record_json
    from taskq.term import render

    record = rt.store.wait(task_id, timeout)
    if json_:
        render.print_json(record_json(record))
    else:
        render.show_record(record)
    if record.state != "SUCCESS":
        raise TaskFailed(record.id, record.state, record.error)


@app.command()
def worker(
    profile: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--profile", help="A worker profile from the config.")] = None,
    queues: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--queues", "-Q", help="Priorities to serve, highest first: e.g. high,normal.")] = None,
    type_: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--type", "-t", help="Task types to serve, comma-separated (aliases allowed).")] = None,
    concurrency: Annotated[Optional[int], typer.Option(  # noqa: UP045
        "--concurrency", "-c", help="Worker processes.")] = None,
    loglevel: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--loglevel", "-l", help="DEBUG, INFO, WARNING or ERROR.")] = None,
    events: Annotated[bool, typer.Option(
        "--events", "-E", help="Send task events from the start (Flower turns them on "
        "anyway; they cost throughput).")] = False,
) -> None:
    """Run a worker in the foreground (Ctrl-C or SIGTERM: finish running tasks, then stop)."""
    from taskq import worker as workers

    rt = runtime()
    chosen = workers.plan(rt.settings, profile, _split(queues), _split(type_), concurrency)
    workers.run(rt, chosen, loglevel.upper() if loglevel else None, events)


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@app.command()
def up(
    detach: Annotated[bool, typer.Option(
        "--detach", "-d", help="Run in the background; return once every worker is ready.")
    ] = False,
    status_: Annotated[bool, typer.Option(
        "--status", help="Show whether taskq up runs, its workers and their restarts.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="With --status: plain JSON.")] = False,
    daemon_child: Annotated[bool, typer.Option("--daemon-child", hidden=True)] = False,
) -> None:
    """Run the local stack, supervised: the embedded broker and one worker per profile
    (in the foreground, or detached with -d)."""
    from taskq import daemon

    if (json_ and not status_) or (status_ and detach):
        raise UsageError("--json goes with --status, and --status not with --detach")
    if status_:
        return daemon.show_status(runtime(start_broker=False).settings.home, json_)
    rt = runtime()
    run = daemon.run_detached if daemon_child else (
        daemon.start_detached if detach else daemon.run_foreground)
    run(rt)


@app.command()
def down(
    now: Annotated[bool, typer.Option(
        "--now", help="Do not let running tasks finish: stop the workers at once.")] = False,
) -> None:
    """Stop `taskq up` (foreground or detached: its workers warmly, then the broker) and an
    embedded broker left running."""
    from taskq import daemon

    daemon.down(runtime(), now)


@app.command()
def demo() -> None:
    """Start broker and workers, submit every type at every priority, show it finish, stop."""
    from taskq import demo as demos

    demos.run(runtime())


@config_app.command("check")
def config_check() -> None:
    """Validate the configuration and import every task type's function; lists every
    problem and exits 3 if there is one."""
    from taskq import config
    from taskq.term import render

    settings = config.load()
    config.check_functions(settings)
    render.console(stderr=True).print(f"configuration OK: {settings.source}")


@config_app.command("show")
def config_show(json_: JsonOpt = False) -> None:
    """Print the effective configuration (passwords masked)."""
    from taskq import config
    from taskq.term import render

    data = config.load().public_dict()
    if json_:
        render.print_json(data)
    else:
        import yaml

        render.console().print(yaml.safe_dump(data, sort_keys=False), markup=False)


@app.command()
def types(json_: JsonOpt = False) -> None:
    """Every task type: its alias, parameters (kind, required, default), retries and limits."""
    from taskq import config
    from taskq.store import rate_limits
    from taskq.term import render, tables, types_view

    settings = config.load()
    usage = None
    if rate_limits.limits_of(settings):  # how each limit is used now: in the records' Redis
        try:
            usage = rate_limits.read_usage(runtime(start_broker=False))
        except BrokerUnavailable as exc:  # the limits still show, without their use
            render.console(stderr=True).print(f"note: rate use unknown: {exc}", markup=False)
    found = types_view.types_json(settings, usage)
    if json_:
        render.print_json(found)
    else:
        render.console().print(tables.types_text(found), markup=False, highlight=False)


def _register_command_groups() -> None:
    # Each group lives in its own module (taskq/commands/<group>.py) and adds its commands.
    from taskq.commands import bench, ops, schedule, serve

    for group in (ops, serve, bench, schedule):
        group.register(app)


_register_command_groups()


def main(argv: list[str] | None = None) -> None:
    """The error boundary: a user's mistake is one line on stderr and a documented exit code."""
    sys.exit(_run(argv))


def _run(argv: list[str] | None) -> int:
    command = typer.main.get_command(app)
    try:
        returned = command.main(args=argv, prog_name="taskq", standalone_mode=False)
    except TaskqError as exc:
        if _state["traceback"]:
            raise
        sys.stderr.write(f"error: {exc.message}\n")
        return int(exc.exit_code)
    except typer.TyperException as exc:  # bad usage: typer prints it with the usage line
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            sys.stderr.write(f"error: {exc.message}\n")
        return int(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        returned = ExitCode.INTERRUPTED
    # Without standalone mode typer returns an Exit's code (Ctrl-C is Exit(130)) instead of
    # raising it; a command itself returns None.
    code = returned if isinstance(returned, int) else ExitCode.OK
    if code == ExitCode.INTERRUPTED:
        sys.stderr.write("interrupted\n")
    return int(code)
