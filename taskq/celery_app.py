"""The one module-level Celery app, for Celery's own tools: `celery -A taskq.celery_app ...`.

Importing this module loads the configuration and, with the embedded broker, starts it;
taskq's own commands never import it (they build the app with taskq.broker.app.create_app).
"""

from __future__ import annotations

from taskq import config
from taskq.runtime import Runtime

app = Runtime(config.load()).celery
