"""`taskq bench`: taskq against a plain Celery app with default settings on the same broker."""
