"""taskq: background work on Celery with typed tasks, strict priorities and records you can trust."""

__version__ = "0.1.0"
