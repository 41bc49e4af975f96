"""The worker's start-up imports: made with garbage collection off, then frozen, so that
Celery's collection before each fork of a pool process scans only what was made since."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONFIG = Path(__file__).parents[2] / "config" / "celery.yaml"

# Run in a process of its own: freezing the test runner's objects would outlive the test.
PROBE = """
import gc, sys
from taskq import worker
worker._import_frozen()
import taskq.broker.app
frozen = gc.get_freeze_count()
tracked = any(o is taskq.broker.app.create_app for o in gc.get_objects())
print(gc.isenabled(), frozen > 10_000, tracked)
"""

FAILING = """
import gc
from taskq import worker
worker.START_UP_MODULES = ("taskq.no_such_module",)
try:
    worker._import_frozen()
except ImportError:
    print(gc.isenabled())
"""


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_start_up_modules_are_frozen_and_collection_is_on_again() -> None:
    # When the worker imports its modules; Then collection is back on, and their objects
    # (the app factory among them) are in the permanent generation, outside any collection.
    assert _run(PROBE) == "True True False"


def test_collection_is_on_again_when_an_import_fails() -> None:
    assert _run(FAILING) == "True"


def test_a_worker_starts_without_the_submit_path_s_parameter_checks() -> None:
    # When a worker plans its --type and imports its start-up modules; Then the submit
    # path's modules (parameter checks, the work's helpers) are not among them.
    code = f"""
import sys
from taskq import config, worker
settings = config.load(env={{}}, path=config.Path({str(CONFIG)!r}))
worker.plan(settings, types=[next(iter(settings.task_types))])
worker._import_frozen()
print(sorted(m for m in ("taskq.submit", "taskq.params") if m in sys.modules))
"""
    assert _run(code) == "[]"
