"""data_processing work: each operation's figures, auto choice, refusals and progress."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from taskq.config import SmtpSettings
from taskq.errors import PermanentError
from taskq.work import WorkContext
from taskq.work.data import process


def context(progress: list[tuple[int, int]] | None = None) -> WorkContext:
    seen = progress if progress is not None else []
    return WorkContext(smtp=SmtpSettings(url=None, sender="taskq@localhost", timeout=1),
                       outbox=Path("outbox"), files_root=Path("files"), output_dir="out",
                       progress=lambda done, total: seen.append((done, total)))


def test_stats_gives_every_figure() -> None:
    assert process(context(), data=[2, 4, 4, 4, 5, 5, 7, 9], operation="stats") == {
        "operation": "stats", "count": 8, "sum": 40, "mean": 5.0, "min": 2, "max": 9,
        "stdev": pytest.approx(2.138089935), "median": 4.5,
    }


def test_stats_of_one_number_has_no_stdev() -> None:
    result = process(context(), data=[3.5])
    assert result["stdev"] is None
    assert result["mean"] == result["median"] == result["sum"] == 3.5


def test_word_count_counts_words_lines_and_top_words() -> None:
    result = process(context(), data="The cat\nthe hat, the END", operation="word_count")
    assert result == {
        "operation": "word_count", "words": 6, "unique_words": 4, "lines": 2,
        "characters": 24,
        "top_words": [{"word": "the", "count": 3}, {"word": "cat", "count": 1},
                      {"word": "hat", "count": 1}, {"word": "end", "count": 1}],
    }


def test_a_string_defaults_to_word_count() -> None:
    assert process(context(), data="test data")["words"] == 2


def test_sort_orders_numbers_ascending() -> None:
    assert process(context(), data=[3, -1, 2.5], operation="sort") == {
        "operation": "sort", "count": 3, "result": [-1, 2.5, 3]}


def test_uppercase_upper_cases_the_text() -> None:
    assert process(context(), data="ärger", operation="uppercase")["result"] == "ÄRGER"


def test_summary_lists_fields_and_figures_of_numeric_fields_only() -> None:
    # Given records where `age` is numeric (one null) and `name` is not
    records = [{"name": "a", "age": 30}, {"name": "b", "age": None}, {"name": "c", "age": 40},
               {"city": "x"}]
    # When they are summarised
    result = process(context(), data=records)
    # Then every field is listed and only `age` has figures, from its two values
    assert result["operation"] == "summary"
    assert result["count"] == 4
    assert result["fields"] == ["age", "city", "name"]
    assert list(result["numeric"]) == ["age"]
    assert result["numeric"]["age"]["count"] == 2
    assert result["numeric"]["age"]["mean"] == 35.0


def test_an_operation_that_does_not_fit_the_data_is_permanent() -> None:
    with pytest.raises(PermanentError, match="'stats' needs a list of numbers, but data is a"):
        process(context(), data="text", operation="stats")


@pytest.mark.parametrize("data", [[], {"a": 1}, 3, ["a"]])
def test_data_of_no_known_shape_is_permanent(data: Any) -> None:
    with pytest.raises(PermanentError, match="data must be a string"):
        process(context(), data=data)


def test_a_non_finite_number_is_permanent() -> None:
    with pytest.raises(PermanentError, match=r"data\[1\] is not a finite number: nan"):
        process(context(), data=[1, float("nan")])


def test_an_unknown_operation_is_permanent() -> None:
    with pytest.raises(PermanentError, match="unknown operation 'median'"):
        process(context(), data=[1], operation="median")


def test_large_lists_report_progress_about_every_tenth() -> None:
    # Given a list of 100,001 numbers
    seen: list[tuple[int, int]] = []
    # When its stats are computed
    process(context(seen), data=list(range(100_001)))
    # Then progress came ten-ish times, rising to the total
    assert 9 <= len(seen) <= 11
    assert seen[-1] == (100_001, 100_001)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_small_lists_report_no_progress() -> None:
    seen: list[tuple[int, int]] = []
    process(context(seen), data=list(range(100)))
    assert seen == []


@pytest.mark.parametrize("data", ["a b", [1, 2], [{"a": 1}]])
def test_every_result_is_plain_json(data: Any) -> None:
    result = process(context(), data=data)
    assert json.loads(json.dumps(result, allow_nan=False)) == result
