"""Output for people (rich tables on stderr/stdout) and for programs (plain JSON on stdout)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from taskq.records import iso_time

if TYPE_CHECKING:
    from rich.console import Console

    from taskq.records import TaskRecord

STATE_STYLES = {"WAITING": "bright_blue", "QUEUED": "cyan", "SCHEDULED": "blue",
                "STARTED": "yellow", "RETRY": "magenta", "SUCCESS": "green", "FAILURE": "red",
                "REVOKED": "dim"}


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    # soft_wrap: a message is one line however narrow the terminal (or pipe) is
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Plain JSON on stdout: no colour, nothing else on the line."""
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def state_text(state: str) -> str:
    return f"[{STATE_STYLES.get(state, 'white')}]{state}[/]"


def record_panel(record: TaskRecord) -> Any:
    """The human view of one task: a two-column table of what is known, values wrapped at
    the terminal's width (a long word folded, nothing cut). Values are Text, not markup: a
    stored "[/]" (in an error message, a result) is shown, never parsed."""
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in _record_rows(record):
        style = STATE_STYLES.get(record.state, "white") if name == "state" else (
            "red" if name == "error" else "")
        table.add_row(name, Text(value, style))
    return table


def record_text(record: TaskRecord) -> str:
    """The same view as plain text for a pipe or file: every value in full, unwrapped; a
    value of several lines (a result, a traceback) indented under its name."""
    rows = _record_rows(record)
    width = max(len(name) for name, _ in rows)
    lines = []
    for name, value in rows:
        first, *rest = value.splitlines() or [""]
        lines.append(f"{name:<{width}}  {first}".rstrip())
        lines += [f"{'':<{width}}  {line}".rstrip() for line in rest]
    return "\n".join(lines) + "\n"


def show_record(record: TaskRecord) -> None:
    """Print one task for a person: the table on a terminal, plain text to a pipe."""
    from rich.console import Console

    out = Console(highlight=False)
    if out.is_terminal:
        out.print(record_panel(record))
    else:
        out.file.write(record_text(record))


def _record_rows(record: TaskRecord) -> list[tuple[str, str]]:
    rows: list[tuple[str, str | None]] = [
        ("id", record.id), ("state", record.state), ("type", record.type),
        ("priority", record.priority), ("queue", record.queue),
        ("attempts", str(record.attempts)), ("submitted", iso_time(record.submitted_at)),
        ("scheduled for", iso_time(record.eta)), ("started", iso_time(record.started_at)),
        ("finished", iso_time(record.finished_at)), ("worker", record.worker),
        ("next attempt", iso_time(record.next_attempt_at)), ("retry of", record.retry_of),
        ("retried as", record.retried_as), ("key", record.key),
        ("after", _after_text(record)),
    ]
    if record.progress and not record.final:
        rows.append(("progress", f"{record.progress['done']}/{record.progress['total']}"))
    if record.state == "SUCCESS":
        rows.append(("result", json.dumps(record.result, indent=2, default=str)))
    if record.error:
        rows.append(("error", f"{record.exc_type}: {record.error}" if record.exc_type
                      else record.error))  # cancel and dependencies name no exception
    if record.traceback and record.state in ("FAILURE", "RETRY"):
        rows.append(("traceback", record.traceback.rstrip()))
    return [(name, value) for name, value in rows if value not in (None, "")]


def _after_text(record: TaskRecord) -> str | None:
    """The tasks a task waits (or waited) for, as `status` shows them."""
    if not record.after:
        return None
    return ", ".join(record.after) + (" (however they end)" if record.after_any else "")


def submitted_line(record: TaskRecord) -> str:
    if record.deduplicated:
        return (f"key {record.key!r} already names task {record.id} ({record.type}, "
                f"{record.priority}): {record.state}; nothing queued")
    when = f" for {iso_time(record.eta)}" if record.eta else ""
    return (f"submitted {record.id} ({record.type}, {record.priority}) to {record.queue}: "
            f"{record.state}{when}")
