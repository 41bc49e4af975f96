"""The limits every task's parameters must fit to travel (JSON, the brokers, the worker),
whatever its type: checked at submit, so that a message a worker cannot take is never queued.
"""

from __future__ import annotations

import math
import re
from typing import Any

# Levels of lists and objects, the parameters object itself included. Deeper data costs the
# worker a recursion for every level (JSON, pickling to a pool process); 32 is far beyond
# what a task needs and far below Python's recursion limit.
MAX_DEPTH = 32
# Signed 64-bit: the widest integer AMQP and most JSON readers (and Lua's cjson) carry.
MIN_INT, MAX_INT = -(2**63), 2**63 - 1
MAX_PROBLEMS = 5  # a million bad items should not make a million-line error
_SURROGATE = re.compile("[\ud800-\udfff]")


def problems(params: Any, path: str = "parameters") -> list[str]:
    """What in `params` cannot travel: nesting deeper than MAX_DEPTH, integers beyond
    64 bits, NaN or infinity, text that is not valid Unicode (lone surrogates: a \\ud800
    escape, or invalid UTF-8 read with surrogateescape), keys that are not strings, values
    that are not JSON data. At most MAX_PROBLEMS of them, each starting with its path."""
    found: list[str] = []
    _check(params, path, 1, found)
    if len(found) > MAX_PROBLEMS:
        found[MAX_PROBLEMS:] = [f"{path}: more values do not fit (the first "
                                f"{MAX_PROBLEMS} are listed)"]
    return found


def is_text(value: str) -> bool:
    """True if `value` is valid Unicode: it can be encoded as UTF-8."""
    return value.isascii() or _SURROGATE.search(value) is None


def _check(value: Any, path: str, level: int, found: list[str]) -> None:
    if len(found) > MAX_PROBLEMS:
        return  # enough to tell what is wrong
    if isinstance(value, dict | list):
        _check_container(value, path, level, found)
    elif isinstance(value, str):
        if not is_text(value):
            found.append(f"{path}: not valid Unicode text (a lone surrogate: a \\ud800-style "
                         "escape, or bytes that are not UTF-8)")
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            found.append(f"{path}: integer out of range (a signed 64-bit integer: "
                         f"{MIN_INT} to {MAX_INT})")
    elif isinstance(value, float):
        if not math.isfinite(value):
            found.append(f"{path}: must be a finite number, got {value!r}")
    else:
        found.append(f"{path}: {type(value).__name__} is not JSON data")


def _check_container(value: dict[Any, Any] | list[Any], path: str, level: int,
                     found: list[str]) -> None:
    if level > MAX_DEPTH:
        found.append(f"{path}: nested deeper than {MAX_DEPTH} levels of lists and objects")
        return
    if isinstance(value, list):
        if _all_fit(value):
            return
        for index, item in enumerate(value):
            if not _plain(item):
                _check(item, f"{path}[{index}]", level + 1, found)
        return
    for key, item in value.items():
        if not isinstance(key, str) or not is_text(key):
            found.append(f"{path}[{key!r}]: keys must be valid Unicode strings")
        elif not _plain(item):
            _check(item, f"{path}.{key}", level + 1, found)


def _all_fit(items: list[Any]) -> bool:
    """A quick look at a long list, in C loops: True if its items are all numbers that fit,
    or all ASCII text (a million of them: ~20 ms instead of ~500); False: look one by one."""
    try:
        if all(map(str.__instancecheck__, items)):
            return "".join(items).isascii()
        # Any NaN or infinity makes the sum NaN or infinite (so may a large finite sum:
        # then the items are looked at one by one).
        return math.isfinite(sum(items)) and MIN_INT <= min(items) and max(items) <= MAX_INT
    except (TypeError, ValueError, OverflowError):  # not all numbers; empty; a huge int
        return False


def _plain(value: Any) -> bool:
    """True for the values that always fit (a quick look, so long lists stay cheap)."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is int:
        return MIN_INT <= value <= MAX_INT
    return kind is bool or value is None or (kind is str and value.isascii())
