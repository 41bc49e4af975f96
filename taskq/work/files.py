"""file_processing: statistics and gzip copies of files below the files root."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from taskq.errors import PermanentError, TransientError
from taskq.work import WorkContext
from taskq.work.atomic import atomic_write

CHUNK = 1024 * 1024
PROGRESS_ABOVE = 8 * CHUNK  # files larger than this report progress every ~10%
OPERATIONS = ("stats", "gzip")


def process(ctx: WorkContext, *, filename: str, operation: str = "stats") -> dict[str, Any]:
    """Run `operation` on the file `filename` below ctx.files_root."""
    if operation not in _HANDLERS:
        raise PermanentError(f"unknown operation {operation!r}; "
                             f"expected one of {', '.join(OPERATIONS)}")
    path = resolve(ctx.files_root, filename)
    try:
        return {"operation": operation, "filename": filename,
                **_HANDLERS[operation](ctx, path, filename)}
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise PermanentError(f"cannot process {filename}: {exc.strerror}") from exc
    except OSError as exc:  # e.g. EIO, ENOSPC: may pass
        raise TransientError(f"cannot process {filename}: {exc.strerror or exc}") from exc


def resolve(root: Path, filename: str) -> Path:
    """The real path of `filename` below `root`; PermanentError if it leaves root or is missing."""
    if "\0" in filename:
        raise PermanentError(f"{filename!r} contains a NUL byte")
    real_root = root.resolve()
    path = (real_root / filename).resolve()
    if not path.is_relative_to(real_root):
        raise PermanentError(f"{filename} escapes the files root")
    if not path.exists():
        raise PermanentError(f"no such file: {filename}")
    if not path.is_file():
        raise PermanentError(f"not a regular file: {filename}")
    return path


def _chunks(ctx: WorkContext, stream: BinaryIO, total: int) -> Iterator[bytes]:
    """Read `stream` in chunks, reporting bytes done every ~10% when the file is large."""
    done, next_report = 0, total // 10
    while chunk := stream.read(CHUNK):
        yield chunk
        done += len(chunk)
        if total > PROGRESS_ABOVE and done >= next_report:
            ctx.progress(min(done, total), total)
            next_report = done + total // 10


def _stats(ctx: WorkContext, path: Path, filename: str) -> dict[str, Any]:
    size, lines, last = 0, 0, b"\n"
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in _chunks(ctx, stream, path.stat().st_size):
            size += len(chunk)
            lines += chunk.count(b"\n")
            digest.update(chunk)
            last = chunk[-1:]
    return {
        "size": size,
        "lines": lines + (last != b"\n"),  # a last line without its newline still counts
        "sha256": digest.hexdigest(),
        "mime": mimetypes.guess_type(filename)[0],
    }


def _gzip(ctx: WorkContext, path: Path, filename: str) -> dict[str, Any]:
    root = ctx.files_root.resolve()
    target = root / ctx.output_dir / f"{filename}.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.resolve().is_relative_to(root):
        raise PermanentError(f"output for {filename} escapes the files root")
    digest = hashlib.sha256()
    size_in = 0
    # The copy keeps the input's permission bits (less the umask's), as `gzip` does.
    mode = stat.S_IMODE(path.stat().st_mode)
    with atomic_write(target, mode) as out, path.open("rb") as stream:
        with gzip.GzipFile(filename=path.name, mode="wb", fileobj=out,
                           mtime=int(path.stat().st_mtime)) as packed:
            for chunk in _chunks(ctx, stream, path.stat().st_size):
                size_in += len(chunk)
                digest.update(chunk)
                packed.write(chunk)
    return {
        "output": target.relative_to(root).as_posix(),
        "size_in": size_in,
        "size_out": target.stat().st_size,
        "sha256": digest.hexdigest(),
    }


_HANDLERS: dict[str, Callable[[WorkContext, Path, str], dict[str, Any]]] = {
    "stats": _stats,
    "gzip": _gzip,
}
