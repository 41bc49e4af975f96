"""Every failure as JSON {"error": code, "message": ...}; tracebacks go to the log only."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from taskq.errors import InvalidParameters, TaskqError

log = logging.getLogger("taskq.api")

# werkzeug's HTTP errors under the names clients match on.
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found",
              405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type"}


def install(app: Flask) -> None:
    app.register_error_handler(TaskqError, taskq_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)


def error_body(error: TaskqError) -> dict[str, Any]:
    """The error's own to_dict(), plus each validation problem split into path and message."""
    body = error.to_dict()
    if isinstance(error, InvalidParameters):
        body["fields"] = [_field(problem) for problem in error.problems]
    return body


def _field(problem: str) -> dict[str, str]:
    path, sep, message = problem.partition(": ")
    return {"path": path, "message": message} if sep else {"path": "", "message": problem}


def taskq_error(error: TaskqError) -> tuple[Response, int]:
    status = error.http_status if 400 <= error.http_status < 600 else 500
    if status >= 500:
        log.warning("%s: %s", error.code, error.message)
    return jsonify(error_body(error)), status


def http_error(error: HTTPException) -> BaseResponse:
    status = error.code or 500
    message = error.description or error.name
    if status == 413:
        message = (f"the body is larger than the {current_app.config['MAX_CONTENT_LENGTH']} "
                   "bytes allowed (api.max_body_bytes)")
    response = error.get_response()
    response.data = jsonify({"error": HTTP_CODES.get(status, f"http_{status}"),
                             "message": message}).data
    response.content_type = "application/json"
    return response


def unexpected_error(error: Exception) -> tuple[Response, int]:
    log.exception("unexpected error while serving a request")
    return jsonify({"error": "internal", "message": "internal server error; the server log "
                    "has the details"}), 500
