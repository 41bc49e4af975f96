"""`taskq watch` against a real deployment: a snapshot, a hung broker, memory, a real terminal."""

from __future__ import annotations

import fcntl
import gc
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import pytest
from relay import Relay
from rich.console import Console

from taskq.broker.queues import QueueInfo
from taskq.records import TaskRecord
from taskq.term import watch

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
    # And what it keeps between frames (the shown states) stays within bounds
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


def test_watch_once_rates_are_the_tasks_finished_in_the_last_ten_seconds(deployment):
    # Given a worker that has just finished two tasks and failed one
    deployment.start_worker("--type", "spin,crash", "--concurrency", "1")
    for task in (deployment.submit("spin", ms=1), deployment.submit("spin", ms=1),
                 deployment.submit("crash")):
        deployment.wait(task.id)
    # When one snapshot is taken (a single read, no earlier frame to compare with)
    result = deployment.cli("watch", "--once")
    # Then its rates count them over the last 10 s
    assert result.returncode == 0, result.stderr
    assert "done 0.2/s  failed 0.1/s" in result.stdout


@pytest.mark.brokers("redis")
@pytest.mark.parametrize("outage", ["down", "hung"])
def test_watch_once_with_the_backend_down_or_hung_exits_7_and_shows_no_figures(deployment,
                                                                               outage):
    # Given a deployment reaching its Redis through a relay that is then cut (down) or
    # black-holed (connections accepted, nothing answered: hung)
    url = urlsplit(deployment.env["TASKQ_RESULT_BACKEND"])
    with Relay((url.hostname or "127.0.0.1", url.port or 6379)) as relay:
        relayed = urlunsplit(url._replace(netloc=f"{url.username or ''}:"
                                                 f"{url.password or ''}@{relay.address}"))
        deployment.env.update(TASKQ_BROKER_URL=relayed, TASKQ_RESULT_BACKEND=relayed)
        relay.cut() if outage == "down" else relay.black_hole()
        # When `taskq watch --once` runs
        started = time.monotonic()
        result = deployment.cli("watch", "--once", timeout=30)
        took = time.monotonic() - started
    # Then it exits 7 within a few call timeouts, with one line on stderr and no figures
    assert result.returncode == 7, (result.stdout, result.stderr)
    assert took < 15
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "unreachable" in result.stderr


def test_watch_interval_is_refused_above_ten_seconds(deployment):
    result = deployment.cli("watch", "--interval", "10.5")
    assert result.returncode == 2
    assert "between 0.05 and 10 seconds" in result.stderr


def test_in_an_80x24_terminal_every_section_shows_and_ctrl_c_ends_a_long_interval(deployment):
    # Given more waiting tasks, in more queues, than 24 lines hold
    for n in range(15):
        deployment.submit("data", ("high", "normal", "low")[n % 3], data=[n])
    # When `taskq watch --interval 10` runs in a real 80x24 pseudo-terminal (no COLUMNS or
    # LINES to go by)
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in deployment.env.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([sys.executable, "-m", "taskq", "watch", "--interval", "10"],
                            stdin=child, stdout=child, stderr=child, env=env,
                            cwd=deployment.home, start_new_session=True)
    os.close(child)
    try:
        output = _read_until(main, b"ctrl-c quit", timeout=20)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            code = proc.wait(10)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            os.close(main)
    # Then every section and the footer are on the screen, and no line is wider than it
    for title in (b"Queues", b"Workers", b"Retrying", b"Latest tasks", b"ctrl-c quit"):
        assert title in output, output[-3000:]
    shown = _visible_lines(output)
    assert shown and max(len(line) for line in shown) <= 80
    # And Ctrl-C ends it at once, in the middle of a 10 s pause
    assert code == 130


def _visible_lines(output: bytes) -> list[str]:
    """The text lines drawn, without escape sequences (a cursor move starts a new line)."""
    import re

    moved = re.sub(rb"\x1b\[[0-9;]*[HfABCDEFG]", b"\n", output)
    text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", moved).decode(errors="replace")
    return [line for line in text.replace("\r", "").split("\n") if line.strip()]


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
