"""The benchmark's arithmetic: medians over runs and the priority count, no server."""

from __future__ import annotations

from taskq.bench.measure import overtakes
from taskq.bench.run import medians


def test_each_figure_is_the_median_of_the_runs_for_each_side():
    runs = [{"taskq": {"drain_per_s": 700.0, "help_s": 0.12},
             "celery": {"drain_per_s": 400.0, "help_s": 0.70}},
            {"taskq": {"drain_per_s": 650.0, "help_s": 0.30},
             "celery": {"drain_per_s": 450.0, "help_s": 0.65}},
            {"taskq": {"drain_per_s": 720.0, "help_s": 0.11},
             "celery": {"drain_per_s": 430.0, "help_s": 0.90}}]
    assert medians(runs) == {"taskq": {"drain_per_s": 700.0, "help_s": 0.12},
                             "celery": {"drain_per_s": 430.0, "help_s": 0.70}}


def test_only_low_starts_inside_a_high_tasks_wait_count_as_overtaking():
    # Given two high tasks, waiting from 10 to 12 and from 20 to 21
    windows = [(10.0, 12.0), (20.0, 21.0)]
    # When low tasks start before, inside and after those waits
    starts = [9.9, 10.5, 11.9, 12.0, 15.0, 20.2, 21.5]
    # Then the ones inside count (a start at the very moment the high one starts does not)
    assert overtakes(starts, windows) == 3
