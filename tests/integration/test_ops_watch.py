"""`taskq watch` against a real deployment: a snapshot, a hung broker, memory, a real terminal."""

from __future__ import annotations

import gc
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from rich.console import Console

from taskq import watch
from taskq.queues import QueueInfo
from taskq.records import TaskRecord

pytestmark = pytest.mark.integration


def test_watch_once_shows_busy_worker_current_task_queue_and_dead_letters(deployment):
    # Given a worker running a long task, a dead letter, and a task waiting
    deployment.start_worker("--type", "spin,crash", "--concurrency", "1")
    assert deployment.wait(deployment.submit("crash").id).state == "FAILURE"
    long = deployment.submit("spin", ms=60000)
    waiting = deployment.submit("spin", "low", ms=1)
    while deployment.runtime.store.get(long.id).state != "STARTED":
        time.sleep(0.02)  # polling for readiness
    # When `taskq watch` runs with stdout not a terminal
    result = deployment.cli("watch", "--type", "spin,crash")
    # Then it prints one snapshot and exits 0
    assert result.returncode == 0, result.stderr
    screen = result.stdout
    assert "dead letters: 1" in screen
    assert "busy" in screen and f"spin {long.id[:8]}" in screen
    assert f"{deployment.runtime.settings.key_prefix}.spin.low" in screen
    assert waiting.id[:8] in screen and "QUEUED" in screen
    deployment.cli("cancel", long.id, "--terminate")


def test_a_hung_broker_shows_as_a_status_line_within_the_timeout_and_the_view_recovers(
        deployment):
    # Given a collector that has drawn a frame
    deployment.submit("data", data=[1])
    collector = watch.Collector(deployment.runtime, watch.Filters())
    assert collector.collect().status is None
    pid = deployment.runtime.embedded.pid()
    os.kill(pid, signal.SIGSTOP)  # the broker accepts nothing and answers nothing
    try:
        # When it collects while the broker hangs
        started = time.monotonic()
        snap = collector.collect()
        took = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    # Then it returns within the call timeout with a status line and the last data
    assert took < 3 * watch.CALL_TIMEOUT
    assert snap.status.startswith("broker unreachable")
    screen = _text(snap)
    assert "broker unreachable" in screen and "data_processing.normal" in screen
    # And once the broker answers again the status line is gone
    assert collector.collect().status is None
    collector.close()


def test_drawing_many_frames_keeps_no_history(deployment):
    # Given a deployment with more tasks than the view shows
    for n in range(20):
        deployment.submit("data", data=[n])
    collector = watch.Collector(deployment.runtime, watch.Filters())
    # When it collects and draws 300 frames (two and a half minutes of a live view)
    for _ in range(300):
        _text(collector.collect())
    gc.collect()
    # Then it holds one frame's data, not 300: its records, queues and snapshots
    alive = Counter(type(o).__name__ for o in gc.get_objects()
                    if type(o) in (TaskRecord, QueueInfo, watch.Snapshot))
    assert alive["Snapshot"] <= 1
    assert alive["TaskRecord"] <= watch.LATEST + watch.RETRYING
    assert alive["QueueInfo"] <= len(deployment.runtime.settings.task_types) * 3
    # And what it keeps between frames (rate samples, shown states) stays within bounds
    assert len(collector._samples) == watch.RATE_WINDOW
    assert len(collector._states) <= watch.LATEST
    collector.close()


def test_in_a_terminal_the_view_redraws_in_place_until_ctrl_c(deployment):
    # Given `taskq watch` running in a pseudo-terminal
    deployment.submit("data", data=[1])
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "taskq", "watch", "--interval", "0.25"],
                            stdin=child, stdout=child, stderr=child, env={
                                **deployment.env, "COLUMNS": "140", "LINES": "50"},
                            cwd=deployment.home, start_new_session=True)
    os.close(child)
    try:
        # When it has drawn for a while
        output = _read_until(main, b"Latest tasks", timeout=20)
        output += _read_for(main, 1.5)
        # Then it uses the alternate screen and keeps redrawing (at least twice a second)
        assert b"\x1b[?1049h" in output
        assert output.count(b"Latest tasks") >= 4
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            code = proc.wait(10)
        finally:
            if proc.poll() is None:  # it ignored Ctrl-C: the test fails, leaving nothing
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            os.close(main)
    # And Ctrl-C ends it with the documented exit code
    assert code == 130


def _text(snap: watch.Snapshot) -> str:
    console = Console(record=True, width=160, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(watch.render(snap))
    console.file.close()
    return console.export_text()


def _read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        data += _read_for(fd, 0.1)
    return data


def _read_for(fd: int, seconds: float) -> bytes:
    data = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                data += os.read(fd, 65536)
            except OSError:
                break
    return data
