"""The operations routes: list, cancel and retry tasks; queues and workers (issue 4's code)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from taskq.api.context import runtime
from taskq.api.routes import task_json
from taskq.errors import UsageError

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

blueprint = Blueprint("ops", __name__)
MAX_PAGE = 100  # tasks in one page of GET /api/tasks
BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _multi(name: str) -> list[str]:
    """A filter given as ?state=A&state=B or ?state=A,B."""
    return [v.strip() for raw in request.args.getlist(name) for v in raw.split(",") if v.strip()]


def _int(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):  # isdigit() alone takes "²", which int() refuses
        raise UsageError(f"{name}: must be a whole number ≥ 0, got {raw!r}")
    return int(raw)


def _bool(name: str) -> bool:
    raw = request.args.get(name, "false")
    found = BOOLEANS.get(raw.lower())
    if found is None:
        raise UsageError(f"{name}: must be true or false, got {raw!r}")
    return found


@blueprint.get("/api/tasks")
def list_tasks() -> dict[str, Any]:
    """Newest first; offset/limit pages through the first listing.MAX_LIMIT matches."""
    from taskq.store import listing

    rt = runtime()
    limit, offset = _int("limit", 20), _int("offset", 0)
    if not 1 <= limit <= MAX_PAGE:
        raise UsageError(f"limit: must be between 1 and {MAX_PAGE}")
    if offset + limit > listing.MAX_LIMIT:
        raise UsageError(f"offset + limit: at most {listing.MAX_LIMIT}; narrow the filters "
                         "or use since")
    query = listing.build_query(rt.settings, _multi("state"), _multi("type"),
                                _multi("priority"), request.args.get("since"),
                                limit=offset + limit)
    page = listing.list_tasks(rt, query)[offset:]
    more = len(page) == limit and offset + limit < listing.MAX_LIMIT
    return {"tasks": [task_json(r) for r in page], "count": len(page), "offset": offset,
            "limit": limit, "next_offset": offset + limit if more else None}


@blueprint.delete("/api/tasks/<task_id>")
def cancel_task(task_id: str) -> dict[str, Any]:
    from taskq import control

    return task_json(control.cancel(runtime(), task_id, terminate=_bool("terminate")))


@blueprint.post("/api/tasks/<task_id>/retry")
def retry_task(task_id: str) -> tuple[dict[str, Any], int]:
    from taskq import control

    return task_json(control.retry(runtime(), task_id)), 202


@blueprint.get("/api/queues")
def queues() -> dict[str, Any]:
    from taskq.broker import queues as queue_view

    found = queue_view.queues_now(runtime(), _multi("type") or None,
                                  _multi("priority") or None)
    return {"queues": [queue_view.queue_json(q) for q in found]}


@blueprint.get("/api/workers")
def workers() -> dict[str, Any]:
    from taskq.store import workers as workers_view

    found = workers_view.list_workers(runtime())
    return {"workers": [workers_view.worker_json(w) for w in found]}
