"""The watch view, rendered from a snapshot with rich's recording console: what a person sees."""

from __future__ import annotations

import pytest
from rich.console import Console

from taskq.broker.queues import QueueInfo
from taskq.records import TaskRecord
from taskq.store.flow import FlowFigures
from taskq.store.workers import CurrentTask, WorkerInfo
from taskq.term.watch_view import Screen, Snapshot, render

NOW = 1_700_000_000.0
SECTIONS = ("Queues", "Workers", "Retrying", "Latest tasks")


def _screen(snap: Snapshot, width: int = 160, height: int | None = None, **screen) -> str:
    console = Console(record=True, width=width, height=height or 25, force_terminal=True,
                      color_system="truecolor")
    console.print(render(snap, Screen(width, height, **screen)))
    return console.export_text()


def _busy_deployment() -> Snapshot:
    """Eight workers that stopped half an hour ago, twelve latest tasks, one long error."""
    snap = _snapshot()
    snap.workers += [WorkerInfo(hostname=f"old.{n}@box", host="box", profile="data", pid=n,
                                queues=["tq.data_processing.normal"], concurrency=1,
                                state="stopped", started_at=NOW - 9000, heartbeat_at=NOW - 1800)
                     for n in range(8)]
    snap.latest = [_task(f"{n:04d}aaaa-0000-4000-8000-00000000000{n % 10}", state,
                         worker="email.41@box")
                   for n, state in enumerate(["SUCCESS", "STARTED", "FAILURE", "QUEUED"] * 3)]
    snap.latest[2].exc_type = "PermanentError"
    snap.latest[2].error = "550 mailbox unavailable " * 5
    return snap


def _task(tid: str, state: str, **extra) -> TaskRecord:
    return TaskRecord(id=tid, type="email_sending", priority="high", queue="tq.email.high",
                      state=state, submitted_at=NOW - 5, **extra)


def _snapshot(**extra) -> Snapshot:
    busy = WorkerInfo(hostname="email.41@box", host="box", profile="email", pid=41,
                      queues=["tq.email_sending.high", "tq.email_sending.low"], concurrency=2,
                      state="busy", started_at=NOW - 600, heartbeat_at=NOW - 1, done=12,
                      failed=3, current=[CurrentTask("aaaabbbb-1", "email_sending", NOW - 75)])
    gone = WorkerInfo(hostname="data.7@box", host="box", profile="data", pid=7,
                      queues=["tq.data_processing.normal"], concurrency=1, state="gone",
                      started_at=NOW - 900, heartbeat_at=NOW - 30)
    queues = [QueueInfo("tq.email_sending.high", "email_sending", "high", 4, 1, NOW - 125),
              QueueInfo("tq.data_processing.low", "data_processing", "low", 0, 0),
              QueueInfo("tq.spin.low", "spin", "low", 7, 0, NOW - 3)]
    latest = [_task("11112222-x", "SUCCESS"), _task("33334444-y", "STARTED")]
    retrying = [_task("55556666-z", "RETRY", attempts=2, next_attempt_at=NOW + 12,
                      error="451 try later")]
    values = dict(taken_at=NOW, title="taskq watch · tq · embedded broker", queues=queues,
                  workers=[busy, gone], latest=latest, retrying=retrying,
                  changed=frozenset({"33334444-y"}), dead_letters=3, done_rate=2.5,
                  failed_rate=0.5, updated_at=NOW)
    values.update(extra)
    return Snapshot(**values)  # type: ignore[arg-type]


def test_the_view_shows_queue_depths_by_priority_and_the_oldest_waiting_task():
    screen = _screen(_snapshot())
    assert "waiting: high 4  low 7" in screen
    assert "tq.email_sending.high" in screen and "2m05s" in screen
    # an empty queue no one reads is hidden, and the view says so
    assert "tq.data_processing.low" not in screen
    assert "1 empty, unread queues hidden" in screen


