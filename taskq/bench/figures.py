"""The benchmark's figures, and the arithmetic on them: medians over runs, the best peer of
each figure and taskq's ratio to it. A figure a side cannot measure is None ("n/a")."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Value = float | None
Figures = dict[str, Value]  # figure key -> value, for one side on one broker
OURS = "taskq"


@dataclass(frozen=True)
class Figure:
    key: str
    label: str  # may name a size: {file_lines:,}
    unit: str  # "/s", "s", "ms", "B" or "" (a count)
    higher_is_better: bool


# key, unit ("/s", "s", "ms", "B", or "count"), which way is better, label (may name a size)
TABLE = """
submit_file_per_s               /s    higher `submit --from`, {file_lines:,} tasks, CLI process
submit_big_file_per_s           /s    higher `submit --from`, {big_file_lines:,} tasks, CLI process
submit_http_batch_per_s         /s    higher POST /api/tasks/batch, {http_batch:,} a request
submit_process_s                s     lower  submit one task, CLI process (Celery: `celery call`)
enqueue_single_in_process_per_s /s    higher enqueue one at a time, in-process
enqueue_bulk_in_process_per_s   /s    higher enqueue, bulk path, in-process
drain_per_s                     /s    higher drain, 1 worker x 2 processes, results stored
worker_ready_s                  s     lower  worker start to first result
latency_in_process_p50_ms       ms    lower  submit to result, in-process, p50
latency_in_process_p99_ms       ms    lower  submit to result, in-process, p99
submit_wait_p50_ms              ms    lower  `submit --wait`, CLI process, p50
submit_wait_p99_ms              ms    lower  `submit --wait`, CLI process, p99
priority_overtakes              count lower  low tasks started while a high one waited
stored_bytes                    B     lower  a finished task's record (result)
help_s                          s     lower  --help
status_s                        s     lower  status <id>
"""


def _parse(table: str) -> tuple[Figure, ...]:
    rows = (line.split(maxsplit=3) for line in table.strip().splitlines())
    return tuple(Figure(key, label, "" if unit == "count" else unit, better == "higher")
                 for key, unit, better, label in rows)


FIGURES = _parse(TABLE)
KEYS = tuple(figure.key for figure in FIGURES)


def complete(found: Mapping[str, float], measured: Iterable[str]) -> Figures:
    """Every figure's value: what `measured` names is taken from `found`, the rest is n/a."""
    names = set(measured)
    return {key: (float(found[key]) if key in names else None) for key in KEYS}


def not_applicable() -> Figures:
    """A side on a broker it cannot use: every figure n/a."""
    return dict.fromkeys(KEYS)


def median(values: Iterable[Value]) -> Value:
    """The median of the values that were measured; n/a when none was."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def medians(runs: list[dict[str, Figures]]) -> dict[str, Figures]:
    """Per side, the median of each figure over `runs` (each: side -> figure -> value)."""
    return {side: {key: median(run[side][key] for run in runs) for key in figures}
            for side, figures in runs[0].items()}


def best_peer(figure: Figure, peers: Mapping[str, Value]) -> tuple[str, float] | None:
    """The peer with the best value of `figure` (highest or lowest), None if none has one."""
    known = [(value, name) for name, value in peers.items() if value is not None]
    if not known:
        return None
    value, name = (max if figure.higher_is_better else min)(known, key=lambda vn: vn[0])
    return name, value


def ratio(ours: Value, best: Value) -> Value:
    """taskq's value over the best peer's; n/a when either is missing or the best is 0."""
    return None if ours is None or not best else ours / best


def at_least_as_good(figure: Figure, ours: Value, best: Value) -> bool | None:
    if ours is None or best is None:
        return None
    return ours >= best if figure.higher_is_better else ours <= best


def row(broker: str, figure: Figure, sides: Mapping[str, Figures],
        sizes: Mapping[str, Any]) -> dict[str, Any]:
    """One figure on one broker: taskq's value, every peer's, the best peer and the ratio."""
    ours = sides[OURS][figure.key]
    peers = {name: figures[figure.key] for name, figures in sides.items() if name != OURS}
    best = best_peer(figure, peers)
    best_name, best_value = best if best else (None, None)
    return {"broker": broker, "figure": figure.key, "label": figure.label.format(**sizes),
            "unit": figure.unit, OURS: ours, "peers": peers, "best_peer": best_name,
            "ratio_to_best": ratio(ours, best_value),
            "taskq_better_or_equal": at_least_as_good(figure, ours, best_value)}


def rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per broker and figure."""
    return [row(broker, figure, sides, results["sizes"])
            for broker, sides in results["brokers"].items() for figure in FIGURES]
