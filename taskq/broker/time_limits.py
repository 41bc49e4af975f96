"""A task its hard time limit killed ends FAILURE with its true attempt, on every Celery
version taskq supports.

Celery calls the task's on_failure after a hard limit only from 5.7, and then in the worker's
main process, where the task's request (and so its attempt number) is not the killed one's:
the record would stay STARTED on 5.5 and 5.6, and name attempt 1 on 5.7. The message's own
headers know the attempt, so the request records the failure itself first; Celery's later
write, if any, is refused (a final state is never overwritten).
"""

from __future__ import annotations

from celery.exceptions import TimeLimitExceeded
from celery.worker import state
from celery.worker.request import Request

from taskq.broker.tasks import record_failure


class TaskqRequest(Request):  # type: ignore[misc]
    """Celery's request for taskq tasks (TaskqTask.Request)."""

    def on_timeout(self, soft: bool, timeout: float) -> None:
        if not soft and not state.should_terminate:
            attempt = int(self.request_dict.get("retries") or 0) + 1
            record_failure(self.task.store, self.id, attempt, TimeLimitExceeded(timeout), None)
        super().on_timeout(soft, timeout)
