"""The AMQP frames taskq builds to send many at once (taskq/amqp_frames.py) are byte for byte
those py-amqp's own frame writer sends one at a time."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from amqp import Message, method_framing, spec
from amqp.serialization import dumps

from taskq.amqp_frames import PropertyEncoder, get_frames, method_frames, publish_frames


def py_amqp_writes(channel_id: int, frame_max: int,
                   calls: list[tuple[tuple[int, int], str, tuple[Any, ...], Any]]) -> bytes:
    """What py-amqp's frame writer sends for these (method, argsig, args, content) calls."""
    written: list[bytes] = []
    connection = SimpleNamespace(frame_max=frame_max, bytes_sent=0)
    write_frame = method_framing.frame_writer(
        connection, SimpleNamespace(write=lambda data: written.append(bytes(data))))
    for method, argsig, args, content in calls:
        write_frame(1, channel_id, method, dumps(argsig, args), content)
    return b"".join(written)


def test_basic_get_frames_match_py_amqp():
    names = ["taskq.email.high", "taskq.email.normal"]
    assert get_frames(7, names) == py_amqp_writes(
        7, 131072, [(spec.Basic.Get, "Bsb", (0, name, False), None) for name in names])


def test_consume_cancel_and_ack_frames_match_py_amqp():
    cases = [(spec.Basic.Consume, "BssbbbbF", (0, "q", "tag-1", False, False, False, True, {})),
             (spec.Basic.Cancel, "sb", ("tag-1", True)),
             (spec.Basic.Ack, "Lb", (12345678901, False))]
    for method, argsig, args in cases:
        assert method_frames(2, method, argsig, [args]) == py_amqp_writes(
            2, 131072, [(method, argsig, args, None)])


def test_a_published_message_matches_py_amqp_also_when_its_body_spans_frames():
    for frame_max in (131072, 64):  # 64: the body is cut into several body frames
        message = Message(b'[[], {"n": 1}, {}]' * 5, content_type="application/json",
                          content_encoding="utf-8", priority=0, delivery_mode=2,
                          correlation_id="abc", application_headers={"id": "abc", "retries": 0})
        ours = publish_frames(5, frame_max, "taskq", "taskq.noop.normal", message)
        theirs = py_amqp_writes(5, frame_max, [(spec.Basic.Publish, "Bssbb",
                                                (0, "taskq", "taskq.noop.normal", False, False),
                                                message)])
        assert ours == theirs


def test_an_empty_body_sends_no_body_frame():
    message = Message(b"", priority=0)
    frames = publish_frames(1, 131072, "wake", "", message)
    assert frames == py_amqp_writes(1, 131072, [(spec.Basic.Publish, "Bssbb",
                                                 (0, "wake", "", False, False), message)])


def celery_like(task_id: str, kwargsrepr: str) -> Message:
    headers = {"lang": "py", "task": "taskq.email_sending", "id": task_id, "shadow": None,
               "eta": None, "expires": None, "group": None, "group_index": None, "retries": 0,
               "timelimit": [None, None], "root_id": task_id, "parent_id": None,
               "argsrepr": "()", "kwargsrepr": kwargsrepr, "origin": "gen1@host",
               "ignore_result": True, "replaced_task_nesting": 0, "stamped_headers": None,
               "stamps": {}}
    return Message(b"{}", priority=0, content_type="application/json",
                   content_encoding="utf-8", application_headers=headers,
                   correlation_id=task_id, delivery_mode=2)


def test_the_property_encoder_writes_what_py_amqp_writes_for_other_ids_and_kwargs():
    encoder = PropertyEncoder(celery_like("a", "{}"), ["id", "root_id", "kwargsrepr"],
                              ["correlation_id"])
    for task_id, kwargsrepr in [("0f2c" * 9, "{'to': 'ops@example.com'}"),
                                ("x", "{'text': 'naïve café ✓'}"), ("id", "")]:
        message = celery_like(task_id, kwargsrepr)
        assert encoder.encode(message.properties["application_headers"],
                              {"correlation_id": task_id}) == message._serialize_properties()
