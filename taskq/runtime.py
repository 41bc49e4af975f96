"""Connects settings to running things: broker URL, record store and Celery app, made lazily."""

from __future__ import annotations

from functools import cached_property, partial
from typing import TYPE_CHECKING

from taskq.config import Settings
from taskq.errors import BrokerNotRunning, ConfigError
from taskq.urls import CONNECT_TIMEOUT, REPLY_TIMEOUT, mask_url, redis_client, redis_client_url

if TYPE_CHECKING:
    import redis
    from celery import Celery

    from taskq.broker.embedded import EmbeddedBroker
    from taskq.records import TaskRecord
    from taskq.store import TaskStore

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).


class Runtime:
    """One deployment as seen by a process; nothing connects until first asked for."""

    def __init__(self, settings: Settings, start_broker: bool = True) -> None:
        """`start_broker=False` (read commands): a stopped embedded broker stays stopped, and
        asking for it raises BrokerNotRunning."""
        self.settings = settings
        self.start_broker = start_broker

    @cached_property
    def embedded(self) -> EmbeddedBroker | None:
        if not self.settings.embedded:
            return None
        from taskq.broker.embedded import EmbeddedBroker

        return EmbeddedBroker(self.settings.home)

    @cached_property
    def broker_url(self) -> str:
        """The broker URL; starts the embedded broker on first use."""
        if self.embedded is not None:
            if not self.start_broker:
                if not self.embedded.is_running():
                    raise BrokerNotRunning(self.embedded.broker_url)
                return self.embedded.broker_url
            self.start_embedded()
            return self.embedded.broker_url
        assert self.settings.broker_url is not None
        return self.settings.broker_url

    def start_embedded(self) -> bool:
        """Start the embedded broker unless it runs (or none is configured); True if this
        call started it. A home it cannot write is a configuration error."""
        if self.embedded is None:
            return False
        try:
            return self.embedded.ensure_running()
        except OSError as exc:  # its socket, data and log live in `home`
            raise self.unwritable_home(exc, "the embedded broker's files") from None

    def unwritable_home(self, exc: OSError, what: str) -> ConfigError:
        """The configuration error for a home where `what` cannot be written."""
        return ConfigError(self.settings.source, [
            f"home: cannot write {what} in {self.settings.home} ({exc.strerror or exc}): "
            "set TASKQ_HOME (or home) to a directory taskq can write"])

    @cached_property
    def backend_url(self) -> str:
        if self.settings.result_backend:
            return self.settings.result_backend
        self.broker_url  # noqa: B018 - starts the embedded broker
        assert self.embedded is not None
        return self.embedded.redis_url

    @cached_property
    def redis(self) -> redis.Redis:
        return redis_client(self.backend_url, health_check_interval=30)

    @cached_property
    def store(self) -> TaskStore:
        from taskq.store import TaskStore

        store = TaskStore(self.redis, self.settings.key_prefix, self.settings.record_ttl,
                          mask_url(self.backend_url) or "")
        store.on_released = partial(_release_quietly, self)
        return store

    def task_id(self, text: str) -> str:
        """The task id a user typed: a whole id, or a unique prefix of at least 6 characters
        (store.resolve_id). A whole id is taken as it is, without touching the store."""
        from taskq import records

        return self.store.resolve_id(text) if records.is_id_prefix(text) else text

    def record(self, task_id: str) -> TaskRecord:
        """One task's record, as `status` reads it: over a bare connection when the backend is
        a Redis URL taskq.store.resp handles and it answers (no redis-py import: half of the
        command's start-up), else through the store (which starts a stopped embedded broker,
        or names the backend that cannot be reached)."""
        from taskq import store

        fields = self._bare_hgetall(store.record_key(self.settings.key_prefix, task_id))
        if fields is None:
            return self.store.get(task_id)
        return store.record_from_fields(task_id, fields)

    def _bare_hgetall(self, key: str) -> dict[bytes, bytes] | None:
        """HGETALL over taskq.store.resp; None when it cannot be done that way (the store then
        names what is wrong). The backend URL without backend_url, which starts a stopped
        embedded broker (and imports redis-py to ping it)."""
        from taskq.store import resp

        url = self.settings.result_backend or (self.embedded.redis_url if self.embedded
                                               else None)
        try:
            conn = resp.connect(redis_client_url(url) or url, CONNECT_TIMEOUT, REPLY_TIMEOUT
                                ) if url else None
            if conn is None:
                return None
            try:
                return conn.hgetall(key)
            finally:
                conn.close()
        except (OSError, ValueError, resp.RespError):
            return None

    @cached_property
    def celery(self) -> Celery:
        from taskq.broker.app import create_app
        from taskq.celery_calls import TaskqCelery

        # Celery's own send_task (apply_async, delay, `celery call`) submits as taskq does.
        return create_app(self.settings, self.broker_url, runtime=self, app_class=TaskqCelery)


def _release_quietly(runtime: Runtime) -> None:
    """Queue (or revoke) the tasks a final write released (taskq/broker/released.py)."""
    from taskq.broker import released  # when a release happens: `status` never loads it

    released.release_quietly(runtime)
