"""`taskq bench`: taskq against its peers (Celery, Dramatiq, Huey) on the same broker, and
taskq as its users run it (`submit --from FILE`, the sidecar's batch route, `submit --wait`)."""
