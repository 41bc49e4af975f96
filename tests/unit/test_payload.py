"""What no task's parameters may hold, whatever its type: the limits checked at submit."""

from __future__ import annotations

from typing import Any

import pytest

from taskq import params, payload
from taskq.config import ParamSpec, RetryPolicy, TaskType
from taskq.errors import InvalidParameters

ANYTHING = TaskType(name="custom", alias=None, function="jobs:run", retry=RetryPolicy(),
                    time_limit=None, soft_time_limit=None, rate_limit=None,
                    parameters={"v": ParamSpec(kind="object"), "l": ParamSpec(kind="list")})
DATA = TaskType(name="data_processing", alias=None, function="taskq.work.data:process",
                retry=RetryPolicy(), time_limit=None, soft_time_limit=None, rate_limit=None)


def nested(levels: int) -> Any:
    """`levels` lists inside one another."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def problems_of(kind: TaskType, given: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidParameters) as caught:
        params.validate(kind, given)
    return caught.value.problems


def test_parameters_may_be_nested_32_levels_deep_counting_the_parameters_object():
    assert params.validate(ANYTHING, {"l": nested(31)}) == {"l": nested(31)}


@pytest.mark.parametrize("levels", [32, 33, 500, 970])
def test_deeper_parameters_are_refused_with_the_limit_named(levels):
    problems = problems_of(ANYTHING, {"l": nested(levels)})
    assert len(problems) == 1
    assert problems[0].endswith("nested deeper than 32 levels of lists and objects")


@pytest.mark.parametrize("number", [2**63 - 1, -(2**63), 1.5e308, 0, -1])
def test_64_bit_integers_and_finite_floats_are_accepted(number):
    assert params.validate(DATA, {"data": [number]})["data"] == [number]


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, int("9" * 400)])
def test_integers_beyond_64_bits_are_refused(number):
    assert problems_of(DATA, {"data": [1, number]}) == [
        "parameters.data[1]: integer out of range (a signed 64-bit integer: "
        "-9223372036854775808 to 9223372036854775807)"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_anywhere(value):
    # Given one deep inside an object, where no schema looks
    problems = problems_of(ANYTHING, {"v": {"a": [{"b": value}]}})
    assert problems == [f"parameters.v.a[0].b: must be a finite number, got {value!r}"]


@pytest.mark.parametrize("text", ["\ud800 x", "x\udfff", "\udcff\udcfe"],
                         ids=["escape", "low", "surrogateescape"])
def test_text_that_is_not_valid_unicode_is_refused(text):
    assert problems_of(DATA, {"data": text}) == [
        "parameters.data: not valid Unicode text (a lone surrogate: a \\ud800-style escape, "
        "or bytes that are not UTF-8)"]


def test_a_key_that_is_not_valid_unicode_or_not_a_string_is_refused():
    problems = problems_of(ANYTHING, {"v": {"\ud800": 1, 3: 2}})
    assert problems == ["parameters.v['\\ud800']: keys must be valid Unicode strings",
                        "parameters.v[3]: keys must be valid Unicode strings"]


def test_values_that_are_not_json_data_are_refused():
    assert problems_of(ANYTHING, {"v": {"when": b"bytes", "pair": (1, 2)}}) == [
        "parameters.v.when: bytes is not JSON data", "parameters.v.pair: tuple is not JSON data"]


def test_a_million_bad_items_make_a_short_error():
    problems = problems_of(DATA, {"data": [float("nan")] * 1_000_000})
    assert len(problems) == payload.MAX_PROBLEMS + 1
    assert problems[-1] == "parameters: more values do not fit (the first 5 are listed)"


def test_plain_json_of_every_kind_passes_untouched():
    value = {"s": "naïve ✓", "i": 3, "f": 2.5, "b": True, "n": None, "l": [1, "a", [None]],
             "o": {"k": {"k": []}}}
    assert payload.problems(value) == []
