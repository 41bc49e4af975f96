"""A progress bar on stderr for long CLI operations, quiet when stderr is not a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

# taskq modules imported inside functions are loaded when first used, for start-up time
# (.ci/cycles.py counts those imports too: none of them hides a cycle).


@contextmanager
def bar(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`; rich draws the bar on stderr and removes it when done."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from taskq.term import render

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=render.console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
