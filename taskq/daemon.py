"""The running `taskq up` of a home, foreground or detached: one at a time (a lock), found by
its pid file, described by its state file, stopped by `taskq down`."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskq import supervisor
from taskq.errors import AlreadyRunning, StartFailed, TaskqError

if TYPE_CHECKING:
    from taskq.runtime import Runtime
    from taskq.supervisor import Supervisor

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

STOP_WAIT = 90.0  # seconds `taskq down` waits: the warm-stop bound (60 s) and some
START_WAIT = 60.0  # seconds `taskq up -d` waits for every worker: their ready bound (30 s) and some
LOG_BYTES = 10 * 1024 * 1024  # the daemon's log is rotated at this size...
LOG_BACKUPS = 5  # ...keeping this many old ones (taskq-up.log.1 to .5)


@dataclass(frozen=True)
class Paths:
    """Where a home keeps its `taskq up`."""

    home: Path

    @property
    def lock(self) -> Path:
        return self.home / "up.lock"

    @property
    def pid(self) -> Path:
        return self.home / "up.pid"

    @property
    def state(self) -> Path:
        return self.home / "up.json"

    @property
    def log(self) -> Path:
        return self.home / "logs" / "taskq-up.log"

    @property
    def stderr(self) -> Path:
        return self.home / "logs" / "taskq-up.stderr"


def running_pid(paths: Paths) -> int | None:
    """The pid of the `taskq up` that holds the home's lock; None when none runs."""
    try:
        fd = os.open(paths.lock, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(paths, wait=1.0)
    finally:
        os.close(fd)  # releases a lock it took
    return None


def _read_pid(paths: Paths, wait: float = 0.0) -> int | None:
    """The pid file's pid, waiting up to `wait` s for a holder that has just taken the lock
    to write it."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return int(paths.pid.read_text(encoding="ascii"))
        except (OSError, ValueError):
            if time.monotonic() >= deadline:
                return None
        time.sleep(0.02)  # polling for the pid file


def supervise(rt: Runtime, mode: str, report: Any) -> int:
    """Run the supervisor as the home's one `taskq up`: the lock held, the pid file and the
    state file written while it runs, removed after. Returns the signal that stopped it."""
    paths = Paths(rt.settings.home)
    try:
        paths.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise rt.unwritable_home(exc, "taskq up's files") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(_read_pid(paths) or 0) from None
        paths.pid.write_text(f"{os.getpid()}\n", encoding="ascii")
        since = datetime.now(UTC).isoformat(timespec="seconds")
        sup = supervisor.Supervisor(rt, report, lambda s: _write_state(paths, s, mode, since))
        try:
            return sup.run()
        finally:
            paths.state.unlink(missing_ok=True)
            paths.pid.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _write_state(paths: Paths, sup: Supervisor, mode: str, since: str) -> None:
    from taskq import stack

    state = {
        "pid": os.getpid(), "mode": mode, "since": since, "ready": sup.ready,
        "broker": stack.broker_name(sup.rt), "broker_restarts": sup.broker_restarts,
        "workers": [{"profile": c.profile, "state": c.state, "restarts": c.restarts,
                     "pid": c.worker.process.pid if c.worker else None,
                     "log": str(paths.home / "logs" / f"{c.profile}.log")}
                    for c in sup.children],
        "log": str(paths.log) if mode == "detached" else None,
    }
    partial = paths.state.with_suffix(".tmp")
    partial.write_text(json.dumps(state), encoding="utf-8")
    partial.replace(paths.state)  # readers never see half a file


def status(home: Path) -> dict[str, Any]:
    """What `taskq up --status` shows: running or not, and the running one's state."""
    paths = Paths(home)
    pid = running_pid(paths)
    if pid is None:
        return {"running": False}
    try:
        state = json.loads(paths.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = {"pid": pid, "ready": False}  # still starting
    return {"running": True, **state}


def stop(home: Path, now: bool = False, wait: float = STOP_WAIT) -> int | None:
    """Stop the home's `taskq up` (warmly; `now`: cold) and wait until it has stopped
    everything it runs; its pid, or None when none runs."""
    paths = Paths(home)
    pid = running_pid(paths)
    if pid is None:
        return None
    try:
        os.kill(pid, supervisor.COLD_SIGNAL if now else signal.SIGTERM)
    except ProcessLookupError:
        pass  # it has just exited: its lock is free or about to be
    deadline = time.monotonic() + wait
    while running_pid(paths) is not None:
        if time.monotonic() > deadline:
            raise TaskqError(f"taskq up (pid {pid}) still running {wait:g} s after it was "
                             "asked to stop; `taskq down --now` stops it at once")
        time.sleep(0.1)  # polling for the supervisor to release its lock
    return pid


def run_foreground(rt: Runtime) -> None:
    """`taskq up`: supervise the stack until a signal; Ctrl-C ends as an interruption (130),
    SIGTERM, SIGHUP and `taskq down` as a requested stop (0)."""
    from taskq.term import render

    out = render.console(stderr=True)
    stopped_by = supervise(rt, "foreground",
                           lambda line: out.print(line, markup=False, highlight=False))
    if stopped_by == signal.SIGINT:
        raise KeyboardInterrupt


def down(rt: Runtime, now: bool = False) -> None:
    """`taskq down`: the running `taskq up` (with every worker and the broker it started),
    then an embedded broker still running."""
    from taskq.term import render

    pid = stop(rt.settings.home, now)
    if pid is not None:
        render.console(stderr=True).print(f"stopped taskq up (pid {pid}) and every worker "
                                          "it ran")
    if pid is None or (rt.embedded is not None and rt.embedded.pid() is not None):
        stop_broker(rt)


def stop_broker(rt: Runtime) -> None:
    """`taskq down`: stop the embedded broker; says so when there is none."""
    from taskq.term import render

    out = render.console(stderr=True)
    if rt.embedded is None:
        out.print("the broker is external (broker_url is set); nothing to stop")
    elif rt.embedded.stop():
        out.print(f"stopped the embedded broker ({rt.embedded.socket_path})")
    else:
        out.print("no embedded broker was running")


def start_detached(rt: Runtime) -> None:
    """`taskq up -d`: run the supervisor as a daemon (a session of its own, its output in
    <home>/logs/taskq-up.log) and return once every worker is ready; if one fails, the
    daemon stops everything and this raises StartFailed with its reason."""
    from taskq.term import render

    out = render.console(stderr=True)
    paths = Paths(rt.settings.home)
    pid = running_pid(paths)
    if pid is not None:
        out.print(f"taskq up is already running (pid {pid}); `taskq up --status` shows it")
        return
    child = _spawn(rt, paths)
    try:
        state = _wait_started(child, paths)
    except KeyboardInterrupt:  # Ctrl-C while it starts: nothing is left running
        child.send_signal(supervisor.COLD_SIGNAL)
        child.wait(STOP_WAIT)
        raise
    workers = ", ".join(f"{w['profile']} (pid {w['pid']})" for w in state["workers"])
    out.print(f"taskq up: running detached (pid {child.pid}): broker {state['broker']}; "
              f"workers {workers}")
    out.print(f"logs: {paths.log} and {paths.home / 'logs'}/<profile>.log; "
              "`taskq up --status` shows it, `taskq down` stops it")


def _spawn(rt: Runtime, paths: Paths) -> subprocess.Popen[bytes]:
    try:
        paths.log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with paths.stderr.open("wb") as err:  # what the daemon says before it can log
            return subprocess.Popen([sys.executable, "-m", "taskq", "up", "--daemon-child"],
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    start_new_session=True)
    except OSError as exc:
        raise rt.unwritable_home(exc, "taskq up's files") from None


def _wait_started(child: subprocess.Popen[bytes], paths: Paths) -> dict[str, Any]:
    deadline = time.monotonic() + START_WAIT
    while True:
        if child.poll() is not None:
            said = paths.stderr.read_text(errors="replace").strip().splitlines()
            reason = (said[-1].strip().removeprefix("error: ") if said
                      else f"exit code {child.returncode}")
            raise StartFailed(f"taskq up -d did not start: {reason}; nothing is left running "
                              f"(see {paths.log})")
        state = status(paths.home)
        if state.get("pid") == child.pid and state.get("ready"):
            return state
        if time.monotonic() > deadline:
            stop(paths.home, now=True)
            raise StartFailed(f"taskq up -d: workers not ready after {START_WAIT:g} s; "
                              f"stopped it (see {paths.log})")
        time.sleep(0.1)  # polling for the daemon's state file


def run_detached(rt: Runtime) -> None:
    """The daemon itself (`taskq up --daemon-child`, started by `taskq up -d`): the same
    supervision as in the foreground, reporting to a size-rotated log."""
    import logging
    from logging.handlers import RotatingFileHandler

    from taskq.logs import MaskingFormatter

    paths = Paths(rt.settings.home)
    handler = RotatingFileHandler(paths.log, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS,
                                  encoding="utf-8")
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(message)s"))
    log = logging.getLogger("taskq.up")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    log.info("taskq up -d starting (pid %d)", os.getpid())
    try:
        supervise(rt, "detached", log.info)
    except TaskqError as exc:
        log.error("%s", exc.message)
        raise
    finally:
        handler.close()


def show_status(home: Path, json_: bool) -> None:
    """`taskq up --status`: whether a `taskq up` runs here, and what it runs."""
    from taskq.term import render

    state = status(home)
    if json_:
        render.print_json(state)
        return
    out = render.console()
    if not state["running"]:
        out.print("taskq up is not running")
        return
    out.print(f"taskq up is running {state.get('mode', '')} (pid {state['pid']}) since "
              f"{state.get('since', '?')}: broker {state.get('broker', '?')} "
              f"(restarts: {state.get('broker_restarts', 0)})", markup=False)
    for w in state.get("workers", []):
        out.print(f"  worker {w['profile']}: {w['state']} (pid {w['pid']}, restarts "
                  f"{w['restarts']}), log {w['log']}", markup=False)
    if state.get("log"):
        out.print(f"  log: {state['log']}", markup=False)
