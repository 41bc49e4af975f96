"""The benchmark's arithmetic and report: medians over runs, the best peer and taskq's ratio to
it, n/a where a side cannot measure, the task file and the options; no server."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from dataclasses import asdict

import pytest

from taskq import config
from taskq.bench import figures, peers, report, run, scenarios, taskfile
from taskq.bench.figures import FIGURES, KEYS, Figure
from taskq.bench.measure import overtakes
from taskq.bench.side import Side
from taskq.bulk import prepare_all
from taskq.errors import TaskqError, UsageError

DRAIN = Figure("drain_per_s", "drain", "/s", True)
P50 = Figure("latency_in_process_p50_ms", "p50", "ms", False)
SIZES = asdict(run.SIZES["full"])


def test_each_figure_is_the_median_of_the_runs_for_each_side():
    runs = [{"taskq": {"drain_per_s": 700.0, "help_s": 0.12},
             "celery": {"drain_per_s": 400.0, "help_s": 0.70}},
            {"taskq": {"drain_per_s": 650.0, "help_s": 0.30},
             "celery": {"drain_per_s": 450.0, "help_s": 0.65}},
            {"taskq": {"drain_per_s": 720.0, "help_s": 0.11},
             "celery": {"drain_per_s": 430.0, "help_s": 0.90}}]
    assert figures.medians(runs) == {"taskq": {"drain_per_s": 700.0, "help_s": 0.12},
                                     "celery": {"drain_per_s": 430.0, "help_s": 0.70}}


def test_a_figure_never_measured_stays_n_a_in_the_medians():
    runs = [{"huey": {"drain_per_s": 1800.0, "status_s": None}},
            {"huey": {"drain_per_s": 1900.0, "status_s": None}}]
    assert figures.medians(runs) == {"huey": {"drain_per_s": 1850.0, "status_s": None}}


def test_a_figure_missing_from_one_run_is_the_median_of_the_others():
    assert figures.median([3.0, None, 5.0]) == 4.0


def test_the_best_peer_of_a_rate_is_the_highest_and_of_a_time_the_lowest():
    values = {"celery": 450.0, "dramatiq": 1800.0, "huey": 1850.0}
    assert figures.best_peer(DRAIN, values) == ("huey", 1850.0)
    assert figures.best_peer(P50, values) == ("celery", 450.0)


def test_a_peer_that_cannot_measure_a_figure_is_not_the_best_of_it():
    # Given Huey, n/a on the bulk path, and Celery, slower than Dramatiq
    values = {"celery": 900.0, "dramatiq": 1100.0, "huey": None}
    # Then Dramatiq is the best, whether higher or lower is better
    assert figures.best_peer(DRAIN, values) == ("dramatiq", 1100.0)
    assert figures.best_peer(P50, values) == ("celery", 900.0)


def test_with_no_peer_measuring_a_figure_there_is_no_best_peer():
    assert figures.best_peer(DRAIN, {"celery": None, "huey": None}) is None
    assert figures.best_peer(DRAIN, {}) is None


def test_the_ratio_is_taskq_over_the_best_peer_and_n_a_without_one():
    assert figures.ratio(900.0, 1800.0) == 0.5
    assert figures.ratio(None, 1800.0) is None
    assert figures.ratio(900.0, None) is None
    assert figures.ratio(0.0, 0.0) is None  # no low task overtook, on either side


def test_taskq_is_at_least_as_good_when_higher_is_better_and_it_is_higher():
    assert figures.at_least_as_good(DRAIN, 2000.0, 1850.0) is True
    assert figures.at_least_as_good(DRAIN, 1000.0, 1850.0) is False
    assert figures.at_least_as_good(P50, 1.2, 1.3) is True
    assert figures.at_least_as_good(P50, 3.4, 1.3) is False
    assert figures.at_least_as_good(P50, 3.4, None) is None


def test_a_side_reports_what_it_measures_and_n_a_for_everything_else():
    # Given a side that measures two figures, and a value found for one it does not measure
    found = {"drain_per_s": 1800.0, "worker_ready_s": 0.3, "help_s": 0.5}
    # When its figures are completed
    done = figures.complete(found, {"drain_per_s", "worker_ready_s"})
    # Then every figure is there, the two it measures with their value, the rest n/a
    assert list(done) == list(KEYS)
    assert done["drain_per_s"] == 1800.0 and done["worker_ready_s"] == 0.3
    assert [k for k, v in done.items() if v is None] == [
        k for k in KEYS if k not in ("drain_per_s", "worker_ready_s")]


def _results() -> dict:
    def side(**values: float | None) -> dict:
        return {**figures.not_applicable(), **values}
    results = {"size": "full", "sizes": SIZES, "seconds": 12.0, "repeat": 3,
               "peers": {"celery": "", "dramatiq": "", "huey": ""},
               "brokers": {"redis": {"taskq": side(drain_per_s=500.0, help_s=0.12),
                                     "celery": side(drain_per_s=400.0, help_s=0.70),
                                     "dramatiq": side(drain_per_s=1800.0, help_s=0.30),
                                     "huey": side(drain_per_s=1850.0)},
                           "rabbitmq": {"taskq": side(drain_per_s=600.0),
                                        "celery": side(drain_per_s=550.0),
                                        "dramatiq": side(drain_per_s=1700.0),
                                        "huey": figures.not_applicable()}}}
    results["rows"] = figures.rows(results)
    return results


def test_the_rows_give_each_figure_on_each_broker_with_every_peer_and_the_best():
    rows = _results()["rows"]
    assert len(rows) == 2 * len(FIGURES)
    drain = next(r for r in rows if r["broker"] == "redis" and r["figure"] == "drain_per_s")
    assert drain["taskq"] == 500.0
    assert drain["peers"] == {"celery": 400.0, "dramatiq": 1800.0, "huey": 1850.0}
    assert drain["best_peer"] == "huey"
    assert drain["ratio_to_best"] == pytest.approx(500 / 1850)
    assert drain["taskq_better_or_equal"] is False
    helps = next(r for r in rows if r["broker"] == "redis" and r["figure"] == "help_s")
    assert (helps["best_peer"], helps["taskq_better_or_equal"]) == ("dramatiq", True)


def test_a_peer_on_a_broker_it_cannot_use_is_n_a_there_and_not_the_best():
    rows = _results()["rows"]
    drain = next(r for r in rows if r["broker"] == "rabbitmq" and r["figure"] == "drain_per_s")
    assert drain["peers"]["huey"] is None
    assert drain["best_peer"] == "dramatiq"


def test_each_figure_has_its_unit_and_the_way_that_is_better():
    by_key = {figure.key: figure for figure in FIGURES}
    assert len(by_key) == len(FIGURES) == 16
    assert (by_key["drain_per_s"].unit, by_key["drain_per_s"].higher_is_better) == ("/s", True)
    assert (by_key["submit_wait_p50_ms"].unit,
            by_key["submit_wait_p50_ms"].higher_is_better) == ("ms", False)
    # a count has no unit: the report shows "0", not "0 count"
    assert (by_key["priority_overtakes"].unit,
            by_key["priority_overtakes"].higher_is_better) == ("", False)
    assert report.number(0.0, by_key["priority_overtakes"].unit) == "0"


def test_a_row_label_names_the_size_it_was_measured_at():
    rows = _results()["rows"]
    labels = {r["figure"]: r["label"] for r in rows}
    assert "100,000 tasks" in labels["submit_big_file_per_s"]
    assert "1,000 a request" in labels["submit_http_batch_per_s"]


def test_the_plain_report_shows_every_peer_n_a_and_the_ratio_to_the_best():
    text = report.plain(_results())
    lines = text.splitlines()
    # Then each broker has a title, a header naming every peer, and a line a figure
    assert lines[0].startswith("taskq bench on redis (full, medians of 3 runs")
    assert lines[1].split() == ["figure", "taskq", "celery", "dramatiq", "huey", "best",
                                "peer", "taskq/best"]
    drain = next(line for line in lines if line.startswith("drain") and "1,850/s" in line)
    assert drain.split()[-6:] == ["400/s", "1,800/s", "1,850/s", "huey", "0.27", "behind"]
    # And a peer that cannot use a broker reads n/a there
    rabbit = text.split("\n\n")[1].splitlines()
    assert rabbit[0].startswith("taskq bench on rabbitmq")
    drain = next(line for line in rabbit if line.startswith("drain"))
    assert drain.split()[-6:] == ["550/s", "1,700/s", "n/a", "dramatiq", "0.35", "behind"]


def test_a_figure_not_measured_reads_n_a_and_each_unit_its_way():
    assert report.number(None, "/s") == "n/a"
    assert report.number(14388.2, "/s") == "14,388/s"
    assert report.number(0.1234, "s") == "0.123 s"
    assert report.number(3.456, "ms") == "3.46 ms"
    assert report.number(424, "B") == "424 B"


def test_only_low_starts_inside_a_high_tasks_wait_count_as_overtaking():
    # Given two high tasks, waiting from 10 to 12 and from 20 to 21
    windows = [(10.0, 12.0), (20.0, 21.0)]
    # When low tasks start before, inside and after those waits
    starts = [9.9, 10.5, 11.9, 12.0, 15.0, 20.2, 21.5]
    # Then the ones inside count (a start at the very moment the high one starts does not)
    assert overtakes(starts, windows) == 3


def test_the_task_file_holds_valid_tasks_of_every_built_in_type_and_priority(tmp_path):
    # When the benchmark's file of 50 tasks is validated as `submit --from` does
    settings = config.load(env={"TASKQ_HOME": str(tmp_path)})
    numbered = prepare_all(settings, enumerate(taskfile.lines(50), start=1))
    # Then every line is a task, of every built-in type and at every priority
    assert len(numbered) == 50
    records = [record for _, record in numbered]
    assert {r.type for r in records} == {"data_processing", "email_sending",
                                         "file_processing"}
    assert {r.priority for r in records} == {"high", "normal", "low"}
    # And data tasks carry numbers and short texts alike
    kinds = {type(r.params["data"]) for r in records if r.type == "data_processing"}
    assert kinds == {list, str}


def test_peers_are_named_once_in_order_and_an_unknown_one_is_refused():
    assert peers.parse("huey, celery,huey,") == ["huey", "celery"]
    assert peers.parse("") == []
    with pytest.raises(UsageError, match="unknown peer 'rq'"):
        peers.parse("celery,rq")


def test_a_peer_not_installed_is_skipped_with_a_line_naming_the_extra(monkeypatch):
    # Given Huey's package cannot be found
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "huey" else real(name, *a))
    # When the peers to run are chosen
    names, notes = peers.usable(["celery", "huey"])
    # Then Huey is left out, and a line says so and how to install it
    assert names == ["celery"]
    assert "bench: skipping huey: not installed (pip install 'taskq[bench]')" in notes


@pytest.mark.parametrize("brokers,size,runs,problem", [
    ("embedded,kafka", "tiny", 1, "unknown broker 'kafka'"),
    ("redis", "huge", 1, "unknown size 'huge'"),
    ("redis", "tiny", 0, "--runs must be at least 1"),
])
def test_bad_benchmark_options_are_refused(brokers, size, runs, problem):
    with pytest.raises(UsageError, match=problem):
        run.checked(brokers, size, runs)


class _CrashingPeer(Side):
    """A peer whose worker exits at once, saying why, and whose tasks never finish."""

    name = "peer"

    def start_worker(self) -> float:
        return self.launch([sys.executable, "-c", "import sys; print('no module named app');"
                            " sys.exit(3)"], "peer-worker.log")

    def finish_times(self, handles: list) -> None:
        return None


def test_a_drain_stops_waiting_when_the_worker_has_exited_and_shows_its_log(tmp_path):
    side = _CrashingPeer({"PATH": os.environ["PATH"]}, tmp_path)
    # When the drain starts the worker and waits for its tasks (for up to 15 minutes)
    started = time.monotonic()
    with pytest.raises(TaskqError, match="the peer worker exited 3:\nno module named app"):
        scenarios.drain(side, ["a task"])
    # Then it gives up as soon as the worker is gone, with the end of the worker's log
    assert time.monotonic() - started < 60
