"""The quick looks of the bulk submit path take only what the full checks and encoders would
take, and give exactly what they would give."""

from __future__ import annotations

import json
import math
import os
import random

import pytest

from taskq import json_fast, params, random_hex
from taskq.broker.messages import RedisEncoder, Template, body_for
from taskq.config import load
from taskq.errors import InvalidParameters
from taskq.request import from_api_body

# Characters that matter to an address or a path parser, and some that do not.
ADDRESS_CHARS = "aZ9_+-.@ \t\"<>(),;:[]\\%!é\n"
PATH_CHARS = "aZ9_-./\\:~ \x00é"


def _fuzz(chars: str, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(chars) for _ in range(rng.randint(1, 10)))
            for _ in range(count)]


def test_an_address_taken_without_parsing_is_one_getaddresses_reads_back_as_itself():
    # Given many strings of the characters an address parser cares about
    for text in _fuzz(ADDRESS_CHARS, 20_000, seed=7) + _fuzz("ab.+-_@", 20_000, seed=8):
        quick: list[str] = []
        full: list[str] = []
        # Then the check with its quick look says what the full parse says, word for word
        assert (params._address(text, "to", quick), quick) == \
            (params._parsed_address(text, "to", full), full), text


def test_a_path_taken_without_parsing_leaves_the_root_exactly_when_pathlib_says_so():
    # Given many strings of the characters a path parser cares about
    for text in _fuzz(PATH_CHARS, 20_000, seed=9) + _fuzz("a./", 10_000, seed=10):
        # Then the quick look and both pathlib flavours agree
        assert params._leaves_root(text) == params._parsed_leaves_root(text), text


@pytest.mark.parametrize(("data", "problem"), [
    ([1, 2.5, 3], None),
    ([1e308, 1e308], None),  # the sum overflows: each item is still finite
    ([1, math.nan], "parameters.data[1]: must be a finite number, got nan"),
    ([1, -math.inf], "parameters.data[1]: must be a finite number, got -inf"),
    ([1, True], "parameters.data[1]: must be a finite number like the first item, got True"),
    ([1, "2"], "parameters.data[1]: must be a finite number like the first item, got '2'"),
])
def test_a_list_of_numbers_is_refused_for_the_items_it_was_refused_for_before(data, problem):
    # Given the data_processing type
    task_type = load(env={}).resolve_type("data")
    # When a list of numbers is checked, Then what is refused is named as the full check does
    if problem is None:
        assert params.validate(task_type, {"data": data})["data"] == data
    else:
        with pytest.raises(InvalidParameters) as caught:
            params.validate(task_type, {"data": data})
        assert caught.value.problems == [problem]


@pytest.mark.parametrize("data", [[1, math.nan], [math.inf, 1], [1e308, 1e308, None]])
def test_the_data_check_itself_names_an_item_that_is_not_a_finite_number(data):
    # (payload's check refuses these first in a submit; the data check stands on its own)
    problems: list[str] = []
    params._data(data, "data", problems)
    assert len(problems) == 1 and "must be a finite number like the first item" in problems[0]


@pytest.mark.parametrize(("body", "delay"), [
    ({"task_type": "data", "delay": None}, 0.0),
    ({"task_type": "data", "delay": 3}, 3.0),
    ({"task_type": "data", "delay": 0.5, "parameters": {"data": [1]}}, 0.5),
])
def test_a_plain_body_keeps_its_delay(body, delay):
    assert from_api_body(body).delay == delay


@pytest.mark.parametrize(("body", "problem"), [
    ({"task_type": "data", "extra": 1}, "body.extra: unknown field"),
    ({"task_type": "data", "priority": 1}, "body.priority: must be a string"),
    ({"task_type": "data", "key": 1}, "body.key: must be a string"),
    ({"task_type": "data", "parameters": [1]}, "body.parameters: must be a JSON object"),
    ({"task_type": ""}, "body.task_type: required, a task type name"),
])
def test_a_body_with_a_problem_is_still_refused_with_its_words(body, problem):
    with pytest.raises(InvalidParameters) as caught:
        from_api_body(body)
    assert caught.value.problems == [problem]


@pytest.mark.parametrize("value", [
    {}, [], {"data": [1, 2.5, -0.0, 1e300, None, True]}, {"s": "héllo \"q\" \\ 😀 \x00"},
    {"n": {"e": [{"d": [[]]}]}}, {"big": 2**63 - 1},
])
def test_json_fast_writes_what_json_dumps_writes(value):
    assert json_fast.spaced(value) == json.dumps(value)
    assert json_fast.compact(value) == json.dumps(value, separators=(",", ":"), default=str)


def test_a_message_body_is_the_json_of_args_kwargs_and_embed():
    template = _template()
    kwargs = {"data": "{0} }{ é", "n": [1, 2.5]}
    assert body_for(template, kwargs) == json.dumps([[], kwargs, template.embed]).encode()


def test_a_redis_encoder_leaves_braces_in_the_values_alone():
    # Given parameters holding what str.format would read as fields
    encoder = RedisEncoder(_template())
    # Then the encoder still writes what redis_payload writes
    assert encoder.reproduces("an-id", {"subject": "{0} {body} }{ {{x}}"})


def test_a_forked_process_never_gives_the_hex_digits_its_parent_gives():
    # Given a process that has drawn a block of random digits
    random_hex.hex32()
    read, write = os.pipe()
    # When it forks, and the child and the parent each draw the next digits
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, random_hex.hex32().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    # Then they differ, and both are 32 hex digits
    mine = random_hex.hex32()
    assert child != mine
    assert len(child) == len(mine) == 32 and int(child, 16) >= 0


def _template() -> Template:
    return Template(exchange="", routing_key="q.normal", priority=0,
                    headers={"lang": "py", "task": "t", "id": None, "root_id": None},
                    properties={"delivery_mode": 2}, embed={"callbacks": None, "chord": {}},
                    serializer="json", declare=(), kwargsrepr_maxsize=1024)
