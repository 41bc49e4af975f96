"""The benchmark's report: per broker, each figure for taskq and every peer, the best peer and
taskq's ratio to it; rich tables on a terminal, aligned plain text in a pipe."""

from __future__ import annotations

from typing import Any

from taskq.bench.figures import OURS, Value

VERDICT = {True: "ok", False: "behind", None: ""}  # taskq against the best peer


def title(results: dict[str, Any], broker: str) -> str:
    runs = results.get("repeat", 1)
    medians = f", medians of {runs} runs" if runs > 1 else ""
    return f"taskq bench on {broker} ({results['size']}{medians}, {results['seconds']} s)"


def header(results: dict[str, Any]) -> list[str]:
    return ["figure", OURS, *results["peers"], "best peer", "taskq/best", ""]


def cells(results: dict[str, Any], broker: str) -> list[list[str]]:
    """The text of each row of `broker`'s table."""
    return [[row["label"], number(row[OURS], row["unit"]),
             *(number(row["peers"].get(p), row["unit"]) for p in results["peers"]),
             row["best_peer"] or "-", ratio(row["ratio_to_best"]),
             VERDICT[row["taskq_better_or_equal"]]]
            for row in results["rows"] if row["broker"] == broker]


def tables(results: dict[str, Any]) -> list[Any]:
    """One rich table a broker."""
    from rich.table import Table

    out = []
    for broker in results["brokers"]:
        grid = Table(title=title(results, broker))
        for i, name in enumerate(header(results)):
            grid.add_column(name, justify="left" if i == 0 else "right")
        for line in cells(results, broker):
            colour = {"ok": "green", "behind": "red"}.get(line[-1])
            grid.add_row(*line[:-1], f"[{colour}]{line[-1]}[/]" if colour else "")
        out.append(grid)
    return out


def plain(results: dict[str, Any]) -> str:
    """The same as aligned text, for a pipe or a file."""
    blocks = []
    for broker in results["brokers"]:
        rows = [header(results), *cells(results, broker)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
                 for r in rows]
        blocks.append("\n".join([title(results, broker), *lines]))
    return "\n\n".join(blocks) + "\n"


def number(value: Value, unit: str) -> str:
    """A figure as the report shows it; n/a where it was not measured."""
    if value is None:
        return "n/a"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit in ("", "B"):
        return f"{value:.0f}{' B' if unit else ''}"
    return f"{value:.3f} {unit}" if unit == "s" else f"{value:.2f} {unit}"


def ratio(value: Value) -> str:
    return "-" if value is None else f"{value:.2f}"
