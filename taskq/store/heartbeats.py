"""A worker's heartbeat record: how often it beats and how readers judge it. Written by the
worker's heartbeat step (taskq/broker/heartbeat.py), read by store/workers.py; here, apart
from both, so that the writer sets the pace and readers stay light (no Celery)."""

from __future__ import annotations

INTERVAL = 2.0  # seconds between heartbeats
GONE_AFTER = 2 * INTERVAL  # seconds without a heartbeat before an online worker is gone
LOOP_TICK = 1.0  # seconds between the ticks of a worker's main loop that its beats report
# Seconds a worker's main loop may go without a tick before the worker, still beating, is
# stalled: it waits on its broker (unreachable, or reconnecting) and takes no work.
STALLED_AFTER = 3 * INTERVAL
