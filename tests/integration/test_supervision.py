"""`taskq up` supervises what it starts: a signal stops every process of the stack and leaves
none behind, a worker or broker that dies comes back, `taskq down` stops the whole stack,
and read commands never start the embedded broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest
from stack_processes import keep_profiles, left_running, stack_processes, wait_for

pytestmark = pytest.mark.integration


def start_up(deployment) -> subprocess.Popen[bytes]:
    """`taskq up` in a session of its own, once it says that every worker is ready; what it
    prints goes to <home>/up.console (see `console`)."""
    with (deployment.home / "up.console").open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "taskq", "up"], env=deployment.env,
                              cwd=deployment.home, stderr=out, start_new_session=True)
    try:
        wait_for(lambda: "\nlogs:" in console(deployment) or up.poll() is not None)
        assert up.poll() is None, console(deployment)
    except BaseException:
        stop(up)
        raise
    assert console(deployment).startswith("taskq up: broker"), console(deployment)
    return up


def console(deployment) -> str:
    """What `taskq up` has printed so far."""
    return (deployment.home / "up.console").read_text(errors="replace")


def stop(up: subprocess.Popen[bytes], processes: list[psutil.Process] = ()) -> None:
    """Clean-up for a test that failed half-way: the whole stack, whatever its state, and
    any process of it that `taskq up` left behind."""
    for p in left_running(list(processes)):
        if p.pid != up.pid:
            p.kill()
    if up.poll() is None:
        up.send_signal(signal.SIGQUIT)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_up_stops_its_workers_their_pools_and_the_broker(deployment, sig):
    # Given `taskq up` running two workers (with their pool processes) and the broker
    keep_profiles(deployment, "priority", "data")
    up = start_up(deployment)
    processes = stack_processes(deployment, up.pid)
    try:
        assert len(processes) >= 2 + 3 + 1  # two workers, three pool processes, the broker
        # When the signal is sent to `taskq up` alone (as a service manager or a closed
        # terminal does, not to its workers)
        up.send_signal(sig)
        code = up.wait(60)
        # Then it exits 0 having said so, and no process it ran is left
        assert code == 0
        assert console(deployment).endswith("stopped\n")
        assert left_running(processes) == []
    finally:
        stop(up, processes)


def test_a_worker_that_dies_under_up_is_restarted_and_serves_again(deployment):
    # Given `taskq up` running one worker
    keep_profiles(deployment, "data")
    up = start_up(deployment)
    processes = stack_processes(deployment, up.pid)
    try:
        worker = psutil.Process(up.pid).children()[0]
        # When the worker and its pool are killed
        os.killpg(worker.pid, signal.SIGKILL)
        # Then `taskq up` says so, starts it again and the new worker runs tasks
        wait_for(lambda: "worker data restarted" in console(deployment))
        assert (f"worker data (pid {worker.pid}) exited with code -9; restarting in 1 s"
                in console(deployment))
        done = deployment.cli("submit", "--type", "data", "--param", "data=x", "--wait",
                              "--timeout", "60")
        assert done.returncode == 0, done.stderr
        [new] = psutil.Process(up.pid).children()
        assert new.pid != worker.pid
        processes += [new, *new.children()]
        # And `taskq workers` shows the killed worker gone and its successor online
        wait_for(lambda: {(w["pid"], w["state"]) for w in deployment.cli_json("workers")}
                 == {(worker.pid, "gone"), (new.pid, "online")})
        # And stopping `taskq up` stops the new worker and its pool too
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
        assert left_running(processes) == []
    finally:
        stop(up, processes)


def test_an_embedded_broker_that_dies_under_up_is_restarted_and_tasks_run_again(deployment):
    # Given `taskq up` running one worker on the embedded broker
    keep_profiles(deployment, "data")
    up = start_up(deployment)
    processes = stack_processes(deployment, up.pid)
    try:
        # When the broker is killed
        processes[-1].kill()
        # Then `taskq up` says so and starts it again, and a task submitted now runs
        wait_for(lambda: "embedded broker restarted (restart 1)" in console(deployment))
        assert "embedded broker is not answering: restarting it" in console(deployment)
        done = deployment.cli("submit", "--type", "data", "--param", "data=x", "--wait",
                              "--timeout", "60")
        assert done.returncode == 0, done.stderr + console(deployment)
    finally:
        stop(up, processes)
    # And stopping `taskq up` stops the broker it restarted
    assert not deployment.runtime.embedded.is_running()


def test_down_while_up_runs_stops_the_whole_stack(deployment):
    # Given `taskq up` running in the foreground
    keep_profiles(deployment, "priority", "data")
    up = start_up(deployment)
    processes = stack_processes(deployment, up.pid)
    try:
        # When `taskq down` is run from another terminal
        down = deployment.cli("down", timeout=120)
        # Then it returns once `taskq up` has stopped every worker and the broker
        assert down.returncode == 0, down.stderr
        assert down.stderr == f"stopped taskq up (pid {up.pid}) and every worker it ran\n"
        assert up.wait(5) == 0
        assert left_running(processes) == []
    finally:
        stop(up, processes)


@pytest.mark.parametrize("command", [
    ["status", "0123456789abcdef"], ["list"], ["queues"], ["workers"], ["dlq", "list"],
    ["list", "--json"]], ids=" ".join)
def test_read_commands_do_not_start_the_embedded_broker(deployment, command):
    # Given no embedded broker running
    assert not deployment.runtime.embedded.is_running()
    # When a read command is run
    result = deployment.cli(*command)
    # Then it exits 7 with one line saying that no broker runs, and starts none
    assert result.returncode == 7, result.stderr
    assert result.stdout == ""
    assert result.stderr == (f"error: no embedded broker is running (redis+socket://"
                             f"{deployment.home}/redis.sock), so there are no tasks to read: "
                             "`taskq up` starts it (so does `taskq submit`)\n")
    assert not deployment.runtime.embedded.is_running()


@pytest.mark.parametrize("now", [False, True], ids=["down", "down --now"])
def test_down_lets_the_running_task_finish_unless_told_now(deployment, now):
    # Given `taskq up` with one worker running a task of 2 s of CPU
    keep_profiles(deployment, "priority")
    up = start_up(deployment)
    processes = stack_processes(deployment, up.pid)
    try:
        running = deployment.submit("spin", "high", ms=2000)
        wait_for(lambda: deployment.runtime.store.get(running.id).state == "STARTED")
        # When `taskq down` (or `taskq down --now`) is run
        down = deployment.cli("down", *(["--now"] if now else []), timeout=120)
        assert down.returncode == 0, down.stderr
        assert up.wait(5) == 0
        assert left_running(processes) == []
        # Then a warm stop returned once the task had finished; --now did not wait for it
        deployment.runtime.embedded.ensure_running()  # to read its record
        state = deployment.runtime.store.get(running.id).state
        assert state == ("STARTED" if now else "SUCCESS")
    finally:
        stop(up, processes)


def test_workers_of_a_killed_up_stop_too_and_down_stops_the_broker_left(deployment):
    # Given `taskq up` running two workers with their pools
    keep_profiles(deployment, "priority", "data")
    up = start_up(deployment)
    processes = stack_processes(deployment, up.pid)
    try:
        # When `taskq up` itself is killed, with no chance to stop anything
        up.kill()
        up.wait()
        # Then its workers and their pools stop on their own (none is left an orphan)
        wait_for(lambda: len(left_running(processes)) == 1)
        assert left_running(processes)[0].pid == deployment.runtime.embedded.pid()
        # And `taskq down` stops the broker it left
        down = deployment.cli("down")
        assert down.returncode == 0, down.stderr
        assert "stopped the embedded broker" in down.stderr
        assert left_running(processes) == []
    finally:
        stop(up, processes)
