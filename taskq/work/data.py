"""data_processing: statistics, word counts, sorting and summaries of submitted data."""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from taskq.errors import PermanentError
from taskq.work import WorkContext

PROGRESS_ABOVE = 10_000  # lists longer than this report progress every ~10%
TOP_WORDS = 10
_WORD = re.compile(r"\w+(?:['’]\w+)*")

# Which shape of data each operation takes; `auto` picks the first fitting one below.
OPERATIONS: dict[str, str] = {
    "stats": "numbers",
    "sort": "numbers",
    "word_count": "text",
    "uppercase": "text",
    "summary": "records",
}
AUTO: dict[str, str] = {"numbers": "stats", "text": "word_count", "records": "summary"}
SHAPE_NAMES: dict[str, str] = {
    "numbers": "a list of numbers",
    "text": "a string",
    "records": "a list of records",
}


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def shape_of(data: Any) -> str:
    """`text`, `numbers` or `records`, judged by the first item; PermanentError otherwise."""
    if isinstance(data, str):
        return "text"
    if isinstance(data, list) and data and is_number(data[0]):
        return "numbers"
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return "records"
    raise PermanentError("data must be a string, a non-empty list of numbers "
                         "or a non-empty list of records")


def process(ctx: WorkContext, *, data: Any, operation: str = "auto") -> dict[str, Any]:
    """Run `operation` on `data`; the result is JSON-serialisable and names the operation."""
    shape = shape_of(data)
    if operation == "auto":
        operation = AUTO[shape]
    if operation not in OPERATIONS:
        raise PermanentError(f"unknown operation {operation!r}; "
                             f"expected one of auto, {', '.join(OPERATIONS)}")
    if OPERATIONS[operation] != shape:
        raise PermanentError(f"operation {operation!r} needs {SHAPE_NAMES[OPERATIONS[operation]]},"
                             f" but data is {SHAPE_NAMES[shape]}")
    return {"operation": operation, **_HANDLERS[operation](ctx, data)}


def _tracked(ctx: WorkContext, items: Sequence[Any]) -> Iterator[Any]:
    """Yield `items`, reporting progress every ~10% when there are many of them."""
    total = len(items)
    if total <= PROGRESS_ABOVE:
        yield from items
        return
    step = math.ceil(total / 10)
    for start in range(0, total, step):
        yield from items[start:start + step]
        ctx.progress(min(start + step, total), total)


def _numbers(ctx: WorkContext, data: list[Any]) -> list[int | float]:
    numbers: list[int | float] = []
    for i, value in enumerate(_tracked(ctx, data)):
        if not is_finite_number(value):
            raise PermanentError(f"data[{i}] is not a finite number: {value!r:.40}")
        numbers.append(value)
    return numbers


def figures(numbers: list[int | float]) -> dict[str, Any]:
    """count, sum, mean, min, max, sample stdev (null below two values) and median."""
    if not numbers:
        return {"count": 0, "sum": 0, "mean": None, "min": None, "max": None,
                "stdev": None, "median": None}
    exact = all(isinstance(n, int) for n in numbers)
    return {
        "count": len(numbers),
        "sum": sum(numbers) if exact else math.fsum(numbers),
        "mean": statistics.fmean(numbers),
        "min": min(numbers),
        "max": max(numbers),
        "stdev": statistics.stdev(numbers) if len(numbers) > 1 else None,
        "median": statistics.median(numbers),
    }


def _stats(ctx: WorkContext, data: list[Any]) -> dict[str, Any]:
    return figures(_numbers(ctx, data))


def _sort(ctx: WorkContext, data: list[Any]) -> dict[str, Any]:
    return {"count": len(data), "result": sorted(_numbers(ctx, data))}


def _word_count(ctx: WorkContext, text: str) -> dict[str, Any]:
    words = Counter(_WORD.findall(text.lower()))
    return {
        "words": sum(words.values()),
        "unique_words": len(words),
        "lines": len(text.splitlines()),
        "characters": len(text),
        "top_words": [{"word": w, "count": n} for w, n in words.most_common(TOP_WORDS)],
    }


def _uppercase(ctx: WorkContext, text: str) -> dict[str, Any]:
    return {"characters": len(text), "result": text.upper()}


def _summary(ctx: WorkContext, records: list[Any]) -> dict[str, Any]:
    """The fields seen in any record and figures for each field whose values are numbers."""
    columns: dict[str, list[Any]] = {}
    for i, record in enumerate(_tracked(ctx, records)):
        if not isinstance(record, dict):
            raise PermanentError(f"data[{i}] is not a record: {record!r:.40}")
        for key, value in record.items():
            values = columns.setdefault(str(key), [])
            if value is not None:  # a null is a missing value, not a reason to skip the field
                values.append(value)
    numeric = {
        name: figures(values) for name, values in columns.items()
        if values and all(is_finite_number(v) for v in values)
    }
    return {"count": len(records), "fields": sorted(columns), "numeric": numeric}


_HANDLERS: dict[str, Callable[[WorkContext, Any], dict[str, Any]]] = {
    "stats": _stats,
    "sort": _sort,
    "word_count": _word_count,
    "uppercase": _uppercase,
    "summary": _summary,
}
