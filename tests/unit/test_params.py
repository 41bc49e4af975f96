"""Submit-time parameter validation of the built-in and custom task types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from taskq import params
from taskq.config import ParamSpec, RetryPolicy, TaskType
from taskq.errors import InvalidParameters


def task_type(name: str, parameters: Mapping[str, ParamSpec] | None = None) -> TaskType:
    return TaskType(name=name, alias=None, function="tests.jobs:run", retry=RetryPolicy(),
                    time_limit=None, soft_time_limit=None, rate_limit=None,
                    parameters=parameters)


DATA = task_type("data_processing")
EMAIL = task_type("email_sending")
FILE = task_type("file_processing")


def problems_of(kind: TaskType, given: Any) -> list[str]:
    with pytest.raises(InvalidParameters) as caught:
        params.validate(kind, given)
    return caught.value.problems


# data_processing

def test_a_string_alone_is_valid_data_and_gets_word_count() -> None:
    assert params.validate(DATA, {"data": "test data"}) == {"data": "test data",
                                                             "operation": "word_count"}


@pytest.mark.parametrize(("data", "operation"), [
    ([1, 2.5, 3], "stats"),
    ([{"a": 1}, {"b": "x"}], "summary"),
])
def test_auto_operation_is_chosen_by_the_shape_of_the_data(data: Any, operation: str) -> None:
    assert params.validate(DATA, {"data": data})["operation"] == operation


def test_stats_on_a_string_is_refused_at_submit() -> None:
    assert problems_of(DATA, {"data": "text", "operation": "stats"}) == [
        "parameters.operation: 'stats' needs a list of numbers, but data is a string"]


def test_sort_on_numbers_is_accepted() -> None:
    given = {"data": [3, 1, 2], "operation": "sort"}
    assert params.validate(DATA, given) == given


def test_missing_data_is_a_problem() -> None:
    assert problems_of(DATA, {}) == ["parameters.data: is required"]


def test_unknown_operation_suggests_the_nearest() -> None:
    [problem] = problems_of(DATA, {"data": "x", "operation": "word_cont"})
    assert problem.startswith("parameters.operation: must be one of auto, stats")
    assert problem.endswith("(did you mean 'word_count'?)")


def test_every_problem_is_listed_at_once() -> None:
    # Given parameters wrong in three independent ways
    given = {"data": {"a": 1}, "operation": "median", "colour": "red"}
    # When they are validated
    problems = problems_of(DATA, given)
    # Then each is named with its path
    assert [p.split(":")[0] for p in problems] == [
        "parameters.colour", "parameters.data", "parameters.operation"]


def test_items_of_another_kind_than_the_first_are_named_by_index() -> None:
    assert problems_of(DATA, {"data": [1, "two", 3]}) == [
        "parameters.data[1]: must be a finite number like the first item, got 'two'"]


def test_a_flood_of_bad_items_is_summarised() -> None:
    problems = problems_of(DATA, {"data": [1] + ["x"] * 20})
    assert len(problems) == params.MAX_ITEM_PROBLEMS + 1
    assert problems[-1] == "parameters.data: 15 more items are not a finite number"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True])
def test_non_finite_numbers_and_booleans_are_not_numbers(bad: Any) -> None:
    assert problems_of(DATA, {"data": [1, bad]})[0].startswith("parameters.data[1]: must be")


@pytest.mark.parametrize(("data", "message"), [
    ([], "must not be an empty list"),
    (42, "must be a string, a list of numbers or a list of records, got 42"),
    (["a", "b"], "items must be numbers or records, got 'a'"),
])
def test_data_of_no_known_shape_is_refused(data: Any, message: str) -> None:
    assert problems_of(DATA, {"data": data})[0].endswith(message)


def test_oversized_data_is_refused_with_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(params, "MAX_TEXT_CHARS", 5)
    monkeypatch.setattr(params, "MAX_ITEMS", 2)
    assert problems_of(DATA, {"data": "abcdef"}) == [
        "parameters.data: text too long: 6 characters (at most 5)"]
    assert problems_of(DATA, {"data": [1, 2, 3]}) == [
        "parameters.data: too many items: 3 (at most 2)"]


def test_parameters_that_are_not_a_mapping_are_one_problem() -> None:
    assert problems_of(DATA, ["data"]) == [
        "parameters: must be a mapping of names to values, got list"]


# email_sending

def test_one_address_alone_is_valid_and_gets_defaults() -> None:
    assert params.validate(EMAIL, {"to": "a@example.com"}) == {
        "to": ["a@example.com"], "subject": "taskq message", "body": ""}


def test_from_is_passed_on_as_sender() -> None:
    normalized = params.validate(EMAIL, {"to": ["a@example.com"], "cc": "Bob <b@example.com>",
                                         "from": "me@example.com", "subject": "Hi"})
    assert normalized["sender"] == "me@example.com"
    assert normalized["cc"] == ["Bob <b@example.com>"]
    assert "from" not in normalized


def test_a_bad_address_is_named_with_its_index() -> None:
    assert problems_of(EMAIL, {"to": ["a@example.com", "bob@"]}) == [
        "parameters.to[1]: 'bob@' is not an email address"]


def test_two_addresses_in_one_string_are_refused() -> None:
    assert problems_of(EMAIL, {"to": "a@example.com, b@example.com"}) == [
        "parameters.to: 'a@example.com, b@example.com' is not an email address"]


# Every character that is a line break in some standard, and the other control characters
LINE_BREAKS = ["\r", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028",
               "\u2029", "\x00", "\x7f"]
HEADERS = {"subject": "Hi{}Bcc: x@example.com", "to": "a@example.com{}Bcc: x@example.com",
           "cc": "c@example.com{}", "from": "me@example.com{}"}


@pytest.mark.parametrize("header", list(HEADERS))
@pytest.mark.parametrize("line_break", LINE_BREAKS, ids=repr)
def test_line_breaks_in_headers_are_refused(header: str, line_break: str) -> None:
    given = {"to": "a@example.com", header: HEADERS[header].format(line_break)}
    assert problems_of(EMAIL, given) == [
        f"parameters.{header}: must not contain line breaks or other control characters"]


def test_a_tab_and_any_other_text_are_fine_in_a_subject() -> None:
    given = {"to": "a@example.com", "subject": "Ré:\tcafé ✓ — 東京"}
    assert params.validate(EMAIL, given)["subject"] == given["subject"]


def test_the_body_may_hold_line_breaks() -> None:
    assert params.validate(EMAIL, {"to": "a@example.com", "body": "a\r\nb\u2028c"})["body"] == \
        "a\r\nb\u2028c"


def test_recipient_lists_must_hold_one_to_a_hundred_addresses() -> None:
    assert problems_of(EMAIL, {"to": []}) == [
        "parameters.to: must be an email address or a non-empty list of them"]
    assert problems_of(EMAIL, {"to": [f"u{i}@example.com" for i in range(101)]}) == [
        "parameters.to: at most 100 addresses, got 101"]


def test_unknown_email_parameter_suggests_the_nearest() -> None:
    assert problems_of(EMAIL, {"to": "a@example.com", "subjet": "x"}) == [
        "parameters.subjet: unknown parameter (did you mean 'subject'?)"]


# file_processing

def test_a_relative_filename_alone_is_valid_and_gets_stats() -> None:
    assert params.validate(FILE, {"filename": "in/report.csv"}) == {
        "filename": "in/report.csv", "operation": "stats"}


@pytest.mark.parametrize("name", ["/etc/passwd", "../secret", "a/../../b", "C:\\x", "\\\\srv\\x"])
def test_filenames_that_leave_the_root_are_refused(name: str) -> None:
    assert problems_of(FILE, {"filename": name}) == [
        "parameters.filename: must stay inside the files root"]


@pytest.mark.parametrize(("name", "problem"), [
    ("", "must not be empty"),
    ("a\0b", "must not contain NUL bytes"),
    (7, "must be a path relative to the files root, got 7"),
])
def test_empty_nul_and_non_string_filenames_are_refused(name: Any, problem: str) -> None:
    assert problems_of(FILE, {"filename": name}) == [f"parameters.filename: {problem}"]


def test_gzip_is_a_file_operation_and_zip_is_not() -> None:
    assert params.validate(FILE, {"filename": "a", "operation": "gzip"})["operation"] == "gzip"
    assert problems_of(FILE, {"filename": "a", "operation": "zip"}) == [
        "parameters.operation: must be one of stats, gzip, got 'zip' (did you mean 'gzip'?)"]


# custom types

THUMBNAIL = task_type("thumbnail", {
    "path": ParamSpec(kind="string", required=True),
    "width": ParamSpec(kind="integer", default=128),
    "ratio": ParamSpec(kind="number"),
    "sharp": ParamSpec(kind="boolean"),
    "tags": ParamSpec(kind="list"),
    "meta": ParamSpec(kind="object"),
})


def test_custom_defaults_are_filled_and_absent_optionals_left_out() -> None:
    assert params.validate(THUMBNAIL, {"path": "a.png"}) == {"path": "a.png", "width": 128}


def test_custom_parameters_of_every_kind_are_accepted() -> None:
    given = {"path": "a", "width": 3, "ratio": 1.5, "sharp": False, "tags": [], "meta": {}}
    assert params.validate(THUMBNAIL, given) == given


def test_custom_kinds_are_checked_and_booleans_are_not_integers() -> None:
    # Given a value of the wrong kind for every parameter
    given = {"path": 1, "width": True, "ratio": "1", "sharp": 0, "tags": {}, "meta": []}
    # When they are validated
    problems = problems_of(THUMBNAIL, given)
    # Then each one is named
    assert problems == [
        "parameters.path: must be a string, got 1",
        "parameters.width: must be an integer, got True",
        "parameters.ratio: must be a number, got '1'",
        "parameters.sharp: must be a boolean, got 0",
        "parameters.tags: must be a list, got {}",
        "parameters.meta: must be an object, got []",
    ]


def test_custom_required_and_unknown_parameters_are_problems() -> None:
    assert problems_of(THUMBNAIL, {"widht": 3}) == [
        "parameters.widht: unknown parameter (did you mean 'width'?)",
        "parameters.path: is required",
    ]


def test_the_error_lists_problems_in_its_message_and_dict() -> None:
    with pytest.raises(InvalidParameters) as caught:
        params.validate(THUMBNAIL, {})
    assert caught.value.message == "invalid parameters: parameters.path: is required"
    assert caught.value.to_dict()["problems"] == ["parameters.path: is required"]
