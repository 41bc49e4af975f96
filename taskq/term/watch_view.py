"""What `taskq watch` draws: a pure function of a snapshot and the screen's size that keeps
every section on screen, giving each its share of the rows and the columns that fit."""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.text import Text

from taskq.store.flow import FlowFigures
from taskq.term import columns, tables
from taskq.term.columns import Column, Grid
from taskq.term.render import STATE_STYLES

if TYPE_CHECKING:
    from taskq.broker.queues import QueueInfo
    from taskq.records import TaskRecord
    from taskq.store.workers import WorkerInfo

SNAPSHOT_WIDTH = 160  # columns of a snapshot printed to a file or pipe
PROMPT_LINES = 1  # lines `watch --once` leaves free on a terminal for the shell's prompt
TABLE_LINES = 3  # a section drawn as a table: its title, its header and the rule under it
# kept first when rows are few
WORKER_ORDER = {"busy": 0, "stalled": 1, "gone": 1, "online": 2, "stopped": 3}
RETRY_COLUMNS = [Column("id"), Column("type", 1), Column("attempt", 3, "right"),
                 Column("next attempt"), Column("last error", 2, flex=True)]


@dataclass
class Snapshot:
    """Everything one frame shows; built by watch.Collector, drawn by render()."""

    taken_at: float
    title: str
    queues: list[QueueInfo] = field(default_factory=list)
    workers: list[WorkerInfo] = field(default_factory=list)
    latest: list[TaskRecord] = field(default_factory=list)
    retrying: list[TaskRecord] = field(default_factory=list)
    changed: frozenset[str] = frozenset()
    dead_letters: int = 0
    done_rate: float = 0.0
    failed_rate: float = 0.0
    status: str | None = None  # set while the broker is unreachable
    updated_at: float | None = None  # when the data shown was read; None: nothing read yet
    flow: FlowFigures = field(default_factory=FlowFigures)  # waiting for others, schedules


@dataclass
class Section:
    """One part of the view: a titled grid, or one line when it has no rows."""

    title: str
    grid: Grid
    empty: str
    bold: frozenset[int] = frozenset()  # rows drawn bold
    note: str = ""  # after the title and the count of rows shown, e.g. what is hidden
    first: int | None = None  # rows (at the top) that get room before other sections' rest


@dataclass(frozen=True)
class Screen:
    """Where the view is drawn: its size (height None: as tall as it needs) and what to add."""

    width: int = SNAPSHOT_WIDTH
    height: int | None = None
    all_workers: bool = False  # stopped workers one a row instead of one summary line
    keys: str = ""  # the footer, e.g. "ctrl-c quit"


def render(snap: Snapshot, screen: Screen | None = None) -> RenderableType:
    """The whole view for one snapshot, fitted to `screen`."""
    screen = screen or Screen()
    parts: list[RenderableType] = [_line(_title(snap))]
    if snap.updated_at is not None:
        parts.append(_line(_figures(snap)))
        if snap.flow.any:  # a line only for a deployment that uses flow control
            parts.append(_line(_flow(snap)))
    if snap.status:
        parts.append(Text(snap.status, style="bold white on red"))
    if snap.updated_at is not None:  # nothing read yet: no figures at all, not zeros
        parts += _draw(sections(snap, screen.all_workers), screen, _used(parts, screen))
    if screen.keys:
        parts.append(Text(screen.keys, style="dim", no_wrap=True, overflow="ellipsis"))
    return Group(*parts)


def sections(snap: Snapshot, all_workers: bool = False) -> list[Section]:
    return [_queues(snap), _workers(snap, all_workers), _retrying(snap), _latest(snap)]


def allot(wants: list[int], room: int | None, first: list[int] | None = None) -> list[int]:
    """Rows for each section, one each in turn while `room` lasts, none beyond what it has:
    a row for every section first, then up to `first` rows each, then the rest."""
    if room is None:
        return list(wants)
    got = [0] * len(wants)
    for limits in ([min(1, w) for w in wants], first or wants, wants):
        while room > 0 and any(g < w for g, w in zip(got, limits, strict=True)):
            for i, limit in enumerate(limits):
                if got[i] < limit and room > 0:
                    got[i] += 1
                    room -= 1
    return got


def _used(parts: list[RenderableType], screen: Screen) -> int:
    lines = sum(1 if p.no_wrap else max(1, len(textwrap.wrap(p.plain, screen.width)))
                for p in parts if isinstance(p, Text))  # wrapped at spaces, as rich does
    return lines + (1 if screen.keys else 0)


