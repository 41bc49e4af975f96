"""Bearer-token auth: when a token is configured, every route but /healthz requires it."""

from __future__ import annotations

import hmac

from flask import Flask, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

OPEN_ENDPOINTS = frozenset({"system.healthz"})


def install(app: Flask, token: str | None) -> None:
    if not token:
        return
    expected = f"Bearer {token}".encode()

    @app.before_request
    def require_token() -> None:
        # A CORS preflight carries no credentials by design; it reaches no view either.
        if request.method == "OPTIONS" or request.endpoint in OPEN_ENDPOINTS:
            return
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise Unauthorized("a valid bearer token is required (Authorization: Bearer <token>)",
                               www_authenticate=WWWAuthenticate("bearer", {"realm": "taskq"}))
