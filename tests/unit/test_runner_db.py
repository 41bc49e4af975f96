"""Each pytest-xdist runner of the suite uses a Redis database of its own."""

from __future__ import annotations

import pytest
from integration.runner_db import runner_database


def test_a_run_without_runners_keeps_the_database_it_was_given() -> None:
    assert runner_database("redis://127.0.0.1:6379/13", "") == "redis://127.0.0.1:6379/13"


def test_each_runner_takes_the_next_database_after_the_given_one() -> None:
    url = "redis://:pw@127.0.0.1:6379/13"
    assert [runner_database(url, f"gw{n}") for n in range(3)] == [
        "redis://:pw@127.0.0.1:6379/13", "redis://:pw@127.0.0.1:6379/14",
        "redis://:pw@127.0.0.1:6379/15"]


def test_a_runner_past_the_last_database_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="would need Redis database 16"):
        runner_database("redis://127.0.0.1:6379/13", "gw3")