def _draw(found: list[Section], screen: Screen, used: int) -> list[RenderableType]:
    full = [s for s in found if s.grid.rows]
    room = None if screen.height is None else (
        screen.height - used - TABLE_LINES * len(full) - (len(found) - len(full)))
    if room is not None and room < len(full):  # too short for tables: a title line each
        room = -1
    wants = [len(s.grid.rows) for s in found]
    first = [len(s.grid.rows) if s.first is None else s.first for s in found]
    rows = allot(wants, None if room is None else max(room, 0), first)
    out: list[RenderableType] = []
    for section, count in zip(found, rows, strict=True):
        total = len(section.grid.rows)
        if not total:
            out.append(Text(f"{section.title}: {section.empty}{section.note}", style="dim"))
        elif room == -1:
            out.append(Text(f"{section.title}: {total} (enlarge the window to see them)",
                            style="dim", no_wrap=True, overflow="ellipsis"))
        else:
            shown = f" ({count} of {total})" if count < total else ""
            table = columns.table(section.grid, screen.width,
                                  section.title + shown + section.note, wrap=False, rows=count)
            for index in section.bold:
                if index < count:
                    table.rows[index].style = "bold"
            out.append(table)
    return out


def _line(text: Text) -> Text:
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def _title(snap: Snapshot) -> Text:
    return Text.assemble((snap.title, "bold"), "  ",
                         time.strftime("%H:%M:%S", time.localtime(snap.taken_at)))


def _figures(snap: Snapshot) -> Text:
    by_priority: dict[str, int] = {}
    for q in snap.queues:
        by_priority[q.priority] = by_priority.get(q.priority, 0) + q.depth
    depth = "  ".join(f"{p} {n}" for p, n in by_priority.items()) or "-"
    text = Text(f"waiting: {depth}   ")
    text.append(f"done {snap.done_rate:.1f}/s", style="green")
    text.append("  ")
    text.append(f"failed {snap.failed_rate:.1f}/s", style="red" if snap.failed_rate else "")
    text.append("   dead letters: ")
    text.append(str(snap.dead_letters), style="bold red" if snap.dead_letters else "")
    return text


def _flow(snap: Snapshot) -> Text:
    """Tasks WAITING for others, delayed, deduplicated submits, schedules: the ones in use."""
    flow, parts = snap.flow, []
    if flow.waiting:  # in the colour the task list gives the state
        parts.append(Text(f"WAITING {flow.waiting}", style=STATE_STYLES["WAITING"]))
    if flow.delayed:
        parts.append(Text(f"delayed {flow.delayed}"))
    if flow.deduplicated:
        parts.append(Text(f"deduplicated {flow.deduplicated}"))
    if flow.schedules:
        paused = f" ({flow.paused} paused)" if flow.paused else ""
        due = ("" if flow.next_tick is None
               else f", next in {tables.ago(flow.next_tick - snap.taken_at)}")
        parts.append(Text(f"schedules {flow.schedules}{paused}{due}"))
    return Text("   ").join(parts)


def _queues(snap: Snapshot) -> Section:
    waiting = [q for q in snap.queues if q.depth or q.scheduled]
    read = [q for q in snap.queues if q.consumers and not (q.depth or q.scheduled)]  # if room
    hidden = len(snap.queues) - len(waiting) - len(read)
    note = f" · {hidden} empty, unread queues hidden" if hidden else ""
    return Section("Queues", tables.queues_grid(waiting + read, snap.taken_at), "all empty",
                   note=note, first=len(waiting))


def _workers(snap: Snapshot, all_workers: bool) -> Section:
    stopped = [w for w in snap.workers if w.state == "stopped"]
    shown = snap.workers if all_workers else [w for w in snap.workers if w.state != "stopped"]
    shown = sorted(shown, key=lambda w: (WORKER_ORDER.get(w.state, 9), w.hostname))
    note = ""
    if stopped and not all_workers:
        note = f" · {len(stopped)} stopped in the last {_span(snap, stopped)}"
    return Section("Workers", tables.workers_grid(shown, snap.taken_at),
                   "none running" if stopped else "none registered", note=note,
                   first=sum(w.state in ("busy", "stalled", "gone") for w in shown))


def _span(snap: Snapshot, stopped: list[WorkerInfo]) -> str:
    oldest = min((w.heartbeat_at or 0.0) for w in stopped)
    age = snap.taken_at - oldest
    return "minute" if age <= 60 else "hour" if age <= 3600 else "day"


def _retrying(snap: Snapshot) -> Section:
    grid = Grid(list(RETRY_COLUMNS))
    for t in snap.retrying:
        when = (f"in {tables.ago(t.next_attempt_at - snap.taken_at)}" if t.next_attempt_at
                else "-")
        error = (t.error or "").splitlines()[0] if t.error else ""
        grid.add(t.id[:tables.SHORT_ID], t.type, str(t.attempts), when, Text(error))
    return Section("Retrying", grid, "none")


def _latest(snap: Snapshot) -> Section:
    bold = frozenset(i for i, t in enumerate(snap.latest) if t.id in snap.changed)
    return Section("Latest tasks", tables.tasks_grid(snap.latest, snap.taken_at), "none",
                   bold)
