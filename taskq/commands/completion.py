"""Shell completion of the values taskq's options take: task types, priorities, recent ids.

Each runs while the shell waits for a Tab, so each reads only what is cheap (the config; the
newest ids in the record index) and offers nothing rather than fail."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from taskq.config import Settings

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

RECENT_IDS = 50  # the newest ids offered for an id argument


def task_types(incomplete: str) -> list[str]:
    """Type names and aliases that begin with what is typed."""
    settings = _settings()
    names = [*settings.task_types, *settings.aliases] if settings else []
    return [name for name in names if name.startswith(incomplete.lower())]


def priorities(incomplete: str) -> list[str]:
    settings = _settings()
    names = settings.priorities if settings else ()
    return [name for name in names if name.startswith(incomplete.lower())]


def recent_ids(incomplete: str) -> list[str]:
    """The newest task ids that begin with what is typed, when the record store is already
    running (completion never starts the embedded broker)."""
    settings = _settings()
    if settings is None:
        return []
    try:
        from taskq.runtime import Runtime

        runtime = Runtime(settings)
        if runtime.embedded is not None and not runtime.embedded.is_running():
            return []
        store = runtime.store
        newest = store.client.zrevrange(store.index_key, 0, RECENT_IDS - 1)
    except Exception:  # noqa: BLE001 - an unreachable store completes nothing
        return []
    found = [i.decode() if isinstance(i, bytes) else str(i) for i in newest]
    return [task_id for task_id in found if task_id.startswith(incomplete.lower())]


def _settings() -> Settings | None:
    """The configuration, or None when it cannot be read (a broken config completes nothing)."""
    try:
        from taskq import config

        return config.load()
    except Exception:  # noqa: BLE001 - completion never fails
        return None
