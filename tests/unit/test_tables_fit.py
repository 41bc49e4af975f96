"""`list`, `workers` and `status` as a person reads them at 80 columns and as a pipe gets them."""

from __future__ import annotations

import io

from rich.console import Console

from taskq.records import TaskRecord
from taskq.store.workers import CurrentTask, WorkerInfo
from taskq.term import columns, render, tables

NOW = 1_700_000_000.0
LONG_ERROR = "550 5.1.1 <someone@example.org>: recipient address rejected " * 3


def _tasks() -> list[TaskRecord]:
    failed = TaskRecord(id="6f1c2a9e-3b4d-4e5f-8a7b-0c1d2e3f4a5b", type="email_sending",
                        priority="high", queue="tq.email_sending.high", state="FAILURE",
                        attempts=4, submitted_at=NOW - 90, worker="email.41@box",
                        exc_type="PermanentError", error=LONG_ERROR)
    done = TaskRecord(id="0a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d", type="data_processing",
                      priority="normal", queue="tq.data_processing.normal", state="SUCCESS",
                      attempts=1, submitted_at=NOW - 30, worker="data.7@box")
    return [failed, done]


def _terminal(renderable, width: int) -> list[str]:
    console = Console(record=True, width=width, file=io.StringIO(), force_terminal=True)
    console.print(renderable)
    return console.export_text().splitlines()


def test_list_at_80_columns_keeps_whole_headers_and_drops_the_least_important_columns():
    # When the tasks are drawn for an 80-column terminal
    lines = _terminal(columns.table(tables.tasks_grid(_tasks(), NOW), 80), 80)
    # Then no line is wider than the screen and each header is a whole word
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split() == ["id", "state", "type", "age", "note"]
    # And each row keeps its short id, state and type whole
    row = next(line for line in lines if "FAILURE" in line)
    assert row.split()[:3] == ["6f1c2a9e", "FAILURE", "email_sending"]
    # And the long note wraps inside its column instead of being cut
    assert "recipient address rejected" in " ".join(" ".join(lines[2:]).split())


def test_a_wide_terminal_shows_every_column():
    lines = _terminal(columns.table(tables.tasks_grid(_tasks(), NOW), 250), 250)
    assert lines[0].split() == ["id", "state", "type", "age", "note", "priority", "tries",
                                "worker"]


def test_piped_list_is_plain_aligned_text_with_whole_ids_and_notes():
    # When the tasks are printed for a pipe
    text = columns.plain(tables.tasks_grid(_tasks(), NOW))
    lines = text.splitlines()
    # Then there is no colour and nothing is cut: whole ids, the whole error on one line
    assert "\x1b" not in text and "…" not in text
    assert lines[1].startswith("6f1c2a9e-3b4d-4e5f-8a7b-0c1d2e3f4a5b  FAILURE")
    assert " ".join(LONG_ERROR.split()) in lines[1]
    # And every column starts at the same place on every line (for cut -c), with "-" for
    # an empty cell so awk's fields stay in step
    start = lines[0].index("state")
    assert all(line[start:].split()[0] in ("state", "FAILURE", "SUCCESS") for line in lines)
    assert [line.split()[2] for line in lines] == ["type", "email_sending", "data_processing"]
    assert lines[2].split()[4] == "-"  # the success has no note


def test_workers_at_80_columns_keep_name_state_current_task_and_counters():
    busy = WorkerInfo(hostname="email.41@box-with-a-long-name", host="box-with-a-long-name",
                      profile="email", pid=41, concurrency=2, state="busy",
                      queues=["tq.email_sending.high", "tq.email_sending.low"],
                      started_at=NOW - 600, heartbeat_at=NOW - 1, done=12, failed=3,
                      current=[CurrentTask("aaaabbbb-1", "email_sending", NOW - 75)])
    lines = _terminal(columns.table(tables.workers_grid([busy], NOW), 80), 80)
    assert all(len(line) <= 80 for line in lines) and "…" not in "\n".join(lines)
    assert lines[0].split()[:6] == ["worker", "state", "current", "task", "done", "failed"]
    assert "email_sending aaaabbbb 1m15s" in lines[2]


def test_an_empty_result_says_so_on_stderr_and_prints_nothing_on_stdout(capsys):
    tables.show(tables.tasks_grid([], NOW), "no tasks match")
    out, err = capsys.readouterr()
    assert (out, err) == ("", "no tasks match\n")


def test_status_wraps_a_long_traceback_at_the_terminal_width_and_pipes_it_whole():
    # Given a failed task with a long error and a traceback
    trace = ("Traceback (most recent call last):\n  File \"/srv/app/work/email.py\", line 88,"
             " in send\n    raise PermanentError(reply)\n" + "PermanentError: " + LONG_ERROR)
    record = _tasks()[0]
    record.traceback = trace
    # When shown on a 60-column terminal, Then every line fits and nothing is cut
    lines = _terminal(render.record_panel(record), 60)
    assert all(len(line) <= 60 for line in lines) and "…" not in "\n".join(lines)
    assert any("raise PermanentError(reply)" in line for line in lines)
    # When piped, Then each value is whole on its lines, the traceback indented under its name
    text = render.record_text(record)
    assert f"error      PermanentError: {LONG_ERROR}".rstrip() in text
    assert "traceback  Traceback (most recent call last):\n" in text
    assert "\n               raise PermanentError(reply)\n" in text
    assert all(len(line) <= 80 for line in text.splitlines()[:5])  # short values: no padding
