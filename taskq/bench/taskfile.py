"""The file a user gives `taskq submit --from`: typed tasks of every built-in type with small,
realistic parameters and mixed priorities, one JSON object a line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLE = Path("reports") / "daily.csv"  # under the files root; every file task reads it
# One priority a slot, cycled: mostly normal, some high, a third low.
PRIORITIES = ("normal", "low", "normal", "high", "normal", "low", "normal", "normal", "low",
              "normal")
WORDS = ("order", "shipped", "invoice", "paid", "refund", "pending", "report", "ready")


def task(i: int) -> dict[str, Any]:
    """The i-th task of the file: half data (numbers or a short text), 3 in 10 emails to the
    outbox, 2 in 10 file stats."""
    slot = i % 10
    priority = PRIORITIES[slot]
    if slot < 5:
        return {"task_type": "data", "priority": priority, "parameters": _data(i, slot)}
    if slot < 8:
        return {"task_type": "email", "priority": priority,
                "parameters": {"to": f"user{i % 997}@example.com",
                               "subject": f"Your report #{i} is ready"}}
    return {"task_type": "file", "priority": priority,
            "parameters": {"filename": SAMPLE.as_posix(), "operation": "stats"}}


def _data(i: int, slot: int) -> dict[str, Any]:
    if slot % 2 == 0:
        return {"data": [i % 100, (i * 7) % 31 + 0.5, i % 13, (i * 3) % 17, 42]}
    words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(4))
    return {"data": f"{words} {i}", "operation": "word_count"}


def lines(count: int) -> list[str]:
    """`count` JSON lines (no trailing newlines)."""
    return [json.dumps(task(i), separators=(",", ":")) for i in range(count)]


def write(path: Path, count: int) -> Path:
    """Write `count` tasks to `path`, one a line."""
    path.write_text("".join(line + "\n" for line in lines(count)), encoding="utf-8")
    return path


def add_sample(files_root: Path) -> None:
    """The small file every file task names, under the deployment's files root."""
    sample = files_root / SAMPLE
    sample.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{day},{day * 17 % 101},{day * 3}\n" for day in range(1, 31))
    sample.write_text("day,orders,returns\n" + rows, encoding="utf-8")
