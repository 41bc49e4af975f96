"""Shell completion of the values taskq's options take: task types, priorities, recent ids.

Each runs while the shell waits for a Tab, so each reads only what is cheap (the config; the
newest ids in the record index) and offers nothing rather than fail."""

from __future__ import annotations

RECENT_IDS = 50  # the newest ids offered for an id argument


def task_types(incomplete: str) -> list[str]:
    """Type names and aliases that begin with what is typed."""
    try:
        from taskq import config

        settings = config.load()
    except Exception:  # noqa: BLE001 - a broken config completes nothing
        return []
    names = [*settings.task_types, *settings.aliases]
    return [name for name in names if name.startswith(incomplete.lower())]


def priorities(incomplete: str) -> list[str]:
    try:
        from taskq import config

        names = config.load().priorities
    except Exception:  # noqa: BLE001
        return []
    return [name for name in names if name.startswith(incomplete.lower())]


def recent_ids(incomplete: str) -> list[str]:
    """The newest task ids that begin with what is typed, when the record store is already
    running (completion never starts the embedded broker)."""
    try:
        from taskq import config
        from taskq.runtime import Runtime

        runtime = Runtime(config.load())
        if runtime.embedded is not None and not runtime.embedded.is_running():
            return []
        store = runtime.store
        newest = store.client.zrevrange(store.index_key, 0, RECENT_IDS - 1)
    except Exception:  # noqa: BLE001 - an unreachable store completes nothing
        return []
    found = [i.decode() if isinstance(i, bytes) else str(i) for i in newest]
    return [task_id for task_id in found if task_id.startswith(incomplete.lower())]
