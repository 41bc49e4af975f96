"""Rich tables for the operations views: tasks, queues and workers (used by the CLI and watch)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table
from rich.text import Text

from taskq.render import STATE_STYLES

if TYPE_CHECKING:
    from taskq.queues import QueueInfo
    from taskq.records import TaskRecord
    from taskq.workers_view import WorkerInfo

WORKER_STYLES = {"online": "green", "busy": "yellow", "gone": "bold red", "stopped": "dim"}


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


def tasks_table(tasks: list[TaskRecord], now: float | None = None,
                title: str | None = None, short_ids: bool = False) -> Table:
    now = now or time.time()
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("id", no_wrap=True, min_width=8 if short_ids else 36)
    table.add_column("state", no_wrap=True, min_width=9)
    for name in ("type", "priority", "age", "tries"):
        table.add_column(name, no_wrap=True, overflow="ellipsis")
    table.add_column("worker", overflow="fold")
    table.add_column("note", overflow="fold", min_width=12)
    for task in tasks:
        table.add_row(task.id[:8] if short_ids else task.id, state_cell(task.state),
                      Text(task.type), Text(task.priority),
                      ago(now - task.submitted_at if task.submitted_at else None),
                      str(task.attempts), Text((task.worker or "").split("@")[0]),
                      Text(_note(task, now)))  # Text: a stored "[/]" is shown, not parsed
    return table


def _note(task: TaskRecord, now: float) -> str:
    parts = []
    if task.state == "RETRY" and task.next_attempt_at:
        parts.append(f"next try in {ago(task.next_attempt_at - now)}")
    if task.state == "SCHEDULED" and task.eta:
        parts.append(f"runs in {ago(task.eta - now)}")
    if task.retry_of:
        parts.append(f"retry of {task.retry_of[:8]}")
    if task.retried_as:
        parts.append(f"retried as {task.retried_as[:8]}")
    if task.error and task.state in ("FAILURE", "RETRY"):
        parts.append(f"{task.exc_type or 'error'}: {task.error}"[:60])
    return "; ".join(parts)


def queues_table(queues: list[QueueInfo], now: float | None = None,
                 title: str | None = None) -> Table:
    now = now or time.time()
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("queue", "priority", "depth", "oldest waiting", "consumers"):
        table.add_column(name, justify="right" if name in ("depth", "consumers") else "left",
                         no_wrap=name == "queue")
    for q in queues:
        oldest = ago(now - q.oldest_waiting_at) if q.oldest_waiting_at else "-"
        depth = Text(str(q.depth), style="bold" if q.depth else "dim")
        table.add_row(q.name, q.priority, depth, oldest, str(q.consumers))
    return table


def workers_table(workers: list[WorkerInfo], now: float | None = None,
                  title: str | None = None) -> Table:
    now = now or time.time()
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("worker", "host", "profile", "queues", "state", "conc", "current task",
                 "running", "done", "failed", "heartbeat"):
        table.add_column(name, justify="right" if name in ("conc", "done", "failed") else "left")
    for w in workers:
        current = "\n".join(f"{t.type} {t.id[:8]}" for t in w.current) or "-"
        running = "\n".join(ago(now - t.started_at if t.started_at else None)
                            for t in w.current) or "-"
        table.add_row(w.hostname.split("@")[0], w.host, w.profile, queues_summary(w.queues),
                      Text(w.state, style=WORKER_STYLES.get(w.state, "")), str(w.concurrency),
                      current, running, str(w.done), str(w.failed),
                      f"{ago(now - w.heartbeat_at if w.heartbeat_at else None)} ago")
    return table


def queues_summary(queues: list[str]) -> str:
    """Queue names <prefix>.<type>.<priority> as "high>normal: data_processing, spin"."""
    pairs = [q.rsplit(".", 2)[-2:] for q in queues]
    priorities = list(dict.fromkeys(p for _, p in pairs))
    types = list(dict.fromkeys(t for t, _ in pairs))
    named = ", ".join(types) if len(types) <= 2 else f"{len(types)} types"
    return f"{'>'.join(priorities)}: {named}"


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
        if found["rate_limit"]:
            limits.append(f"rate {found['rate_limit']}")
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
