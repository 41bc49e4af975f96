"""taskq: background work on Celery with typed tasks, strict priorities and honest records."""

__version__ = "0.1.0"
