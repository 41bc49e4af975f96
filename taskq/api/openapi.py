"""The sidecar's OpenAPI 3.0 description, as data; task types and priorities from the config."""

from __future__ import annotations

from typing import Any

from taskq import records
from taskq.api.intake import MAX_BATCH
from taskq.api.ops_routes import MAX_PAGE
from taskq.config import Settings
from taskq.request import MAX_DELAY
from taskq.store.dependencies import MAX_AFTER
from taskq.store.dependencies import MAX_ID_LENGTH as MAX_AFTER_ID
from taskq.store.keys import MAX_KEY_LENGTH
from taskq.store.listing import MAX_LIMIT

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

JSON = "application/json"
NULLABLE_STRING = {"type": "string", "nullable": True}
NULLABLE_NUMBER = {"type": "number", "nullable": True}

ERROR = {
    "type": "object", "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "a stable code, e.g. invalid_parameters"},
        "message": {"type": "string"},
        "problems": {"type": "array", "items": {"type": "string"}},
        "fields": {"type": "array", "items": {
            "type": "object", "required": ["path", "message"],
            "properties": {"path": {"type": "string"}, "message": {"type": "string"}}}},
    },
}

TASK = {
    "type": "object",
    "required": ["task_id", "status", "id", "type", "priority", "queue", "state"],
    "properties": {
        "task_id": {"type": "string"}, "id": {"type": "string"},
        "status": {"type": "string", "enum": list(records.STATES)},
        "state": {"type": "string", "enum": list(records.STATES)},
        "type": {"type": "string"}, "priority": {"type": "string"},
        "queue": {"type": "string"}, "params": {"type": "object"},
        "attempts": {"type": "integer", "minimum": 0},
        "result": {"nullable": True, "description": "the work's JSON result, once SUCCESS"},
        "error": NULLABLE_STRING, "exc_type": NULLABLE_STRING,
        "attempt_errors": {"type": "array", "items": {"type": "object"}},
        "progress": {"type": "object", "nullable": True},
        "submitted_at": NULLABLE_STRING, "eta": NULLABLE_STRING, "started_at": NULLABLE_STRING,
        "finished_at": NULLABLE_STRING, "next_attempt_at": NULLABLE_STRING,
        "worker": NULLABLE_STRING, "retry_of": NULLABLE_STRING, "retried_as": NULLABLE_STRING,
        "key": NULLABLE_STRING,
        "after": {"type": "array", "items": {"type": "string"}, "nullable": True,
                  "description": "the ids of the tasks it waits (or waited) for"},
        "after_any": {"type": "boolean", "nullable": True,
                      "description": "true: it runs however those tasks end"},
        "deduplicated": {"type": "boolean", "description": "only on a submit's answer: its "
                         "key named this earlier task, and nothing was queued"},
    },
}

QUEUE = {"type": "object", "required": ["name", "type", "priority", "depth", "consumers"],
         "properties": {"name": {"type": "string"}, "type": {"type": "string"},
                        "priority": {"type": "string"}, "depth": {"type": "integer"},
                        "consumers": {"type": "integer"},
                        "scheduled": {"type": "integer"},
                        "oldest_waiting_at": NULLABLE_STRING,
                        "oldest_waiting_age": NULLABLE_NUMBER,
                        "rate_limited": {"type": "boolean", "nullable": True,
                                         "description": "its type is at its global rate "
                                         "limit now (null: the type has none)"}}}
WORKER = {"type": "object", "required": ["hostname", "profile", "state", "queues"],
          "properties": {"hostname": {"type": "string"}, "host": {"type": "string"},
                         "profile": {"type": "string"}, "pid": {"type": "integer"},
                         "queues": {"type": "array", "items": {"type": "string"}},
                         "concurrency": {"type": "integer"},
                         "state": {"type": "string",
                                   "enum": ["online", "busy", "stalled", "gone",
                                            "stopped"]},
                         "started_at": NULLABLE_STRING, "heartbeat_at": NULLABLE_STRING,
                         "heartbeat_age": NULLABLE_NUMBER, "loop_at": NULLABLE_STRING,
                         "loop_age": NULLABLE_NUMBER, "done": {"type": "integer"},
                         "failed": {"type": "integer"},
                         "current": {"type": "array", "items": {"type": "object"}}}}

