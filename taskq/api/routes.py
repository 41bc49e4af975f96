"""The task routes: submit (one or a batch) and status, answering the seed's clients."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from taskq.api import intake
from taskq.api.context import json_body, runtime
from taskq.bulk import submit_all
from taskq.records import TaskRecord
from taskq.task import record_json

blueprint = Blueprint("tasks", __name__)
HIDDEN = ("traceback",)  # the task's traceback stays with `taskq status`, off the wire


def task_json(record: TaskRecord) -> dict[str, Any]:
    """A record as the API shows it: the CLI's JSON plus the seed's task_id and status."""
    data = {k: v for k, v in record_json(record).items() if k not in HIDDEN}
    return {"task_id": record.id, "status": record.state, **data}


def _reply(records: list[TaskRecord]) -> list[dict[str, Any]]:
    """The reply's tasks, built before any is queued: whatever fails there (a 500) then
    fails while nothing is queued; what is left, serializing it, cannot fail on validated
    parameters (JSON data). Publishing does not change a record."""
    return [task_json(r) for r in records]


@blueprint.post("/api/tasks")
def submit_task() -> tuple[dict[str, Any], int, dict[str, str]]:
    rt = runtime()
    record = intake.one(rt.settings, json_body())
    reply = _reply([record])[0]
    submit_all(rt, [record])  # what submit.submit() does, without preparing the record again
    if record.deduplicated:  # its key named an earlier task: that one is the answer
        return task_json(record), 200, {"Location": f"/api/tasks/{record.id}"}
    if record.after:  # its state may have moved on: queued, or revoked, at once
        reply = task_json(record)
    return reply, 202, {"Location": f"/api/tasks/{record.id}"}


@blueprint.post("/api/tasks/batch")
def submit_batch() -> tuple[dict[str, Any], int]:
    rt = runtime()
    records = intake.batch(rt.settings, json_body())
    tasks = _reply(records)
    submit_all(rt, records)
    tasks = [task_json(r) if r.deduplicated or r.after else shown
             for r, shown in zip(records, tasks, strict=True)]
    return {"count": len(records), "tasks": tasks}, 202


@blueprint.get("/api/tasks/<task_id>")
def task_status(task_id: str) -> dict[str, Any]:
    return task_json(runtime().store.get(task_id))
