"""The benchmark's table: each figure for taskq and plain Celery, and their ratio."""

from __future__ import annotations

from typing import Any

# key, label, unit, True when higher is better
FIGURES: tuple[tuple[str, str, str, bool], ...] = (
    ("enqueue_single_per_s", "enqueue, one at a time", "/s", True),
    ("enqueue_bulk_per_s", "enqueue, bulk path", "/s", True),
    ("drain_per_s", "drain, 1 worker x 2 processes", "/s", True),
    ("latency_p50_ms", "submit to result, p50", "ms", False),
    ("latency_p99_ms", "submit to result, p99", "ms", False),
    ("priority_overtakes", "low tasks started while a high one waited", "", False),
    ("worker_ready_s", "worker start to first result", "s", False),
    ("stored_bytes", "a finished task's record (result)", "B", False),
    ("help_s", "--help", "s", False),
    ("status_s", "status <id>", "s", False),
)


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per broker and figure: taskq, celery, taskq/celery, and whether taskq wins."""
    out = []
    for broker, sides in results["brokers"].items():
        for key, label, unit, higher in FIGURES:
            ours, theirs = sides["taskq"][key], sides["celery"][key]
            ratio = ours / theirs if theirs else None
            better = ours >= theirs if higher else ours <= theirs
            out.append({"broker": broker, "figure": key, "label": label, "unit": unit,
                        "taskq": ours, "celery": theirs, "ratio": ratio,
                        "taskq_better_or_equal": better})
    return out


def table(results: dict[str, Any]) -> Any:
    from rich.table import Table

    runs = results.get("repeat", 1)
    medians = f", medians of {runs} runs" if runs > 1 else ""
    grid = Table(title=f"taskq bench ({results['size']}{medians}, {results['seconds']} s)")
    for name in ("broker", "figure", "taskq", "celery", "taskq/celery", ""):
        grid.add_column(name, justify="left" if name in ("broker", "figure") else "right")
    for row in rows(results):
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        grid.add_row(row["broker"], row["label"], _num(row["taskq"], row["unit"]),
                     _num(row["celery"], row["unit"]), ratio,
                     "[green]ok[/]" if row["taskq_better_or_equal"] else "[red]behind[/]")
    return grid


def _num(value: float, unit: str) -> str:
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit in ("", "B"):
        return f"{value:.0f}{' B' if unit else ''}"
    return f"{value:.3f} {unit}" if unit == "s" else f"{value:.2f} {unit}"
