"""The schedule routes (`taskq schedule` over HTTP) and their OpenAPI description."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint

from taskq import schedule_ops
from taskq.api.context import json_body, runtime
from taskq.errors import UsageError

if TYPE_CHECKING:
    from taskq.config import Settings

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

blueprint = Blueprint("schedules", __name__)


@blueprint.get("/api/schedules")
def list_schedules() -> dict[str, Any]:
    return {"schedules": [s.to_dict() for s in schedule_ops.store(runtime()).all()]}


@blueprint.post("/api/schedules")
def add_schedule() -> tuple[dict[str, Any], int, dict[str, str]]:
    body = json_body()
    if not isinstance(body, dict):
        raise UsageError("body: must be a JSON object with a name and the schedule's keys")
    body = dict(body)
    name = body.pop("name", None)
    stored = schedule_ops.add(runtime(), name, body)
    return stored.to_dict(), 201, {"Location": f"/api/schedules/{stored.schedule.name}"}


@blueprint.get("/api/schedules/<name>")
def get_schedule(name: str) -> dict[str, Any]:
    return schedule_ops.store(runtime()).get(name).to_dict()


@blueprint.delete("/api/schedules/<name>")
def remove_schedule(name: str) -> dict[str, Any]:
    schedule_ops.store(runtime()).remove(name)
    return {"removed": name}


@blueprint.post("/api/schedules/<name>/pause")
def pause_schedule(name: str) -> dict[str, Any]:
    return schedule_ops.store(runtime()).pause(name).to_dict()


@blueprint.post("/api/schedules/<name>/resume")
def resume_schedule(name: str) -> dict[str, Any]:
    return schedule_ops.store(runtime()).resume(name).to_dict()


@blueprint.post("/api/schedules/<name>/run")
def run_schedule(name: str) -> tuple[dict[str, Any], int]:
    from taskq.api.routes import task_json

    return task_json(schedule_ops.run_now(runtime(), name)), 202


NULLABLE_STRING = {"type": "string", "nullable": True}
SCHEDULE = {
    "type": "object",
    "required": ["name", "type", "parameters", "priority", "catch_up", "paused", "source",
                 "runs"],
    "properties": {
        "name": {"type": "string"}, "type": {"type": "string"},
        "parameters": {"type": "object"}, "priority": {"type": "string"},
        "cron": NULLABLE_STRING, "timezone": {"type": "string"},
        "interval": {"type": "number", "nullable": True},
        "catch_up": {"type": "string", "enum": ["skip", "once"]},
        "source": {"type": "string", "enum": ["config", "cli"]},
        "paused": {"type": "boolean"}, "next_run": NULLABLE_STRING,
        "last_run": NULLABLE_STRING, "last_task": NULLABLE_STRING,
        "runs": {"type": "integer", "minimum": 0},
    },
}


def schedule_body(settings: Settings) -> dict[str, Any]:
    from taskq import schedules

    names = sorted(settings.task_types) + sorted(settings.aliases)
    return {"type": "object", "required": ["name", "type"], "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": schedules.NAME.pattern},
                "type": {"type": "string", "enum": names},
                "parameters": {"type": "object"},
                "priority": {"type": "string", "enum": list(settings.priorities)},
                "cron": {"type": "string", "description": "5 fields; or interval"},
                "timezone": {"type": "string", "description": "IANA name, with cron"},
                "interval": {"type": "number", "minimum": schedules.MIN_INTERVAL,
                             "maximum": schedules.MAX_INTERVAL},
                "catch_up": {"type": "string", "enum": list(schedules.CATCH_UP)}}}


def openapi_paths(settings: Settings, ok: Any, errors: Any, body: Any) -> dict[str, Any]:
    """The schedule routes' path items, built with openapi.py's helpers."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    listing = {"type": "object", "required": ["schedules"],
               "properties": {"schedules": {"type": "array", "items": SCHEDULE}}}
    one = {**ok(200, "The schedule", SCHEDULE), **errors(401, 404, 503)}
    return {
        "/api/schedules": {
            "get": {"summary": "Every schedule", "operationId": "listSchedules",
                    "responses": {**ok(200, "Schedules", listing), **errors(401, 503)}},
            "post": {"summary": "Add a schedule", "operationId": "addSchedule",
                     "requestBody": body(schedule_body(settings)),
                     "responses": {**ok(201, "Added", SCHEDULE),
                                   **errors(400, 401, 409, 413, 415, 503)}}},
        "/api/schedules/{name}": {
            "get": {"summary": "One schedule", "operationId": "getSchedule",
                    "parameters": [name], "responses": one},
            "delete": {"summary": "Remove a schedule added at run time",
                       "operationId": "removeSchedule", "parameters": [name],
                       "responses": {**ok(200, "Removed", {
                           "type": "object", "required": ["removed"],
                           "properties": {"removed": {"type": "string"}}}),
                           **errors(401, 404, 409, 503)}}},
        "/api/schedules/{name}/pause": {"post": {
            "summary": "Pause a schedule", "operationId": "pauseSchedule",
            "parameters": [name], "responses": one}},
        "/api/schedules/{name}/resume": {"post": {
            "summary": "Resume a schedule from its next tick", "operationId": "resumeSchedule",
            "parameters": [name], "responses": one}},
        "/api/schedules/{name}/run": {"post": {
            "summary": "Submit the schedule's task now", "operationId": "runSchedule",
            "parameters": [name],
            "responses": {**ok(202, "The task", {"$ref": "#/components/schemas/Task"}),
                          **errors(400, 401, 404, 503)}}},
    }
