"""The settings' shape: frozen dataclasses that load() builds (taskq/config/schema.py) and
everything else receives; no I/O, no validation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskq.schedules import Schedule

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

BUILTIN_TYPES = {
    "data_processing": ("data", "taskq.work.data:process"),
    "email_sending": ("email", "taskq.work.email:send"),
    "file_processing": ("file", "taskq.work.files:process"),
}
PARAM_KINDS = ("string", "integer", "number", "boolean", "list", "object")
# Flower's basic auth: user:password, neither part empty nor holding spaces.
BASIC_AUTH = re.compile(r"^[^:\s]+:\S+$")



@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff: float = 1.0
    backoff_max: float = 60.0
    jitter: bool = True


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a custom task type."""

    kind: str
    required: bool = False
    default: Any = None


@dataclass(frozen=True)
class TaskType:
    name: str
    alias: str | None
    function: str
    retry: RetryPolicy
    time_limit: float | None
    soft_time_limit: float | None
    rate_limit: str | None
    parameters: Mapping[str, ParamSpec] | None = None  # None: a built-in schema
    key_window: float = 86400.0  # seconds an idempotency key names its first task
    rate_burst: int = 1  # tasks of a global rate limit that may start at once

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_TYPES


@dataclass(frozen=True)
class WorkerProfile:
    name: str
    types: tuple[str, ...]
    priorities: tuple[str, ...]
    concurrency: int


@dataclass(frozen=True)
class SmtpSettings:
    url: str | None
    sender: str
    timeout: float


@dataclass(frozen=True)
class ApiSettings:
    """The REST sidecar (`taskq api`)."""

    host: str = "127.0.0.1"
    port: int = 5000
    token: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576


@dataclass(frozen=True)
class FlowerSettings:
    """Flower (`taskq flower`); basic_auth is "user:password" or None."""

    port: int = 5555
    basic_auth: str | None = None


@dataclass(frozen=True)
class Settings:
    """The effective configuration; built once by load() and passed to whatever needs it."""

    source: str
    home: Path
    broker_url: str | None
    result_backend: str | None
    key_prefix: str
    record_ttl: int
    priorities: tuple[str, ...]
    default_priority: str
    task_types: Mapping[str, TaskType]
    workers: Mapping[str, WorkerProfile]
    smtp: SmtpSettings
    files_root: Path
    output_dir: str
    log_format: str
    log_level: str
    aliases: Mapping[str, str] = field(default_factory=dict)
    api: ApiSettings = field(default_factory=ApiSettings)
    flower: FlowerSettings = field(default_factory=FlowerSettings)
    schedules: tuple[Schedule, ...] = ()  # declared under `schedules:` (taskq/schedules.py)
    # starvation guard: seconds a task of a priority may wait before it is taken as if it
    # had the next priority up (taskq/broker/starvation.py); a priority not named has none
    max_wait: Mapping[str, float] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return self.broker_url is None

    def resolve_type(self, name: str) -> TaskType:
        """Return the task type called `name` or by its alias, in any case (`EMAIL` is
        `email`); KeyError if there is none."""
        key = name.lower()  # every name is declared in lower case (config_schema)
        return self.task_types[self.aliases.get(key, key)]

    def resolve_priority(self, name: str) -> str:
        """The priority called `name`, in any case; KeyError if there is none."""
        if name.lower() not in self.priorities:
            raise KeyError(name)
        return name.lower()

    def public_dict(self) -> dict[str, Any]:
        """The settings as plain data with every password masked (for `config show`)."""
        from taskq.config.view import settings_to_dict

        return settings_to_dict(self)


def default_home(env: Mapping[str, str]) -> Path:
    state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "taskq"
