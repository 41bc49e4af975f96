"""Reading a submit request from the command line or a JSON body: every mistake is one line."""

from __future__ import annotations

import pytest

from taskq import request
from taskq.errors import InvalidParameters, UsageError

DEEP = '{"data": ' + "[" * 10_000 + "]" * 10_000 + "}"


def usage_error(call, *args):
    with pytest.raises(UsageError) as caught:
        call(*args)
    assert "\n" not in caught.value.message
    return caught.value.message


def test_json_nested_10000_levels_is_a_one_line_usage_error_not_a_recursion_error():
    assert usage_error(request.from_cli, "data", None, [], DEEP, 0.0) == (
        "--params: nested too deeply to read (parameters may have at most 32 levels)")


@pytest.mark.parametrize("value", ["[" * 10_000 + "]" * 10_000, "[" * 10_000],
                         ids=["closed", "unclosed"])
def test_a_param_value_nested_10000_levels_is_refused_not_kept_as_text(value):
    assert usage_error(request.from_cli, "data", None, ["data=" + value], None, 0.0
                       ).startswith("--param data: nested too deeply")


def test_an_integer_too_long_to_read_is_a_one_line_usage_error():
    huge = "9" * 5000  # beyond Python's 4,300-digit limit for reading an integer
    assert usage_error(request.from_cli, "data", None, [], f'{{"data": [{huge}]}}', 0.0
                       ) == "--params: cannot be read as JSON: Exceeds the limit (4300 digits) " \
                            "for integer string conversion"
    assert usage_error(request.parse_json, f"[{huge}]", "body").startswith("body: cannot be")


def test_a_body_that_is_not_utf8_is_a_one_line_usage_error():
    assert usage_error(request.parse_json, b'{"a": "\xff"}', "body") == (
        "body: not UTF-8 text: invalid start byte")


def test_a_syntax_error_names_its_line_only_when_there_is_more_than_one():
    assert usage_error(request.parse_json, "{nope", "--params") == (
        "--params: not valid JSON: Expecting property name enclosed in double quotes at "
        "column 2")
    assert usage_error(request.parse_json, '{\n"a": }', "body").endswith("at line 2 column 6")


def test_a_param_that_is_not_json_stays_text():
    assert request.from_cli("email", None, ["to=a@b.c", "n=3"], None, 0.0).params == {
        "to": "a@b.c", "n": 3}


@pytest.mark.parametrize("timeout", [float("nan"), -5.0, float("inf"), float("-inf")])
def test_a_wait_timeout_must_be_a_finite_number_of_seconds(timeout):
    assert usage_error(request.wait_timeout, timeout).startswith(
        "--timeout must be a number of seconds ≥ 0, got ")


@pytest.mark.parametrize("timeout", [None, 0.0, 2.5, 1e9])
def test_no_timeout_or_any_finite_one_is_accepted(timeout):
    assert request.wait_timeout(timeout) == timeout


def test_an_api_delay_too_large_for_a_float_is_infinite_and_left_to_the_range_check():
    # (a 400-digit integer used to raise OverflowError: a 500 on the API)
    body = {"task_type": "data", "parameters": {"data": "x"}, "delay": int("9" * 400)}
    assert request.from_api_body(body).delay == float("inf")


@pytest.mark.parametrize("delay", ["soon", True, [1]])
def test_an_api_delay_that_is_not_a_number_is_named(delay):
    with pytest.raises(InvalidParameters) as caught:
        request.from_api_body({"task_type": "data", "delay": delay})
    assert caught.value.problems == ["body.delay: must be a number of seconds"]
