"""CORS: answers browsers from the configured origins only; none by default."""

from __future__ import annotations

from flask import Flask, Response, request

ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type"
MAX_AGE = "600"


def install(app: Flask, origins: tuple[str, ...]) -> None:
    if not origins:
        return
    allowed = frozenset(origins)

    @app.after_request
    def add_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if not origin or not ("*" in allowed or origin in allowed):
            return response
        response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
        response.vary.add("Origin")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = MAX_AGE
        return response
