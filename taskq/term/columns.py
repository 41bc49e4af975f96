"""Tables that fit: columns kept by importance for a terminal's width, or plain aligned text
for a pipe (no colour, no wrapping, nothing cut)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from rich import box
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Sequence

GAP = 3  # columns between two table columns (padding and the blank divider)
FLEX_MIN = 16  # width a flexible column (a note, an error) asks for before it wraps
FLEX_WANT = 60  # width it keeps before less important columns are dropped for it


@dataclass(frozen=True)
class Column:
    """One column: `rank` 0 is never dropped; higher ranks go first when space runs out.
    A `flex` column takes the width left and wraps inside it instead of pushing others out."""

    name: str
    rank: int = 0
    justify: Literal["left", "right"] = "left"
    flex: bool = False


@dataclass
class Grid:
    """Rows of cells (styled text, one line each) under their columns; `full` holds each
    cell's unshortened text where the table shows it shortened (a full id for a pipe)."""

    columns: list[Column]
    rows: list[list[Text]] = field(default_factory=list)
    full: list[list[str]] = field(default_factory=list)

    def add(self, *cells: Text | str, full: Sequence[str] | None = None) -> None:
        row = [c if isinstance(c, Text) else Text(c) for c in cells]
        self.rows.append(row)
        self.full.append(list(full) if full is not None else [c.plain for c in row])


def natural_widths(grid: Grid) -> list[int]:
    """Each column's width with nothing shortened: its header or its widest cell."""
    return [max([len(c.name)] + [row[i].cell_len for row in grid.rows])
            for i, c in enumerate(grid.columns)]


def kept(grid: Grid, width: int) -> list[int]:
    """Indexes of the columns to show at `width`: the least important dropped first until the
    rest fit. A flex column is first counted at up to FLEX_WANT, so columns less important
    than it go before it is narrowed; then at FLEX_MIN. Rank 0 columns always stay."""
    widths = natural_widths(grid)
    keep = list(range(len(grid.columns)))
    flex_rank = min((c.rank for c in grid.columns if c.flex), default=None)

    def needed(squeeze: bool) -> int:
        flex = FLEX_MIN if squeeze else FLEX_WANT
        asks = [min(widths[i], flex) if grid.columns[i].flex else widths[i] for i in keep]
        return sum(asks) + GAP * (len(keep) - 1)

    for squeeze, above in ((False, flex_rank), (True, 0)):
        while above is not None and needed(squeeze) > width:
            droppable = [i for i in keep if grid.columns[i].rank > above]
            if not droppable:
                break  # the last resort: rich shortens what is left
            keep.remove(max(droppable, key=lambda i: (grid.columns[i].rank, i)))
    return keep


def table(grid: Grid, width: int, title: str | None = None, wrap: bool = True,
          rows: int | None = None) -> Table:
    """A rich table of the columns that fit `width`, one line a row: flex columns wrap, or
    without `wrap` are shortened with "…" (a view whose height is counted); the first `rows`."""
    out = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                pad_edge=False, show_edge=False)
    keep = kept(grid, width)
    sizes = _sizes(grid, keep, width)
    for i, size in zip(keep, sizes, strict=True):
        column = grid.columns[i]
        folds = column.flex and wrap
        out.add_column(column.name, justify=column.justify, no_wrap=not folds, width=size,
                       overflow="fold" if folds else "ellipsis")
    for row in grid.rows[:rows]:
        out.add_row(*(row[i] for i in keep))
    return out


def _sizes(grid: Grid, keep: list[int], width: int) -> list[int]:
    """Each kept column at its natural width; flex columns share what is left (no more than
    they need, no less than FLEX_MIN or their need if smaller)."""
    widths = natural_widths(grid)
    fixed = sum(widths[i] for i in keep if not grid.columns[i].flex)
    flex = [i for i in keep if grid.columns[i].flex]
    left = width - fixed - GAP * (len(keep) - 1)
    share = left // len(flex) if flex else 0
    return [min(widths[i], max(share, FLEX_MIN)) if grid.columns[i].flex else widths[i]
            for i in keep]


def plain(grid: Grid) -> str:
    """Every column, aligned with spaces, no colour, nothing shortened: for grep, cut and awk.
    An empty cell is "-" so every row has the same number of fields."""
    cells = [[c.name for c in grid.columns]]
    cells += [[" ".join(v.split()) or "-" for v in row] for row in grid.full]
    widths = [max(len(row[i]) for row in cells) for i in range(len(grid.columns))]
    lines = []
    for row in cells:
        padded = [v.rjust(w) if c.justify == "right" else v.ljust(w)
                  for v, w, c in zip(row, widths, grid.columns, strict=True)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines) + "\n"
