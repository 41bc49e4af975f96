"""Bulk submit: read JSON lines, validate every one, then record and publish them in batches."""

from __future__ import annotations

import gc
import io
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from taskq import request, submit
from taskq.errors import InvalidParameters, NotQueued, TaskqError, UsageError

if TYPE_CHECKING:
    from taskq.config import Settings
    from taskq.records import TaskRecord
    from taskq.runtime import Runtime

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).

MAX_PROBLEMS = 20  # a file of bad lines should not make an error of a million lines


def read_lines(source: str) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line of a file, or of stdin when `source` is -."""
    try:
        if source == "-":  # read as bytes: stdin's own decoding would fail with a traceback
            return _numbered(io.StringIO(sys.stdin.buffer.read().decode(), newline=None))
        with Path(source).open(encoding="utf-8") as stream:
            return _numbered(stream)
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        name = "stdin" if source == "-" else source
        raise UsageError(f"{name} is not UTF-8 text: {exc.reason} at byte {exc.start}"
                         ) from None


def _numbered(stream: IO[str]) -> list[tuple[int, str]]:
    return [(n, line) for n, line in enumerate(stream, start=1) if line.strip()]


def prepare_all(settings: Settings, lines: Iterable[tuple[int, str]]
                ) -> list[tuple[int, TaskRecord]]:
    """Validate every line and build its record, touching no server; InvalidParameters
    names each bad line, so that nothing of a file with one is queued."""
    numbered = list(lines)
    with paused_gc():
        built = prepare_labelled((f"line {number}", partial(_prepare_line, settings, text))
                                 for number, text in numbered)
    return [(number, record) for (number, _), record in zip(numbered, built, strict=True)]


def prepare_labelled(items: Iterable[tuple[str, Callable[[], TaskRecord]]]
                     ) -> list[TaskRecord]:
    """Build the record of every (label, prepare) item, e.g. ("line 3", ...) or ("tasks[3]",
    ...); InvalidParameters names each bad item by its label (a problem that already starts
    with it is kept as it is), at most MAX_PROBLEMS of them."""
    records: list[TaskRecord] = []
    problems: list[str] = []
    for label, prepare in items:
        try:
            records.append(prepare())
        except InvalidParameters as exc:
            problems += [_labelled(label, problem) for problem in exc.problems]
        except TaskqError as exc:
            problems.append(_labelled(label, exc.message))
    if problems:
        more = len(problems) - MAX_PROBLEMS
        raise InvalidParameters(problems[:MAX_PROBLEMS] +
                                ([f"and {more} more"] if more > 0 else []))
    return records


def _labelled(label: str, problem: str) -> str:
    return problem if problem.startswith(label) else f"{label}: {problem}"


def _prepare_line(settings: Settings, text: str) -> TaskRecord:
    body: Any = request.parse_json(text)
    return submit.prepare(settings, request.from_api_body(body, path="task"))


def submit_all(runtime: Runtime, records: list[TaskRecord],
               progress: Callable[[int], None] | None = None) -> list[TaskRecord]:
    """Record and publish prepared tasks in pipelined batches; returns them (a repeat of an
    idempotency key made, in place, the record of the task its key names: keys.send_once)."""
    from taskq.broker import released
    from taskq.broker.publish import send_all
    from taskq.store import dependencies, keys

    with paused_gc():
        keys.send_once(runtime, records, dependencies.sending(
            runtime, lambda fresh: send_all(runtime, fresh, progress=progress),
            released.release))
    return records


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cycle collection while a batch's records and messages are made: they hold no
    cycles, and the collector kept walking the growing heap of them (a tenth of the time)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def submit_lines(runtime: Runtime, numbered: list[tuple[int, TaskRecord]],
                 progress: Callable[[int], None] | None = None) -> None:
    """submit_all for the records of numbered lines; NotQueued names the lines not queued."""
    try:
        submit_all(runtime, [record for _, record in numbered], progress)
    except NotQueued as exc:
        unqueued = set(exc.unqueued)
        lines = [number for number, record in numbered if record.id in unqueued]
        raise NotQueued(exc.problem, exc.queued, exc.unqueued, which=_ranges(lines)) from None


def queued_lines(numbered: list[tuple[int, TaskRecord]], exc: NotQueued
                 ) -> list[tuple[int, TaskRecord]]:
    """The lines that were queued before `exc`."""
    unqueued = set(exc.unqueued)
    return [(number, record) for number, record in numbered if record.id not in unqueued]


def _ranges(numbers: list[int], most: int = 10) -> str:
    """"lines 3, 7-9": consecutive numbers as ranges, at most `most` of them."""
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans[:most])
    more = f" and {len(spans) - most} more ranges" if len(spans) > most else ""
    return f"line{'s' if len(numbers) > 1 else ''} {text}{more}" if numbers else ""


def summary_json(number: int, record: TaskRecord) -> dict[str, Any]:
    """What `submit --from --json` prints for one line."""
    summary = {"line": number, "id": record.id, "type": record.type,
               "priority": record.priority, "queue": record.queue, "state": record.state}
    return {**summary, "deduplicated": True} if record.deduplicated else summary
