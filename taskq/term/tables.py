"""The operations views' rows: tasks, queues and workers as grids that fit a terminal or a pipe
(used by the CLI and watch)."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from rich.text import Text

from taskq.term import columns
from taskq.term.columns import Column, Grid
from taskq.term.render import STATE_STYLES

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from taskq.broker.queues import QueueInfo
    from taskq.records import TaskRecord
    from taskq.store.schedules import Stored
    from taskq.store.workers import WorkerInfo

WORKER_STYLES = {"online": "green", "busy": "yellow", "stalled": "bold red", "gone": "bold red",
                 "stopped": "dim"}
SHORT_ID = 8  # characters of an id shown in a table (a pipe gets the whole id)

# Most important first (rank 0 always shown); a narrow terminal drops the highest ranks.
TASK_COLUMNS = [Column("id"), Column("state"), Column("type", 1), Column("age", 2),
                Column("note", 3, flex=True), Column("priority", 4),
                Column("tries", 5, "right"), Column("worker", 6)]
WORKER_COLUMNS = [Column("worker"), Column("state"), Column("current task", 1, flex=True),
                  Column("done", 2, "right"), Column("failed", 2, "right"), Column("queues", 3),
                  Column("heartbeat", 4), Column("profile", 5), Column("conc", 6, "right"),
                  Column("host", 7)]
QUEUE_COLUMNS = [Column("queue"), Column("depth", 0, "right"), Column("scheduled", 1, "right"),
                 Column("oldest waiting", 1), Column("consumers", 2, "right"),
                 Column("priority", 3)]


def ago(seconds: float | None) -> str:
    """A short human duration: 4.2s, 3m05s, 2h10m, 3d4h."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours < 24 else f"{hours // 24}d{hours % 24}h"


def state_cell(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def show(grid: Grid, empty: str, title: str | None = None,
         console: Console | None = None) -> None:
    """Print a grid: on a terminal a table that fits its width; to a pipe or file plain
    aligned text (no title, no colour); no rows: `empty` on stderr."""
    from rich.console import Console

    if not grid.rows:
        sys.stderr.write(f"{empty}\n")
        return
    console = console or Console(highlight=False)
    if console.is_terminal:
        console.print(columns.table(grid, console.width, title))
    else:
        if title:  # for a person, beside the data
            sys.stderr.write(f"{title}\n")
        console.file.write(columns.plain(grid))


def tasks_grid(tasks: list[TaskRecord], now: float | None = None) -> Grid:
    """One row a task; ids shortened to SHORT_ID characters (whole in `full`, for pipes)."""
    now = now or time.time()
    grid = Grid(list(TASK_COLUMNS))
    for task in tasks:
        age = ago(now - task.submitted_at if task.submitted_at else None)
        worker = (task.worker or "").split("@")[0]
        note = _note(task, now)
        grid.add(task.id[:SHORT_ID], state_cell(task.state), task.type, age, Text(note),
                 task.priority, str(task.attempts), worker,  # Text: a stored "[/]" is shown
                 full=[task.id, task.state, task.type, age, _note(task, now, whole=True),
                       task.priority, str(task.attempts), worker])
    return grid


def tasks_table(tasks: list[TaskRecord], now: float | None = None, title: str | None = None,
                width: int = 160) -> Table:
    return columns.table(tasks_grid(tasks, now), width, title)


def _note(task: TaskRecord, now: float, whole: bool = False) -> str:
    parts = []
    if task.state == "RETRY" and task.next_attempt_at:
        parts.append(f"next try in {ago(task.next_attempt_at - now)}")
    if task.state == "SCHEDULED" and task.eta:
        parts.append(f"runs in {ago(task.eta - now)}")
    if task.state == "WAITING" and task.after:
        parts.append("after " + ", ".join(a if whole else a[:SHORT_ID] for a in task.after))
    if task.retry_of:
        parts.append(f"retry of {task.retry_of if whole else task.retry_of[:SHORT_ID]}")
    if task.retried_as:
        parts.append(f"retried as {task.retried_as if whole else task.retried_as[:SHORT_ID]}")
    if task.error and task.state in ("FAILURE", "RETRY"):
        error = f"{task.exc_type or 'error'}: {task.error}"
        parts.append(" ".join(error.split()) if whole else error.splitlines()[0])
    return "; ".join(parts)


def queues_grid(queues: list[QueueInfo], now: float | None = None) -> Grid:
    now = now or time.time()
    grid = Grid(list(QUEUE_COLUMNS))
    for q in queues:
        oldest = ago(now - q.oldest_waiting_at) if q.oldest_waiting_at else "-"
        depth = Text(str(q.depth), style="bold" if q.depth else "dim")
        scheduled = Text(str(q.scheduled), style="" if q.scheduled else "dim")
        grid.add(q.name, depth, scheduled, oldest, str(q.consumers),
                 q.priority + (" (rate-limited)" if q.rate_limited else ""))
    return grid


def queues_table(queues: list[QueueInfo], now: float | None = None, title: str | None = None,
                 width: int = 160) -> Table:
    return columns.table(queues_grid(queues, now), width, title)


def workers_grid(workers: list[WorkerInfo], now: float | None = None) -> Grid:
    now = now or time.time()
    grid = Grid(list(WORKER_COLUMNS))
    for w in workers:
        current = ", ".join(
            f"{t.type} {t.id[:SHORT_ID]} {ago(now - t.started_at if t.started_at else None)}"
            for t in w.current) or "-"
        heartbeat = f"{ago(now - w.heartbeat_at if w.heartbeat_at else None)} ago"
        grid.add(w.hostname.split("@")[0], Text(w.state, style=WORKER_STYLES.get(w.state, "")),
                 current, str(w.done), str(w.failed), queues_summary(w.queues), heartbeat,
                 w.profile, str(w.concurrency), w.host)
    return grid


def workers_table(workers: list[WorkerInfo], now: float | None = None,
                  title: str | None = None, width: int = 160) -> Table:
    return columns.table(workers_grid(workers, now), width, title)


def queues_summary(queues: list[str]) -> str:
    """Queue names <prefix>.<type>.<priority> as "high>normal: data_processing, spin"."""
    pairs = [q.rsplit(".", 2)[-2:] for q in queues]
    priorities = list(dict.fromkeys(p for _, p in pairs))
    types = list(dict.fromkeys(t for t, _ in pairs))
    named = ", ".join(types) if len(types) <= 2 else f"{len(types)} types"
    return f"{'>'.join(priorities)}: {named}"


def _rate_text(rate: dict[str, Any]) -> str:
    """A global rate limit, and how it is used now when known."""
    text = f"rate {rate['limit']} (burst {rate['burst']})"
    if "current_per_second" in rate:
        text += (f", now {rate['current_per_second']:g}/s"
                 + (", limited" if rate["limited"] else "")
                 + f", held back {rate['held_back']}")
    return text


def types_text(types: list[dict[str, Any]]) -> str:
    """`taskq types`: a block a type, its name and policies on one line, then a line a
    parameter (name, required or its default, kind)."""
    blocks = []
    for found in types:
        retry = found["retry"]
        policy = (f"{retry['max_retries']} retries, backoff {retry['backoff']:g} s up to "
                  f"{retry['backoff_max']:g} s" + (", jitter" if retry["jitter"] else ""))
        limits = [f"{label} {found[key]:g} s" for label, key in
                  (("time limit", "time_limit"), ("soft", "soft_time_limit")) if found[key]]
        if found.get("rate"):
            limits.append(_rate_text(found["rate"]))
        alias = f" ({found['alias']})" if found["alias"] else ""
        lines = [f"{found['name']}{alias}: {'; '.join([policy, *limits])}"]
        if found["function"]:
            lines.append(f"  runs {found['function']}")
        width = max((len(p["name"]) for p in found["parameters"]), default=0)
        for param in found["parameters"]:
            default = "required" if param["required"] else (
                "optional" if param["default"] is None else
                f"default {json.dumps(param['default'])}")
            lines.append(f"  {param['name']:<{width}}  {param['kind']}; {default}")
        if not found["parameters"]:
            lines.append("  (no parameters)")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


SCHEDULE_COLUMNS_SPEC = (("name", 0), ("every", 1), ("type", 2), ("next run", 0),
                         ("state", 3), ("runs", 4), ("last task", 5), ("catch up", 6))


def schedules_grid(found: list[Stored], now: float) -> Grid:
    """The schedules as rows: name, when, type, next run (in how long), state, runs."""
    out = Grid([Column(name, rank, "right" if name == "runs" else "left")
                for name, rank in SCHEDULE_COLUMNS_SPEC])
    for s in found:
        left = float(s.next_run) - now
        when = "-" if s.paused else f"in {ago(left)}" if left > 0 else "due"
        out.add(s.schedule.name, s.schedule.every, s.schedule.type, when,
                "paused" if s.paused else "active", str(s.runs), s.last_task or "-",
                s.schedule.catch_up)
    return out
