"""What a view needs from the app it runs in: the runtime, and the request's JSON body."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from flask import current_app, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

if TYPE_CHECKING:
    from taskq.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["taskq"]  # type: ignore[no-any-return]


def json_body() -> Any:
    """The body parsed as JSON: 415 unless it is declared JSON, 400 unless it parses.

    Reading it enforces MAX_CONTENT_LENGTH (413) even without a Content-Length header.
    """
    if not request.is_json:
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")
    raw = request.get_data(cache=False)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}") from None
    except (UnicodeDecodeError, RecursionError):
        raise BadRequest("the body is not valid JSON (not UTF-8, or nested too deeply)") from None
