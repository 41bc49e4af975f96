"""What a submit's dependencies may be, checked before any server is touched."""

from __future__ import annotations

import pytest

from taskq.errors import InvalidParameters, UsageError
from taskq.request import SubmitRequest, from_api_body, parse_after
from taskq.store import dependencies


def _problems(**fields: object) -> list[str]:
    return dependencies.problems(SubmitRequest(type="data", **fields))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "a\x00b", "x\ny", "é" * 201, "\udcff", 7, None, 1.5])
def test_a_dependency_that_cannot_be_a_task_id_is_named_by_its_place(bad):
    assert _problems(after=("abc123", bad)) == [
        "after[1]: must be a task id (text of 1 to 200 printable characters)"]


def test_more_than_a_hundred_dependencies_are_refused():
    assert _problems(after=tuple(f"{n:036d}" for n in range(101))) == [
        "after: at most 100 tasks to wait for"]


def test_after_any_needs_after_and_after_takes_no_delay():
    assert _problems(after_any=True) == ["after_any: needs after (the tasks to wait for)"]
    assert _problems(after=("abc123",), delay=5.0)[0].startswith("delay: cannot be combined")


def test_the_command_line_splits_ids_on_commas_and_refuses_none():
    assert parse_after(" a1b2c3 , d4e5f6,") == ("a1b2c3", "d4e5f6")
    assert parse_after(None) == ()
    with pytest.raises(UsageError, match="--after: name at least one task id"):
        parse_after(" , ,")


@pytest.mark.parametrize(("body", "problem"), [
    ({"after": "abc123"}, "body.after: must be a list of task ids"),
    ({"after": {"id": 1}}, "body.after: must be a list of task ids"),
    ({"after": ["abc123"], "after_any": "yes"}, "body.after_any: must be true or false"),
])
def test_an_api_body_takes_a_list_of_ids_and_a_boolean(body, problem):
    with pytest.raises(InvalidParameters) as caught:
        from_api_body({"task_type": "data", **body})
    assert caught.value.problems == [problem]


def test_an_api_body_without_dependencies_waits_for_nothing():
    request = from_api_body({"task_type": "data", "after": None})
    assert (request.after, request.after_any) == ((), False)
    request = from_api_body({"task_type": "data", "after": ["abc123"], "after_any": True})
    assert (request.after, request.after_any) == (("abc123",), True)