def test_the_view_shows_each_worker_with_its_current_task_and_how_long_it_has_run():
    screen = _screen(_snapshot())
    row = next(line for line in screen.splitlines() if "email.41" in line)
    for seen in ("busy", "email_sending aaaabbbb", "1m15s", "12", "3", "high>low"):
        assert seen in row
    assert "gone" in next(line for line in screen.splitlines() if "data.7" in line)


def test_the_view_shows_rates_retries_with_next_attempt_and_dead_letters():
    screen = _screen(_snapshot())
    assert "done 2.5/s" in screen and "failed 0.5/s" in screen
    assert "dead letters: 3" in screen
    retry_row = next(line for line in screen.splitlines() if "55556666" in line)
    assert "in 12.0s" in retry_row and "451 try later" in retry_row


def test_a_task_whose_state_just_changed_is_drawn_bold():
    console = Console(record=True, width=160, force_terminal=True, color_system="truecolor")
    console.print(render(_snapshot()))
    lines = console.export_text(styles=True).splitlines()
    changed = next(line for line in lines if "33334444" in line)
    unchanged = next(line for line in lines if "11112222" in line)
    assert "\x1b[1m" in changed
    assert "\x1b[1m" not in unchanged


def test_a_broker_outage_is_a_status_line_and_the_last_data_stays_on_screen():
    snap = _snapshot(status="broker unreachable: Timeout reading from socket — retrying; "
                            "showing data from 4.0s ago")
    screen = _screen(snap)
    lines = screen.splitlines()
    assert lines[2].startswith("broker unreachable: Timeout reading from socket")
    assert "email.41" in screen


def test_an_idle_deployment_says_so_instead_of_drawing_empty_tables():
    screen = _screen(Snapshot(taken_at=NOW, title="taskq watch", updated_at=NOW), width=80)
    assert "Queues: all empty" in screen
    assert "Workers: none registered" in screen
    assert "Retrying: none" in screen


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 45), (200, 60)])
def test_every_section_fits_the_screen_with_whole_headers(width, height):
    # Given a deployment with more workers and tasks than a small screen holds
    # When the view is drawn at this size, as the live view draws it
    screen = _screen(_busy_deployment(), width, height, keys="ctrl-c quit")
    lines = screen.splitlines()
    # Then it fills no more than the screen, every section is there, and the footer
    assert len(lines) <= height
    assert all(len(line) <= width for line in lines)
    for title in SECTIONS:
        assert any(line.startswith(title) for line in lines), title
    assert lines[-1] == "ctrl-c quit"
    # And columns are dropped whole rather than squeezed: every header word is complete
    header = next(line for line in lines if line.startswith("id ") and "state" in line)
    assert header.split()[:4] == ["id", "state", "type", "age"]
    assert "…" not in header
    # And the stopped workers are one line, not eight rows
    assert "8 stopped in the last hour" in screen and "old.3" not in screen


def test_at_80x24_each_section_shows_some_rows_and_says_how_many_are_hidden():
    screen = _screen(_busy_deployment(), 80, 24)
    assert "tq.email_sending.high" in screen and "email.41" in screen
    assert "55556666" in screen and "0000aaaa" in screen
    assert "Latest tasks (" in screen and " of 12)" in screen


def test_a_large_screen_shows_every_latest_task_and_the_less_important_columns():
    screen = _screen(_busy_deployment(), 200, 60)
    assert "Latest tasks (" not in screen
    assert "0011aaaa" in screen
    worker_header = next(line for line in screen.splitlines() if line.startswith("worker "))
    assert "heartbeat" in worker_header and "host" in worker_header


def test_stopped_workers_are_shown_one_a_row_when_asked_for():
    screen = _screen(_busy_deployment(), 120, None, all_workers=True)
    assert "old.3" in screen and "stopped in the last" not in screen


def test_before_anything_is_read_the_view_shows_the_outage_and_no_figures():
    # Given a collector whose first read failed
    snap = Snapshot(taken_at=NOW, title="taskq watch", status="broker unreachable: refused")
    # When drawn
    screen = _screen(snap, 80, 24)
    # Then the outage shows, and no zero that was never read
    assert "broker unreachable: refused" in screen
    for figure in ("waiting:", "done", "Queues", "Workers"):
        assert figure not in screen


