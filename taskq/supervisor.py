"""Supervision of the local stack (`taskq up`, foreground or detached): the embedded broker
and one worker per profile, each restarted with backoff when it dies, all stopped together
on a signal (warm first, cold after a bound) so that no process is left behind."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from taskq import stack
from taskq.errors import TaskqError

if TYPE_CHECKING:
    from types import FrameType

    from taskq.runtime import Runtime
    from taskq.stack import WorkerProcess

POLL_INTERVAL = 0.2  # seconds between two looks at the workers and the broker
BACKOFF_FIRST = 1.0  # seconds before the first restart of something that died
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # seconds up after which a restart counts as the first again
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
COLD_SIGNAL = signal.SIGQUIT  # stop without waiting for running tasks (`taskq down --now`)


def backoff(failures: int) -> float:
    """Seconds to wait before restarting after `failures` deaths in a row (1, 2, 4 ... 30)."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** min(max(failures - 1, 0), 16))


@dataclass
class Child:
    """One supervised worker: the process running now (if any) and its restart history."""

    profile: str
    worker: WorkerProcess | None = None
    started: float = 0.0
    restarts: int = 0
    failures: int = 0  # deaths in a row, for the backoff
    restart_at: float | None = None  # when a dead worker is started again

    @property
    def state(self) -> str:
        return "restarting" if self.restart_at is not None else "running"


@dataclass
class Supervisor:
    """Starts the stack, keeps it up, and stops all of it. `report` gets one line per event
    (the console in the foreground, the log file when detached); `changed` is called after
    each change of state (the daemon writes its state file there)."""

    rt: Runtime
    report: Callable[[str], None]
    changed: Callable[[Supervisor], None] = lambda _: None
    children: list[Child] = field(default_factory=list)
    stop_signal: int | None = None
    cold: bool = False
    started_broker: bool = False
    ready: bool = False
    broker_restarts: int = 0
    _broker_failures: int = 0
    _broker_retry_at: float = 0.0

    def run(self) -> int:
        """Start, supervise until a stop signal, stop; returns the signal that stopped it."""
        with self.signals():
            try:
                self.start()
                if self.stop_signal is None:
                    self.ready = True
                    for line in self.banner().splitlines():
                        self.report(line)
                    self.changed(self)
                while self.stop_signal is None:
                    self.check()
                    time.sleep(POLL_INTERVAL)  # the supervision loop's pace
            finally:
                self.stop()
                self.report("stopped")
        return self.stop_signal or 0

    def banner(self) -> str:
        """What runs and where its logs are, once every worker is ready."""
        workers = ", ".join(f"{c.profile} (pid {c.worker.process.pid})"
                            for c in self.children if c.worker)
        return (f"taskq up: broker {stack.broker_name(self.rt)}; workers {workers}\n"
                f"logs: {self.rt.settings.home / 'logs'}/<profile>.log; Ctrl-C or "
                "`taskq down` stops everything")

    def start(self) -> None:
        """The broker (if embedded and not running), then every worker, ready."""
        self.started_broker = self.rt.start_embedded()
        self.children = [Child(w.profile, w, time.monotonic()) for w in
                         stack.start_workers(self.rt, list(self.rt.settings.workers))]
        self.changed(self)
        stack.wait_ready(self.rt, self.workers(), stopping=lambda: self.stop_signal is not None)

    def workers(self) -> list[WorkerProcess]:
        return [c.worker for c in self.children if c.worker is not None]

    def check(self) -> None:
        """One round of supervision: restart whatever died, once its backoff has passed."""
        self._check_broker()
        for child in self.children:
            self._check_worker(child)

    def _check_broker(self) -> None:
        embedded = self.rt.embedded
        if embedded is None or time.monotonic() < self._broker_retry_at or embedded.is_running():
            return
        self.report("embedded broker is not answering: restarting it")
        try:
            self.started_broker = self.rt.start_embedded() or self.started_broker
        except TaskqError as exc:
            self._broker_failures += 1
            delay = backoff(self._broker_failures)
            self._broker_retry_at = time.monotonic() + delay
            self.report(f"embedded broker did not start ({exc.message}); next try in {delay:g} s")
            return
        self._broker_failures = 0
        self.broker_restarts += 1
        self.report(f"embedded broker restarted (restart {self.broker_restarts})")
        self.changed(self)

    def _check_worker(self, child: Child) -> None:
        now = time.monotonic()
        w = child.worker
        if w is not None and w.process.poll() is not None:
            stack.kill_group(w)  # its pool processes, if they outlived it
            w.log_file.close()
            child.worker = None
            child.failures = 1 if now - child.started > STABLE_AFTER else child.failures + 1
            delay = backoff(child.failures)
            child.restart_at = now + delay
            self.report(f"worker {child.profile} (pid {w.process.pid}) exited with code "
                        f"{w.process.returncode}; restarting in {delay:g} s; see {w.log_path}")
            self.changed(self)
        elif child.restart_at is not None and now >= child.restart_at:
            child.worker = stack.start_workers(self.rt, [child.profile])[0]
            child.started, child.restart_at = now, None
            child.restarts += 1
            self.report(f"worker {child.profile} restarted (pid {child.worker.process.pid}, "
                        f"restart {child.restarts})")
            self.changed(self)

    def stop(self) -> None:
        """Every worker warmly (cold after the bound, or at once on a second signal), then the
        broker if this supervisor started it."""
        stack.stop_workers(self.workers(), cold=lambda: self.cold)
        for child in self.children:
            child.worker = None
        if self.started_broker and self.rt.embedded:
            self.rt.embedded.stop()

    @contextmanager
    def signals(self) -> Iterator[None]:
        """While supervising, a stop signal asks for a warm stop, a second one (or SIGQUIT)
        for a cold one; the previous handlers come back afterwards."""
        handled = (*STOP_SIGNALS, COLD_SIGNAL)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal is not None or signum == COLD_SIGNAL:
            self.cold = True
        if self.stop_signal is None:
            self.stop_signal = signum
            self.report("stopping: running tasks finish first"
                        + ("" if self.cold else " (a second Ctrl-C or `taskq down --now` "
                           "stops them at once)"))

