"""Broker plumbing: the Celery app, the worker's fetch, publishing, recovery, and the
libraries' internals they rely on (here and nowhere else)."""
