"""Random hex text for ids and tags, drawn from the OS a block at a time: one os.urandom call
a message released the GIL to the publishing thread and cost a bulk submit more than the
rest of building the message."""

from __future__ import annotations

import os

BLOCK = 16 * 256  # bytes drawn at once: 256 ids or tags
_hex: list[str] = []  # hex digits not yet given, 32 a string


def hex32() -> str:
    """32 random hex digits (128 bits, as os.urandom(16).hex()); never the same digits to two
    callers, in threads or in processes forked from this one."""
    while True:
        try:
            return _hex.pop()
        except IndexError:  # none left (another thread may have taken the last)
            digits = os.urandom(BLOCK).hex()
            _hex.extend(digits[i:i + 32] for i in range(0, len(digits), 32))


def _forget() -> None:
    _hex.clear()  # a forked child must not give the digits its parent gives too


os.register_at_fork(after_in_child=_forget)
