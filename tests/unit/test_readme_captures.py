"""The README's captures of `taskq watch --once` at 80x24 and of `taskq list` are what the code
draws for an example deployment. `python tests/unit/test_readme_captures.py` prints them."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from rich.console import Console

from taskq.broker.queues import QueueInfo
from taskq.records import TaskRecord
from taskq.store.workers import CurrentTask, WorkerInfo
from taskq.term import columns, tables
from taskq.term.watch_view import PROMPT_LINES, Screen, Snapshot, render

README = Path(__file__).resolve().parents[2] / "README.md"
NOW = 1_767_225_600.0 + 9 * 3600 + 41 * 60 + 7  # 2026-01-01 09:41:07 UTC
IDS = ["3f9c1e2a-7b4d-4c8e-9a1f-2d3e4f5a6b7c", "a81d4e07-52c9-4f3b-8e6a-1b2c3d4e5f60",
       "5c2b9f14-0e8d-4a7c-b3f2-6e7d8c9b0a1f", "e04a7c33-9d1b-4e6f-a2c8-7f6e5d4c3b2a",
       "9b7e2d58-3c4a-4f1e-8d9c-0a1b2c3d4e5f", "17f3a9c2-6e5d-4b8a-9c7f-3e2d1c0b9a8e",
       "c6d8e1f0-2a3b-4c5d-8e7f-9a0b1c2d3e4f", "42a1b3c5-d7e9-4f0a-b2c4-d6e8f0a1b3c5"]


def _task(n: int, type_: str, priority: str, state: str, age: float, **extra) -> TaskRecord:
    return TaskRecord(id=IDS[n], type=type_, priority=priority, state=state,
                      queue=f"taskq.{type_}.{priority}", submitted_at=NOW - age, **extra)


def _example() -> Snapshot:
    tasks = [
        _task(0, "email_sending", "high", "STARTED", 1.2, attempts=1,
              worker="email.4121@box"),
        _task(1, "data_processing", "normal", "SUCCESS", 2.5, attempts=1,
              worker="data.4133@box"),
        _task(2, "email_sending", "high", "RETRY", 14.0, attempts=2, next_attempt_at=NOW + 6,
              exc_type="TransientError", error="SMTP 451 4.7.1 try again later"),
        _task(3, "file_processing", "low", "FAILURE", 31.0, attempts=1,
              worker="files.4140@box", exc_type="PermanentError",
              error="input file not found: reports/2025-12.csv"),
        _task(4, "data_processing", "normal", "QUEUED", 0.4),
        _task(5, "data_processing", "low", "SCHEDULED", 3.0, eta=NOW + 597),
        _task(6, "email_sending", "normal", "SUCCESS", 44.0, attempts=1,
              worker="email.4121@box"),
        _task(7, "data_processing", "high", "REVOKED", 61.0),
    ]
    workers = [
        _worker("email.4121", "email", ["email_sending"], "busy", done=212, failed=3,
                current=[CurrentTask(IDS[0], "email_sending", NOW - 1.0)]),
        _worker("data.4133", "data", ["data_processing"], "online", done=1840),
        _worker("files.4140", "files", ["file_processing"], "online", done=57, failed=1),
    ] + [_worker(f"data.{3900 + n}", "data", ["data_processing"], "stopped", age=1500)
         for n in range(8)]
    queues = [QueueInfo("taskq.data_processing.high", "data_processing", "high", 0, 1),
              QueueInfo("taskq.email_sending.high", "email_sending", "high", 12, 1, NOW - 8),
              QueueInfo("taskq.data_processing.normal", "data_processing", "normal", 40, 1,
                        NOW - 21, scheduled=250),
              QueueInfo("taskq.spin.normal", "spin", "normal", 0, 0),
              QueueInfo("taskq.file_processing.low", "file_processing", "low", 3, 1,
                        NOW - 95)]
    return Snapshot(taken_at=NOW, title="taskq watch · taskq · embedded broker",
                    queues=queues, workers=workers, latest=tasks,
                    retrying=[t for t in tasks if t.state == "RETRY"], dead_letters=1,
                    done_rate=41.3, failed_rate=0.2, updated_at=NOW)


def _worker(name: str, profile: str, types: list[str], state: str, age: float = 0.8,
            **extra) -> WorkerInfo:
    queues = [f"taskq.{t}.{p}" for t in types for p in ("high", "normal", "low")]
    return WorkerInfo(hostname=f"{name}@box", host="box", profile=profile,
                      pid=int(name.split(".")[1]), queues=queues, concurrency=4, state=state,
                      started_at=NOW - 3600, heartbeat_at=NOW - age, **extra)


def watch_capture() -> str:
    """`taskq watch --once` in an 80x24 terminal (the clock in UTC)."""
    os.environ["TZ"] = "UTC"
    time.tzset()
    console = Console(record=True, width=80, height=24, file=io.StringIO(),
                      force_terminal=True)
    console.print(render(_example(), Screen(80, 24 - PROMPT_LINES)))  # as --once draws it
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def list_capture() -> str:
    """`taskq list | cat`: the tasks as a pipe gets them."""
    return columns.plain(tables.tasks_grid(_example().latest, NOW)).rstrip("\n")


def test_the_readme_shows_what_watch_draws_at_80x24():
    assert f"```text\n{watch_capture()}\n```" in README.read_text()


def test_the_readme_shows_what_list_prints_to_a_pipe():
    assert f"```text\n{list_capture()}\n```" in README.read_text()


if __name__ == "__main__":
    print(watch_capture(), list_capture(), sep="\n\n")
