"""file_processing work: stats and gzip below the files root, and refusing to leave it."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
from pathlib import Path

import pytest

from taskq.config import SmtpSettings
from taskq.errors import PermanentError
from taskq.work import WorkContext
from taskq.work.files import process


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "files").mkdir()
    return tmp_path / "files"


def context(root: Path, progress: list[tuple[int, int]] | None = None) -> WorkContext:
    seen = progress if progress is not None else []
    return WorkContext(smtp=SmtpSettings(url=None, sender="taskq@localhost", timeout=1),
                       outbox=root.parent / "outbox", files_root=root, output_dir="out",
                       progress=lambda done, total: seen.append((done, total)))


def test_stats_gives_size_lines_sha256_and_mime(root: Path) -> None:
    (root / "report.csv").write_bytes(b"a,b\n1,2\n")
    assert process(context(root), filename="report.csv") == {
        "operation": "stats", "filename": "report.csv", "size": 8, "lines": 2,
        "sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest(), "mime": "text/csv",
    }


@pytest.mark.parametrize(("content", "lines"), [(b"", 0), (b"one", 1), (b"a\nb", 2)])
def test_a_last_line_without_newline_still_counts(root: Path, content: bytes,
                                                  lines: int) -> None:
    (root / "f").write_bytes(content)
    assert process(context(root), filename="f")["lines"] == lines


def test_gzip_writes_a_compressed_copy_under_the_output_dir(root: Path) -> None:
    # Given a file in a subdirectory
    (root / "logs").mkdir()
    content = b"hello\n" * 1000
    (root / "logs" / "app.log").write_bytes(content)
    # When it is gzipped
    result = process(context(root), filename="logs/app.log", operation="gzip")
    # Then the copy decompresses to the original, and no temporary file is left behind
    assert result["output"] == "out/logs/app.log.gz"
    assert gzip.decompress((root / result["output"]).read_bytes()) == content
    assert result["size_in"] == len(content)
    assert result["size_out"] == (root / result["output"]).stat().st_size < len(content)
    assert result["sha256"] == hashlib.sha256(content).hexdigest()
    assert [p.name for p in (root / "out" / "logs").iterdir()] == ["app.log.gz"]


def test_gzip_replaces_an_earlier_output(root: Path) -> None:
    (root / "f").write_bytes(b"new")
    (root / "out").mkdir()
    (root / "out" / "f.gz").write_bytes(b"old")
    process(context(root), filename="f", operation="gzip")
    assert gzip.decompress((root / "out" / "f.gz").read_bytes()) == b"new"


@pytest.mark.parametrize(("given", "umask", "kept"), [
    (0o644, 0o022, 0o644), (0o640, 0o022, 0o640), (0o666, 0o022, 0o644), (0o600, 0o000, 0o600)])
def test_gzip_keeps_the_input_s_mode_less_the_umask(root: Path, given: int, umask: int,
                                                     kept: int) -> None:
    # Given an input file with mode `given`, and a process umask
    (root / "f").write_bytes(b"data")
    (root / "f").chmod(given)
    before = os.umask(umask)
    try:
        # When it is gzipped
        process(context(root), filename="f", operation="gzip")
    finally:
        os.umask(before)
    # Then the copy has the input's mode less what the umask forbids
    assert stat.S_IMODE((root / "out" / "f.gz").stat().st_mode) == kept


def test_a_symlink_out_of_the_root_is_refused(root: Path) -> None:
    (root.parent / "secret").write_text("x")
    (root / "link").symlink_to(root.parent / "secret")
    with pytest.raises(PermanentError, match="link escapes the files root"):
        process(context(root), filename="link")


def test_a_symlink_within_the_root_is_followed(root: Path) -> None:
    (root / "real").write_text("x\n")
    (root / "link").symlink_to(root / "real")
    assert process(context(root), filename="link")["size"] == 2


def test_dot_dot_is_refused_at_run_time_too(root: Path) -> None:
    (root.parent / "secret").write_text("x")
    with pytest.raises(PermanentError, match="escapes the files root"):
        process(context(root), filename="../secret")


def test_a_missing_file_is_permanent(root: Path) -> None:
    with pytest.raises(PermanentError, match="^no such file: nope.txt$"):
        process(context(root), filename="nope.txt")


def test_a_directory_is_not_a_file(root: Path) -> None:
    (root / "dir").mkdir()
    with pytest.raises(PermanentError, match="^not a regular file: dir$"):
        process(context(root), filename="dir")


def test_an_unknown_operation_is_permanent(root: Path) -> None:
    (root / "f").write_text("x")
    with pytest.raises(PermanentError, match="unknown operation 'zip'"):
        process(context(root), filename="f", operation="zip")


def test_large_files_report_progress_in_bytes(root: Path) -> None:
    # Given a 20 MiB file
    size = 20 * 1024 * 1024
    (root / "big").write_bytes(b"\0" * size)
    seen: list[tuple[int, int]] = []
    # When its stats are computed
    process(context(root, seen), filename="big")
    # Then progress came about every tenth, ending at the file size
    assert 8 <= len(seen) <= 11
    assert seen[-1] == (size, size)


def test_small_files_report_no_progress(root: Path) -> None:
    (root / "f").write_text("x")
    seen: list[tuple[int, int]] = []
    process(context(root, seen), filename="f")
    assert seen == []
