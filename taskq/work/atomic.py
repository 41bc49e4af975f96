"""Writes files so that readers see either the old file or the complete new one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(target: Path, mode: int | None = None) -> Iterator[BinaryIO]:
    """Yield a temporary file beside `target`; rename it over `target` on success, else drop it.
    With `mode`, the file gets those permission bits less the umask's, as open() would give
    a new file (mkstemp makes it 0600)."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        if mode is not None:
            os.fchmod(fd, mode & ~_umask())
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (read by setting it and setting it back: a task process runs one
    task at a time)."""
    current = os.umask(0o022)
    os.umask(current)
    return current
