"""Is the deployment reachable? One bounded check each for the broker and the result backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from taskq import errors
from taskq.errors import TaskqError
from taskq.urls import CONNECT_TIMEOUT, REPLY_TIMEOUT, mask_url

if TYPE_CHECKING:
    from taskq.runtime import Runtime


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    url: str
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "url": self.url, "error": self.error}


def check_all(runtime: Runtime) -> list[Check]:
    return [check_broker(runtime), check_backend(runtime)]


def check_broker(runtime: Runtime) -> Check:
    url = mask_url(runtime.settings.broker_url) or "embedded"
    try:
        # A reply timeout too: a Redis broker that accepts connections but never answers
        # would otherwise hold the check (kombu's default is to wait forever).
        # And the connect bound said outright: redis-py would use the reply timeout for both.
        options = {"socket_timeout": REPLY_TIMEOUT, "socket_connect_timeout": CONNECT_TIMEOUT}
        with runtime.celery.connection_for_write(transport_options=options) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                                   timeout=CONNECT_TIMEOUT)
    except TaskqError as exc:  # the embedded broker could not start
        return Check("broker", False, url, exc.message)
    except Exception as exc:  # noqa: BLE001 - any failure to connect means unreachable
        return Check("broker", False, url, errors.reason(exc))
    return Check("broker", True, url)


def check_backend(runtime: Runtime) -> Check:
    url = mask_url(runtime.settings.result_backend) or "embedded"
    try:
        with runtime.store.reachable():
            runtime.redis.ping()
    except TaskqError as exc:
        return Check("backend", False, url, exc.message)
    return Check("backend", True, url)
