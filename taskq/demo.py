"""`taskq demo`: the main job end to end on the embedded broker, shown live."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from taskq.errors import TaskqError
from taskq.request import SubmitRequest

if TYPE_CHECKING:
    from collections.abc import Callable

    from taskq.records import TaskRecord
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

DEMO_TIMEOUT = 120.0
SAMPLE_TEXT = "taskq demo file\nthe quick brown fox\njumps over the lazy dog\n" * 200


def requests(rt: Runtime) -> list[SubmitRequest]:
    """One task of every type at every priority, each doing real work."""
    root = rt.settings.files_root
    root.mkdir(parents=True, exist_ok=True)
    (root / "demo.txt").write_text(SAMPLE_TEXT, encoding="utf-8")
    params: dict[str, dict[str, Any]] = {
        "data_processing": {"data": [float(i % 97) for i in range(50_000)],
                            "operation": "stats"},
        "email_sending": {"to": "demo@example.com", "subject": "taskq demo",
                          "body": "Sent by taskq demo."},
        "file_processing": {"filename": "demo.txt", "operation": "gzip"},
    }
    builtin = [t for t in rt.settings.task_types if t in params]
    return [SubmitRequest(type=t, priority=p, params=params[t])
            for p in rt.settings.priorities for t in builtin]


def run(rt: Runtime) -> None:
    from taskq import stack
    from taskq.term import render

    out = render.console(stderr=True)
    started_broker = rt.start_embedded()
    workers = stack.start_workers(rt, list(rt.settings.workers))
    try:
        stack.wait_ready(rt, workers)
        out.print(f"workers ready: {', '.join(w.profile for w in workers)} "
                  f"(logs in {rt.settings.home / 'logs'})")
        ids = _submit_all(rt)
        final = _show_until_final(rt, ids)
    finally:
        stack.stop_workers(workers)
        if started_broker and rt.embedded:
            rt.embedded.stop()
    failed = [r for r in final if r.state != "SUCCESS"]
    out.print(f"demo finished: {len(final) - len(failed)} of {len(final)} tasks succeeded; "
              "workers and broker stopped")
    if failed:
        raise TaskqError(f"{len(failed)} demo task(s) did not succeed, e.g. {failed[0].id}: "
                         f"{failed[0].error}")


def _submit_all(rt: Runtime) -> list[str]:
    from taskq.submit import submit

    return [submit(rt, req).id for req in requests(rt)]


def _show_until_final(rt: Runtime, ids: list[str]) -> list[TaskRecord]:
    from rich.live import Live

    from taskq.term import render

    deadline = time.monotonic() + DEMO_TIMEOUT
    recs = [rt.store.get(i) for i in ids]
    out = render.console()
    if not out.is_terminal:  # piped: no live view, the final table once, ending its line
        recs = _poll_until_final(rt, ids, recs, deadline, lambda _: None)
        out.print(_table(recs))
        return recs
    with Live(_table(recs), console=out, refresh_per_second=8) as live:
        return _poll_until_final(rt, ids, recs, deadline, lambda now: live.update(_table(now)))


def _poll_until_final(rt: Runtime, ids: list[str], recs: list[TaskRecord], deadline: float,
                      show: Callable[[list[TaskRecord]], None]) -> list[TaskRecord]:
    while not all(r.final for r in recs):
        if time.monotonic() > deadline:
            raise TaskqError(f"demo tasks not finished after {DEMO_TIMEOUT:g} s")
        time.sleep(0.1)  # refresh interval of the live view
        recs = [rt.store.get(i) for i in ids]
        show(recs)
    return recs


def _table(recs: list[TaskRecord]) -> Any:
    from rich.table import Table

    from taskq.term import render

    table = Table(title="taskq demo: every type at every priority")
    for name in ("id", "type", "priority", "state", "worker", "result"):
        table.add_column(name)
    for r in recs:
        table.add_row(r.id[:8], r.type, r.priority, render.state_text(r.state),
                      (r.worker or "").split("@")[0], _summary(r))
    return table


def _summary(r: TaskRecord) -> str:
    if r.error:
        return f"[red]{r.error[:60]}[/]"
    if not isinstance(r.result, dict):
        return ""
    keys = ("mean", "delivered", "output", "words", "sha256")
    return ", ".join(f"{k}={str(r.result[k])[:24]}" for k in keys if k in r.result)