CHECK = {"type": "object", "required": ["ok", "url"], "properties": {
    "ok": {"type": "boolean"}, "url": {"type": "string"}, "error": NULLABLE_STRING}}
HEALTH = {"type": "object", "required": ["status", "broker", "backend"], "properties": {
    "status": {"type": "string", "enum": ["ok", "unavailable"]},
    "broker": CHECK, "backend": CHECK}}


def _errors(*statuses: int) -> dict[str, Any]:
    words = {400: "Bad JSON or parameters (each problem with its path)",
             401: "Missing or wrong bearer token (when a token is configured)",
             404: "Unknown task id, schedule or route",
             409: "Not possible in the task's (or schedule's) state",
             413: "Body larger than api.max_body_bytes", 415: "Body is not JSON",
             503: "Broker or result backend unreachable"}
    return {str(s): {"description": words[s], "content": {JSON: {"schema": ERROR}}}
            for s in statuses}


def _ok(status: int, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {str(status): {"description": description, "content": {JSON: {"schema": schema}}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema}}}


def task_body(settings: Settings) -> dict[str, Any]:
    names = sorted(settings.task_types) + sorted(settings.aliases)
    return {"type": "object", "required": ["task_type"], "additionalProperties": False,
            "properties": {
                "task_type": {"type": "string", "enum": names},
                "priority": {"type": "string", "enum": list(settings.priorities)},
                "parameters": {"type": "object", "description": "the type's parameters "
                               "(see the README); checked at submit"},
                "delay": {"type": "number", "minimum": 0, "maximum": MAX_DELAY},
                "key": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH,
                        "description": "idempotency key: a repeat within the type's "
                        "key_window answers with the first task (200) and queues nothing"},
                "after": {"type": "array", "minItems": 1, "maxItems": MAX_AFTER,
                          "items": {"type": "string", "minLength": 1,
                                    "maxLength": MAX_AFTER_ID},
                          "description": "ids (or unique prefixes) of existing tasks: this "
                          "one is WAITING until all have ended SUCCESS, then queued; REVOKED "
                          "(naming the one) if one ends FAILURE or REVOKED. An id no task has "
                          "is a 400. Not with delay"},
                "after_any": {"type": "boolean", "description": "with after: queue it once "
                              "they have ended, however they ended"}}}


def _task_id() -> dict[str, Any]:
    return {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}


def paths(settings: Settings) -> dict[str, Any]:
    body = task_body(settings)
    batch = {"type": "object", "required": ["tasks"], "additionalProperties": False,
             "properties": {"tasks": {"type": "array", "items": body, "minItems": 1,
                                      "maxItems": MAX_BATCH}}}
    batch_reply = {"type": "object", "required": ["count", "tasks"], "properties": {
        "count": {"type": "integer"}, "tasks": {"type": "array", "items": TASK}}}
    submit_errors = _errors(400, 401, 409, 413, 415, 503)
    from taskq.api.schedule_routes import openapi_paths

    return _merged(_ops_paths(settings), openapi_paths(settings, _ok, _errors, _body), {
        "/api/tasks": {"post": {
            "summary": "Submit a task", "operationId": "submitTask", "requestBody": _body(body),
            "responses": {**_ok(202, "Queued (or scheduled)", TASK),
                          **_ok(200, "Its key named an earlier task: that task, nothing "
                                "queued", TASK), **submit_errors}}},
        "/api/tasks/batch": {"post": {
            "summary": "Submit many tasks; all are validated before any is queued",
            "operationId": "submitBatch", "requestBody": _body(batch),
            "responses": {**_ok(202, "All queued", batch_reply), **submit_errors}}},
        "/api/tasks/{task_id}": {"get": {
            "summary": "A task's state, result and error", "operationId": "getTask",
            "parameters": [_task_id()],
            "responses": {**_ok(200, "The task", TASK), **_errors(401, 404, 503)}}},
        "/healthz": {"get": {
            "summary": "Broker and result backend reachable?", "operationId": "health",
            "security": [],
            "responses": {**_ok(200, "Both reachable", HEALTH),
                          **_ok(503, "One is not", HEALTH)}}},
        "/metrics": {"get": {
            "summary": "Prometheus metrics", "operationId": "metrics",
            "responses": {"200": {"description": "Prometheus text format",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}},
                          **_errors(401, 503)}}},
        "/api/openapi.json": {"get": {
            "summary": "This description", "operationId": "openapi",
            "responses": {**_ok(200, "OpenAPI 3.0", {"type": "object"}), **_errors(401)}}},
    })


