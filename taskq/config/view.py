"""Turns Settings into plain data for `taskq config show`, with every secret masked."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from taskq.urls import mask_url

if TYPE_CHECKING:
    from taskq.config import Settings


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    return {
        "source": settings.source,
        "home": str(settings.home),
        "broker_url": mask_url(settings.broker_url) or "embedded",
        "result_backend": mask_url(settings.result_backend) or "embedded",
        "key_prefix": settings.key_prefix,
        "record_ttl": settings.record_ttl,
        "queues": {"priorities": list(settings.priorities),
                   "default_priority": settings.default_priority,
                   "max_wait": dict(settings.max_wait)},
        "task_types": {name: _task_type(t) for name, t in settings.task_types.items()},
        "workers": {name: {"types": list(w.types), "priorities": list(w.priorities),
                           "concurrency": w.concurrency}
                    for name, w in settings.workers.items()},
        "smtp": {"url": mask_url(settings.smtp.url), "sender": settings.smtp.sender,
                 "timeout": settings.smtp.timeout},
        "files": {"root": str(settings.files_root), "output_dir": settings.output_dir},
        "logging": {"format": settings.log_format, "level": settings.log_level},
        "api": {**asdict(settings.api), "token": "***" if settings.api.token else None,
                "cors_origins": list(settings.api.cors_origins)},
        "flower": {"port": settings.flower.port,
                   "basic_auth": _masked_auth(settings.flower.basic_auth)},
        "schedules": {s.name: s.to_dict() for s in settings.schedules},
    }


def _masked_auth(auth: str | None) -> str | None:
    return auth.split(":", 1)[0] + ":***" if auth else None


def _task_type(t: Any) -> dict[str, Any]:
    data = asdict(t)
    data.pop("name")
    if data["parameters"] is None:
        data.pop("parameters")
    return data
