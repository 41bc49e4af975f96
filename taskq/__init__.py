"""taskq: background work on Celery with typed tasks, strict priorities and honest records.

The Python API: ``from taskq import Client`` (see taskq/client.py). Its names are imported
on first use, so ``import taskq`` (and every CLI command) stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Client", "SubmitRequest", "Task", "__version__"]

TYPE_CHECKING = False  # typing itself (with re) costs more than the rest of `import taskq`
if TYPE_CHECKING:
    from typing import Any

    from taskq.client import Client
    from taskq.request import SubmitRequest
    from taskq.task import Task

_LAZY = {"Client": "taskq.client", "SubmitRequest": "taskq.request", "Task": "taskq.task"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'taskq' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
