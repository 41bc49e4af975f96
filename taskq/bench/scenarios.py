"""The scenarios every side runs, in one order: enqueue, drain, latency, then what only some
sides can do (priority, commands); each returns the figures it measured."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from taskq.bench import measure
from taskq.bench.figures import Figures, complete
from taskq.bench.side import Side

DRAIN_TIMEOUT = 900.0


@dataclass(frozen=True)
class Sizes:
    tasks: int = 10_000  # enqueued through each in-process path, and drained
    round_trips: int = 300  # for the in-process latency percentiles
    lows: int = 2_000  # low tasks queued before the high ones
    probes: int = 5  # high tasks sent one after another while the lows run
    low_ms: float = 10.0  # CPU time of each of those tasks
    cli_runs: int = 5  # runs of each command whose start-up is timed
    warm_runs: int = 1  # untimed runs of a command first (caches warm, as a user's are)
    wait_runs: int = 30  # `taskq submit --wait` processes on the idle worker
    file_lines: int = 10_000  # typed tasks in the file given to `submit --from`
    big_file_lines: int = 100_000  # and in the big one
    http_tasks: int = 10_000  # typed tasks posted to the sidecar's batch route
    http_batch: int = 1_000  # tasks a request


SIZES = {
    "full": Sizes(),
    "tiny": Sizes(tasks=40, round_trips=5, lows=12, probes=1, cli_runs=1, warm_runs=0,
                  wait_runs=1, file_lines=40, big_file_lines=100, http_tasks=40, http_batch=20),
}


def run(side: Side, sizes: Sizes) -> Figures:
    """Every scenario `side` measures; the figures it does not measure are n/a."""
    found: dict[str, float] = {}
    handles = _enqueue(side, sizes, found)
    found.update(drain(side, handles))
    found.update(latency(side, sizes.round_trips))
    _with_worker(side, sizes, found)
    side.stop_worker()
    _commands(side, sizes, handles[0], found)
    return complete(found, side.measures)


def _enqueue(side: Side, sizes: Sizes, found: dict[str, float]) -> list[Any]:
    """Enqueue one at a time and in bulk; returns the tasks left queued for the drain (the
    bulk path's, else a second one-at-a-time batch, untimed)."""
    _, seconds = side.enqueue_single(sizes.tasks)
    found["enqueue_single_in_process_per_s"] = measure.rate(sizes.tasks, seconds)
    side.purge()
    if "submit_process_s" in side.measures:
        found["submit_process_s"] = _command(side.submit_argv(), side, sizes)
        side.purge()
    if "enqueue_bulk_in_process_per_s" not in side.measures:
        return side.enqueue_single(sizes.tasks)[0]
    handles, seconds = side.enqueue_bulk(sizes.tasks)
    found["enqueue_bulk_in_process_per_s"] = measure.rate(sizes.tasks, seconds)
    return handles


def drain(side: Side, handles: list[Any]) -> dict[str, float]:
    """Start the worker on the queued tasks: start to first result, and the drain rate
    (n - 1) / (last finish - first finish)."""
    started = side.start_worker()

    def finished() -> list[float] | None:
        side.worker_alive()
        return side.finish_times(handles)
    finishes = measure.poll(finished, DRAIN_TIMEOUT, "drain")
    first, last = min(finishes), max(finishes)
    return {"worker_ready_s": first - started,
            "drain_per_s": measure.rate(len(handles) - 1, last - first)}


def latency(side: Side, round_trips: int) -> dict[str, float]:
    """Submit-to-result on the idle worker, one task at a time."""
    for _ in range(3):  # warm connections and subscriptions
        side.round_trip()
    times = [side.round_trip() for _ in range(round_trips)]
    return {"latency_in_process_p50_ms": statistics.median(times) * 1000,
            "latency_in_process_p99_ms": measure.percentile(times, 99) * 1000}


def _with_worker(side: Side, sizes: Sizes, found: dict[str, float]) -> None:
    """What needs the idle worker: `submit --wait` processes, then the priority run."""
    if "submit_wait_p50_ms" in side.measures:
        times = measure.command_times(side.wait_argv(), side.env, sizes.wait_runs,
                                      sizes.warm_runs)
        found["submit_wait_p50_ms"] = statistics.median(times) * 1000
        found["submit_wait_p99_ms"] = measure.percentile(times, 99) * 1000
    if "priority_overtakes" in side.measures:
        found["priority_overtakes"] = side.priority(sizes.lows, sizes.low_ms, sizes.probes)


def _commands(side: Side, sizes: Sizes, handle: Any, found: dict[str, float]) -> None:
    """The record's size and the start-up of the side's commands, the worker stopped."""
    if "stored_bytes" in side.measures:
        found["stored_bytes"] = side.stored_bytes(handle)
    if "help_s" in side.measures:
        found["help_s"] = _command(side.help_argv(), side, sizes)
    if "status_s" in side.measures:
        found["status_s"] = _command(side.status_argv(handle), side, sizes)


def _command(argv: list[str], side: Side, sizes: Sizes) -> float:
    """The median wall time of a command, after the size's untimed runs."""
    return statistics.median(measure.command_times(argv, side.env, sizes.cli_runs,
                                                   sizes.warm_runs))
