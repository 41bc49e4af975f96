"""The AMQP frames taskq builds to send many at once (taskq/broker/amqp_frames.py) are byte for byte
those py-amqp's own frame writer sends one at a time."""

from __future__ import annotations

import inspect
import struct
from contextlib import nullcontext
from types import SimpleNamespace
from typing import Any

from amqp import Channel, Message, method_framing, spec
from amqp.serialization import dumps

from taskq.broker.amqp_frames import (
    Confirms,
    PropertyEncoder,
    confirms,
    get_frames,
    method_frames,
    publish_frames,
)


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


class _Wire:
    """A py-amqp connection's place for a real py-amqp Channel, without a network: it keeps
    what the channel writes and hands it what the broker would send, through py-amqp's own
    dispatch (the internals taskq.broker.amqp_frames.Confirms relies on)."""

    # What the broker answers to a method that waits for an answer.
    ANSWERS = {spec.Confirm.Select: spec.Confirm.SelectOk, spec.Channel.Open: spec.Channel.OpenOk}

    def __init__(self) -> None:
        self.channels: dict[int, Any] = {}
        self.confirm_publish = False
        self.client_properties: dict[str, Any] = {}
        self.transport = SimpleNamespace(having_timeout=lambda timeout: nullcontext())
        self.written: list[tuple[int, int]] = []
        self.inbox: list[tuple[tuple[int, int], bytes]] = []
        self.read_past_the_end = False  # a wait went on after all the broker sent

    def _get_free_channel_id(self) -> int:
        return 1

    def frame_writer(self, frame_type: int, channel_id: int, method: tuple[int, int],
                     args: bytes, content: Any) -> None:
        self.written.append(method)
        if method in self.ANSWERS:
            self.inbox.append((self.ANSWERS[method], b""))

    def drain_events(self, timeout: float | None = None) -> None:
        if not self.inbox:
            self.read_past_the_end = True
            raise TimeoutError("nothing to read")  # as py-amqp's socket read times out
        method, args = self.inbox.pop(0)
        payload = struct.pack(">HH", *method) + args  # a method frame's payload
        self.channels[1].dispatch_method(method, payload, None)

    def ack(self, tag: int, multiple: bool = False, ok: bool = True) -> None:
        method = spec.Basic.Ack if ok else spec.Basic.Nack
        argsig = "Lb" if ok else "Lbb"
        self.inbox.append((method, dumps(argsig, (tag, multiple) if ok else (tag, multiple, True))))


def _confirming() -> tuple[_Wire, Confirms]:
    wire = _Wire()
    channel = Channel(wire)
    return wire, confirms(channel)


def test_a_channel_is_put_in_confirm_mode_once_as_py_amqps_own_confirm_path_would_see_it():
    wire, tracker = _confirming()
    assert confirms(tracker.channel) is tracker
    assert wire.written == [spec.Confirm.Select]
    assert tracker.channel._confirm_selected is True


def test_acks_and_nacks_dispatched_by_py_amqp_settle_the_awaited_tags():
    # Given five messages written by hand on a channel in confirm mode
    wire, tracker = _confirming()
    tracker.begin()
    assert [tracker.take() for _ in range(5)] == [1, 2, 3, 4, 5]
    # When the broker acks up to 2 at once, nacks 3 and acks 5
    wire.ack(2, multiple=True)
    wire.ack(3, ok=False)
    wire.ack(5)
    tracker.wait(1.0)
    # Then those are settled, and 4 is left unconfirmed when nothing more comes
    assert tracker.settled == {1: True, 2: True, 3: False, 5: True}


def test_a_wait_up_to_a_tag_ends_once_the_tags_up_to_it_are_settled():
    wire, tracker = _confirming()
    tracker.begin()
    for _ in range(3):
        tracker.take()
    wire.ack(2, multiple=True)
    tracker.wait(10.0, upto=2)
    assert tracker.settled == {1: True, 2: True} and not wire.read_past_the_end


def test_acks_of_tags_no_longer_awaited_are_ignored():
    wire, tracker = _confirming()
    tracker.begin()
    tracker.take()
    tracker.begin()  # a new batch: tag 1 is no longer awaited
    assert tracker.take() == 2
    wire.ack(1)
    wire.ack(2, multiple=True)
    tracker.wait(1.0)
    assert tracker.settled == {2: True}


def test_a_publish_through_py_amqps_basic_publish_is_counted_as_the_broker_counts_it():
    # Given a channel in confirm mode with one message written by hand
    wire, tracker = _confirming()
    tracker.begin()
    tracker.take()
    # When kombu publishes on it (as Celery's send_task does, through channel.basic_publish)
    tracker.channel.basic_publish(Message(b"{}"), exchange="", routing_key="q")
    # Then the publish went out and took the next tag, which is awaited too
    assert wire.written[-1] == spec.Basic.Publish
    assert tracker.last == 2 and tracker.take() == 3
    wire.ack(3, multiple=True)
    tracker.wait(1.0)
    assert tracker.settled == {1: True, 2: True, 3: True}


def test_a_channel_py_amqp_revived_is_put_in_confirm_mode_again_and_counts_from_one():
    wire, tracker = _confirming()
    tracker.begin()
    tracker.take()
    tracker.channel._do_revive()
    tracker.begin()
    assert wire.written[-2:] == [spec.Channel.Open, spec.Confirm.Select]
    assert tracker.take() == 1


def test_kombu_publishes_through_the_channels_basic_publish_attribute():
    # Confirms counts Celery's and kombu's publishes by wrapping channel.basic_publish.
    import kombu.messaging

    assert "channel.basic_publish(" in inspect.getsource(kombu.messaging.Producer._publish)
