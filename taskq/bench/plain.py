"""The plain Celery app the benchmark compares with: default settings, a no-op and a spin task.

Run as `python -m taskq.bench.plain BROKER BACKEND QUEUE celery-args...` (e.g. `worker -c 2`).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from celery import Celery

from taskq.bench import jobs


def make_app(broker: str, backend: str, queue: str) -> Celery:
    """Celery's defaults, except a queue name of our own so that runs never mix."""
    app = Celery("plain", broker=broker, backend=backend, set_as_current=False)
    app.conf.task_default_queue = queue

    @app.task(name="plain.noop", shared=False)
    def noop() -> None:
        jobs.noop()

    @app.task(name="plain.spin", shared=False)
    def spin(ms: float) -> dict[str, Any]:
        return {"started": jobs.spin(ms), "finished": time.time()}

    return app


def main(argv: list[str]) -> None:
    broker, backend, queue, *rest = argv
    make_app(broker, backend, queue).start(rest)


if __name__ == "__main__":
    main(sys.argv[1:])
