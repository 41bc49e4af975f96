"""A scheduler process for the tests: `python schedule_stall.py WHERE MARKER`. With WHERE
`claimed` it stops right after claiming its first tick, with `queued` right after queuing
that tick's task (before settling its claim), writing the tick to MARKER and waiting there to
be killed; with `none` it is a plain scheduler, as a worker runs."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

from taskq import config
from taskq.periodic import Scheduler
from taskq.runtime import Runtime


class Stalling(Scheduler):
    def __init__(self, runtime: Runtime, where: str, marker: Path) -> None:
        super().__init__(runtime)
        self.where, self.marker = where, marker

    def fire(self, stored: Any, tick: float) -> int:
        if self.where == "claimed":
            self._stall(tick)
        if self.where == "queued":
            self.store.settle = lambda *_args: self._stall(tick)  # type: ignore[method-assign]
        return super().fire(stored, tick)

    def _stall(self, tick: float) -> None:
        self.marker.write_text(repr(tick))
        threading.Event().wait()  # until SIGKILL


def main() -> None:
    where, marker = sys.argv[1], Path(sys.argv[2])
    scheduler = Stalling(Runtime(config.load()), where, marker)
    if where == "none":
        marker.write_text("ready")
        scheduler.loop(threading.Event())
    while True:
        scheduler.run_once()
        time.sleep(0.2)  # the scheduler's own poll


if __name__ == "__main__":
    main()