def test_when_rows_are_few_waiting_queues_and_busy_workers_come_before_idle_ones():
    # Given six queues read by workers but empty and three with tasks waiting, and six idle
    # workers besides a busy one and a gone one
    snap = _busy_deployment()
    snap.queues = [QueueInfo(f"tq.idle{n}.high", f"idle{n}", "high", 0, 1) for n in range(6)]
    snap.queues += [QueueInfo(f"tq.spin{n}.low", f"spin{n}", "low", 7, 0, NOW - 3)
                    for n in range(3)]
    snap.workers = [WorkerInfo(hostname=f"idle.{n}@box", host="box", profile="data", pid=n,
                               queues=["tq.data_processing.normal"], concurrency=1,
                               state="online", started_at=NOW - 60, heartbeat_at=NOW - 1)
                    for n in range(6)] + snap.workers
    # When drawn at 80x24
    screen = _screen(snap, 80, 24)
    # Then the waiting queues, the busy and the gone worker have rows before any idle one
    for shown in ("tq.spin0.low", "tq.spin1.low", "tq.spin2.low", "email.41", "data.7"):
        assert shown in screen
    assert "tq.idle" not in screen and "idle." not in screen
    # And the latest tasks get the rows left
    assert "Latest tasks (4 of 12)" in screen


def test_a_screen_too_short_for_tables_keeps_a_line_for_each_section():
    # When the view is drawn 12 lines high (no room for four tables' titles and headers)
    lines = _screen(_busy_deployment(), 80, 12, keys="ctrl-c quit").splitlines()
    # Then each section is one line saying how many rows it has, and the footer stays
    assert len(lines) <= 12
    assert "Queues: 2 (enlarge the window to see them)" in lines
    assert "Latest tasks: 12 (enlarge the window to see them)" in lines
    assert lines[-1] == "ctrl-c quit"


def _flow_control_in_use() -> Snapshot:
    """The busy deployment, with two tasks WAITING for another among the latest, delayed
    tasks, deduplicated submits and schedules."""
    snap = _busy_deployment()
    first = snap.latest[1].id
    snap.latest[:2] = [_task(f"9999{n}aaa-0000-4000-8000-000000000000", "WAITING",
                             after=[first]) for n in range(2)]
    snap.flow = FlowFigures(waiting=2, delayed=5, deduplicated=17, schedules=3, paused=1,
                            next_tick=NOW + 42)
    return snap


def test_the_view_counts_tasks_waiting_for_others_delayed_tasks_dedups_and_schedules():
    # When a deployment that uses dependencies, delays, keys and schedules is drawn
    screen = _screen(_flow_control_in_use())
    # Then one line counts each of them
    line = next(line for line in screen.splitlines() if line.startswith("WAITING "))
    assert line.split("   ") == ["WAITING 2", "delayed 5", "deduplicated 17",
                                  "schedules 3 (1 paused), next in 42.0s"]


def test_a_waiting_task_is_listed_with_its_state_and_the_task_it_waits_for():
    # When the view is drawn at 80x24
    screen = _screen(_flow_control_in_use(), 80, 24)
    # Then the latest tasks show the WAITING one like any other, with what it waits for
    row = next(line for line in screen.splitlines() if line.startswith("99990aaa"))
    assert "WAITING" in row and "after 0001aaaa" in row


def test_with_flow_control_in_use_every_section_still_fits_80x24():
    # When the view with the flow line is drawn at 80x24, as the live view draws it
    lines = _screen(_flow_control_in_use(), 80, 24, keys="ctrl-c quit").splitlines()
    # Then it fills no more than the screen, the flow line is whole, every section is there
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    assert "schedules 3 (1 paused), next in 42.0s" in lines[2]
    for title in SECTIONS:
        assert any(line.startswith(title) for line in lines), title
    assert lines[-1] == "ctrl-c quit"


def test_a_deployment_without_flow_control_has_no_flow_line():
    screen = _screen(_snapshot())
    assert "WAITING" not in screen and "schedules" not in screen and "delayed" not in screen
