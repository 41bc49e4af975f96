"""The watch view, rendered from a snapshot with rich's recording console: what a person sees."""

from __future__ import annotations

from rich.console import Console

from taskq.queues import QueueInfo
from taskq.records import TaskRecord
from taskq.watch import Snapshot, render
from taskq.workers_view import CurrentTask, WorkerInfo

NOW = 1_700_000_000.0


def _screen(snap: Snapshot, width: int = 160) -> str:
    console = Console(record=True, width=width, force_terminal=True, color_system="truecolor")
    console.print(render(snap))
    return console.export_text()


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
    return Snapshot(**values)


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
    screen = _screen(Snapshot(taken_at=NOW, title="taskq watch"), width=80)
    assert "Queues: all empty" in screen
    assert "Workers: none registered" in screen
    assert "Retrying: none" in screen
