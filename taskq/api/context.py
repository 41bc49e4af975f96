"""What a view needs from the app it runs in: the runtime, and the request's JSON body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import current_app, request
from werkzeug.exceptions import UnsupportedMediaType

from taskq.request import parse_json

if TYPE_CHECKING:
    from taskq.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["taskq"]  # type: ignore[no-any-return]


def json_body() -> Any:
    """The body parsed as JSON: 415 unless it is declared JSON, 400 (UsageError) unless it
    parses.

    Reading it enforces MAX_CONTENT_LENGTH (413) even without a Content-Length header.
    """
    if not request.is_json:
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")
    return parse_json(request.get_data(cache=False), "body")
