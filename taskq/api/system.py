"""The service routes: health, Prometheus metrics and the OpenAPI description."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app

from taskq.api import metrics, openapi
from taskq.api.context import runtime
from taskq.broker import health

blueprint = Blueprint("system", __name__)


@blueprint.get("/healthz")
def healthz() -> tuple[dict[str, Any], int]:
    checks = health.check_all(runtime())
    ok = all(c.ok for c in checks)
    body = {"status": "ok" if ok else "unavailable", **{c.name: c.to_dict() for c in checks}}
    return body, 200 if ok else 503


@blueprint.get("/metrics")
def prometheus_metrics() -> Response:
    text = metrics.render(current_app.extensions["taskq_metrics"])
    return Response(text, content_type=metrics.CONTENT_TYPE)


@blueprint.get("/api/openapi.json")
def openapi_spec() -> dict[str, Any]:
    return openapi.spec(runtime().settings)
