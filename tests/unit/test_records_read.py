"""Reading a stored record never fails on an odd field: what can be shown is shown."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from taskq.records import READ_DEPTH, TaskRecord
from taskq.store import record_from_fields
from taskq.task import record_json
from taskq.term import render, tables

GOOD = {"id": "t1", "type": "data_processing", "priority": "high",
        "queue": "taskq.data_processing.high", "state": "SUCCESS", "attempts": "1",
        "params": '{"data": "x"}', "result": '{"words": 1}', "submitted_at": "1700000000.5",
        "finished_at": "1700000001.5"}


def read(**odd: str) -> TaskRecord:
    return TaskRecord.from_hash({**GOOD, **odd})


def shown(record: TaskRecord) -> str:
    """The record as `status`, `status --json` and `list` show it."""
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(render.record_panel(record))
    console.print(tables.tasks_table([record]))
    json.dumps(record_json(record))
    return console.export_text()


def test_a_result_nested_3000_levels_is_shown_as_its_text():
    deep = "[" * 3000 + "]" * 3000
    record = read(result=deep)
    assert record.result == deep
    assert record.state == "SUCCESS" and record.params == {"data": "x"}
    shown(record)


def test_a_result_deeper_than_the_reading_limit_is_shown_as_its_text_too():
    # json.loads takes 500 levels, but rendering them (indented JSON, the API) would not
    deep = json.dumps(json.loads("[" * 500 + "]" * 500))
    assert read(result=deep).result == deep
    within = json.dumps(json.loads("[" * READ_DEPTH + "]" * READ_DEPTH))
    assert read(result=within).result == json.loads(within)


@pytest.mark.parametrize("field", ["params", "result", "attempt_errors", "progress"])
def test_a_json_field_that_is_not_json_leaves_the_rest_readable(field):
    record = read(**{field: "{not json", "state": "STARTED"})
    assert record.state == "STARTED" and record.type == "data_processing"
    assert getattr(record, field) == {"params": {}, "result": "{not json",
                                      "attempt_errors": [], "progress": None}[field]
    shown(record)


@pytest.mark.parametrize("value", ["soon", "nan", "inf", "-1", "1e400", "9" * 5000])
@pytest.mark.parametrize("field", ["submitted_at", "started_at", "finished_at", "eta",
                                   "next_attempt_at"])
def test_a_time_that_cannot_be_shown_as_a_date_reads_as_unknown(field, value):
    record = read(**{field: value})
    assert getattr(record, field) is None
    shown(record)


@pytest.mark.parametrize("value", ["x", "1.5", "-3", "9" * 5000])
def test_attempts_that_are_not_a_count_read_as_zero(value):
    assert read(attempts=value).attempts == 0


def test_attempt_errors_and_progress_of_the_wrong_shape_are_dropped():
    record = read(state="RETRY", attempt_errors='[1, {"error": "e", "at": "never"}]',
                  progress='{"done": "a", "total": 2}')
    assert record.attempt_errors == [{"error": "e", "at": None}]
    assert record.progress is None
    shown(record)


def test_bytes_that_are_not_utf8_are_shown_with_replacement_characters():
    raw = {k.encode(): v.encode() for k, v in GOOD.items()}
    raw[b"error"] = b"bad \xff\xfe bytes"
    raw[b"result"] = b'"caf\xe9"'
    record = record_from_fields("t1", raw)
    assert record.error == "bad \ufffd\ufffd bytes"
    assert record.result == "caf\ufffd"
    shown(record)


def test_markup_in_stored_text_is_shown_as_it_is():
    record = read(state="FAILURE", error="KeyError '[/]' in [bold]x", worker="[/w]@host",
                  type="t[/]")
    text = shown(record)
    assert "KeyError '[/]' in [bold]x" in text
    assert "t[/]" in text


def test_a_record_missing_its_identity_fields_still_reads():
    record = TaskRecord.from_hash({"state": "QUEUED", "unknown_field": "x"})
    assert (record.id, record.type, record.state) == ("", "", "QUEUED")
    shown(record)
