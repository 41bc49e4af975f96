"""taskq/broker/poison.py without a server: what a poison message's reason says, and what can
be read of a Redis message that cannot be parsed."""

from __future__ import annotations

import json

from taskq.broker import poison
from taskq.broker.poison import Poison

TASK_ID = "0b5c3a52-4f7e-4d1e-9a55-3b1f4c2d9e10"


def redis_text(**headers: object) -> str:
    return json.dumps({"body": "", "headers": {"id": TASK_ID, **headers},
                       "properties": {"delivery_info": {"routing_key": "tq.data.high"}}})


def test_the_reason_names_the_stage_and_the_error():
    found = Poison(TASK_ID, None, "handed to a process", RecursionError("too deep"))
    assert found.reason == ("poison message: could not be handed to a process: "
                            "RecursionError: too deep")


def test_a_long_error_is_cut_and_an_empty_one_named():
    long = Poison(TASK_ID, None, "decoded", ValueError("x" * 1000)).reason
    assert long.endswith("x" * poison.DETAIL_LIMIT + "…")
    assert Poison(None, None, "decoded", KeyError()).reason.endswith("KeyError: KeyError")


def test_a_readable_message_gives_its_task_id_and_queue():
    assert poison.read_raw(redis_text().encode()) == (TASK_ID, "tq.data.high")


def test_a_lone_surrogate_escape_still_reads():
    text = redis_text(kwargsrepr="\ud800 x")
    assert "\\ud800" in text
    assert poison.read_raw(text.encode()) == (TASK_ID, "tq.data.high")


def test_bytes_that_are_not_utf8_still_give_the_task_id():
    raw = redis_text(kwargsrepr="SPOIL").replace("SPOIL", "caf\xe9").encode("latin-1")
    assert poison.read_raw(raw)[0] == TASK_ID


def test_text_that_is_not_json_gives_the_id_it_holds_or_none():
    assert poison.read_raw(b'{"headers": {"id": "' + TASK_ID.encode() + b'", oops') == (
        TASK_ID, None)
    assert poison.read_raw(b"\xff\xfe garbage") == (None, None)
    assert poison.read_raw(b"[1, 2]") == (None, None)
