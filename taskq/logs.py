"""Worker logging: every line about a task names it; text or JSON; secrets masked."""

from __future__ import annotations

import json
import logging
import sys
import time

from taskq.config import Settings
from taskq.urls import mask_url

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(processName)s %(task_context)s%(name)s: %(message)s"


class TaskContextFilter(logging.Filter):
    """Adds task id, type, priority and attempt to records logged while a task runs."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def filter(self, record: logging.LogRecord) -> bool:
        fields = self.current_task_fields()
        record.task_fields = fields
        record.task_context = "".join(f"{k}={v} " for k, v in fields.items())
        return True

    def current_task_fields(self) -> dict[str, object]:
        from celery import current_task as task  # Celery's public proxy of the running task

        from taskq import topology

        if not task or task.request.id is None:
            return {}
        queue = (task.request.delivery_info or {}).get("routing_key") or ""
        parsed = topology.parse_queue(self.settings, queue)
        return {"task_id": task.request.id, "type": getattr(task, "type_name", task.name),
                "priority": parsed[1] if parsed else "?", "attempt": task.request.retries + 1}


class QuietYields(logging.Filter):
    """Drops Celery's warning and traceback for a task that gave its process to a higher one
    (tasks.Yielded): routine scheduling, not a fault. The task runs later, and is not lost."""

    def filter(self, record: logging.LogRecord) -> bool:
        from taskq.broker.tasks import Yielded

        return not (record.exc_info and isinstance(record.exc_info[1], Yielded))


class MaskingFormatter(logging.Formatter):
    """Text lines with any password in a URL replaced by ***."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_url(super().format(record)) or ""


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "process": record.processName,
            "message": mask_url(record.getMessage()),
            **getattr(record, "task_fields", {}),
        }
        if record.exc_info:
            entry["traceback"] = mask_url(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure(settings: Settings, level: str | None = None) -> None:
    """Send logs to stderr in the configured format (called in the worker's main process)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TaskContextFilter(settings))
    handler.addFilter(QuietYields())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json"
                         else MaskingFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or settings.log_level)
