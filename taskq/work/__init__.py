"""The work itself: plain Python functions, no Celery, each unit-tested directly."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskq.config import SmtpSettings


def _no_progress(done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class WorkContext:
    """What built-in work needs from the deployment: where mail goes, where files live."""

    smtp: SmtpSettings
    outbox: Path
    files_root: Path
    output_dir: str
    progress: Callable[[int, int], None] = field(default=_no_progress)


def load_function(path: str) -> Callable[..., Any]:
    """Import `module:function`; raise ImportError/AttributeError with the path if missing."""
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]


def run(function: str, builtin: bool, params: Mapping[str, Any], ctx: WorkContext) -> Any:
    """Run one task's work: built-in functions get the context, custom ones only parameters."""
    fn = load_function(function)
    return fn(ctx, **params) if builtin else fn(**params)
