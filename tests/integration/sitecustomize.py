"""Test-only hook, imported at start-up by every Python process of a test deployment
(tests/integration is on their PYTHONPATH; neither the venv nor its base Python has a
sitecustomize this would shadow). It does nothing unless TASKQ_TEST_STALL_MOVE names a marker
file; with it, the process's mover stalls right after a take, before publishing: it writes
the ids it took to the marker and waits until the process is killed (a worker SIGKILLed while
moving due tasks, tests/integration/test_delayed.py)."""

import os

_MARKER = os.environ.get("TASKQ_TEST_STALL_MOVE")

if _MARKER:
    import threading
    from pathlib import Path

    from taskq.broker import mover

    def _stall(runtime: object, task_ids: list[str]) -> None:
        partial = Path(f"{_MARKER}.partial")
        partial.write_text("\n".join(task_ids))
        partial.rename(_MARKER)  # whole or absent for the test reading it
        threading.Event().wait()  # until SIGKILL

    mover.publish = _stall
