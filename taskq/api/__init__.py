"""The REST sidecar: a Flask app factory over the same code the CLI uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).


def create_app(runtime: Runtime) -> Flask:
    """Build the sidecar for `runtime`; does no I/O, so it can be built twice in a test."""
    from flask import Flask

    from taskq.api import auth, cors, errors, metrics, ops_routes, routes, schedule_routes, system

    app = Flask("taskq.api")
    app.config["MAX_CONTENT_LENGTH"] = runtime.settings.api.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["taskq"] = runtime
    app.extensions["taskq_metrics"] = metrics.registry_for(runtime)
    app.register_blueprint(routes.blueprint)
    app.register_blueprint(ops_routes.blueprint)
    app.register_blueprint(schedule_routes.blueprint)
    app.register_blueprint(system.blueprint)
    errors.install(app)
    auth.install(app, runtime.settings.api.token)
    cors.install(app, runtime.settings.api.cors_origins)
    return app