def _merged(*groups: dict[str, Any]) -> dict[str, Any]:
    """Path items from several groups, methods of one path joined."""
    out: dict[str, Any] = {}
    for group in groups:
        for path, item in group.items():
            out.setdefault(path, {}).update(item)
    return out


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _list_parameters(settings: Settings) -> list[dict[str, Any]]:
    names = sorted(settings.task_types) + sorted(settings.aliases)
    return [
        _query("state", {"type": "string", "enum": list(records.STATES)}, "only this state"),
        _query("type", {"type": "string", "enum": names}, "only this task type"),
        _query("priority", {"type": "string", "enum": list(settings.priorities)},
               "only this priority"),
        _query("since", {"type": "string", "pattern": r"^[0-9]+[smhdw]?$"},
               "submitted within, e.g. 10m"),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "page size"),
        _query("offset", {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT - 1},
               f"skip this many (offset + limit ≤ {MAX_LIMIT})"),
    ]


def _ops_paths(settings: Settings) -> dict[str, Any]:
    page = {"type": "object", "required": ["tasks", "count", "offset", "limit", "next_offset"],
            "properties": {"tasks": {"type": "array", "items": TASK},
                           "count": {"type": "integer"}, "offset": {"type": "integer"},
                           "limit": {"type": "integer"},
                           "next_offset": {"type": "integer", "nullable": True}}}
    terminate = _query("terminate", {"type": "boolean"}, "also stop it if it is running")
    return {
        "/api/tasks": {"get": {
            "summary": "Tasks, newest first, filtered like `taskq list`",
            "operationId": "listTasks", "parameters": _list_parameters(settings),
            "responses": {**_ok(200, "A page of tasks", page), **_errors(400, 401, 503)}}},
        "/api/tasks/{task_id}": {"delete": {
            "summary": "Cancel a waiting (or, with terminate, running) task",
            "operationId": "cancelTask", "parameters": [_task_id(), terminate],
            "responses": {**_ok(200, "Now REVOKED", TASK), **_errors(400, 401, 404, 409, 503)}}},
        "/api/tasks/{task_id}/retry": {"post": {
            "summary": "Submit a failed task again as a new, linked task",
            "operationId": "retryTask", "parameters": [_task_id()],
            "responses": {**_ok(202, "The new task", TASK), **_errors(401, 404, 409, 503)}}},
        "/api/queues": {"get": {
            "summary": "Depth and consumers of every queue", "operationId": "queues",
            "responses": {**_ok(200, "Queues, highest priority first", _listing(
                "queues", QUEUE)), **_errors(400, 401, 503)}}},
        "/api/workers": {"get": {
            "summary": "Workers seen in the last day", "operationId": "workers",
            "responses": {**_ok(200, "Workers", _listing("workers", WORKER)),
                          **_errors(401, 503)}}},
    }


def _listing(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key],
            "properties": {key: {"type": "array", "items": item}}}


def spec(settings: Settings) -> dict[str, Any]:
    """The whole document; with a token configured, every route but /healthz needs it."""
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "taskq", "version": "1",
                 "description": "Submit tasks and read their state; the CLI's twin over HTTP."},
        "paths": paths(settings),
        "components": {"schemas": {"Error": ERROR, "Task": TASK},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
    if settings.api.token:
        document["security"] = [{"bearer": []}]
    return document
