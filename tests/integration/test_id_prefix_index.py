"""An id prefix is resolved from the ids kept in lexical order, not by scanning every id: its
cost does not grow with the number of records (bench/results/million-2-cores.md)."""

from __future__ import annotations

import time

import pytest

from taskq.errors import AmbiguousId
from taskq.request import SubmitRequest
from taskq.store import retention
from taskq.submit import prepare

pytestmark = pytest.mark.integration

IDS = ("abcdef01-0000-4000-8000-000000000001", "abcdef02-0000-4000-8000-000000000002",
       "01234567-89ab-4def-8000-000000000003")


def create(runtime, ids):
    """Records of queued tasks with the given ids, written as one bulk submit writes them."""
    made = []
    for task_id in ids:
        record = prepare(runtime.settings, SubmitRequest(type="data", params={"data": [1]}))
        record.id = task_id
        made.append(record)
    runtime.store.create_many(made)
    return made


def calls(client, command):
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_a_prefix_is_resolved_from_the_id_index_without_scanning(deployment):
    # Given three tasks, two of whose ids begin alike
    store = deployment.runtime.store
    create(deployment.runtime, IDS)
    scans = calls(store.client, "zscan")
    # When their prefixes are resolved
    unique = store.resolve_id("ABCDEF02")
    with pytest.raises(AmbiguousId) as ambiguous:
        store.resolve_id("abcdef")
    # Then each names its task, or both it begins, and nothing scanned the ids
    assert unique == IDS[1]
    assert ambiguous.value.candidates == [IDS[0], IDS[1]]
    assert store.resolve_id("0123456") == IDS[2]
    assert store.resolve_id("fedcba") == "fedcba"  # begins nothing: taken as given
    assert calls(store.client, "zscan") == scans


def test_ids_written_before_the_id_index_are_still_found_by_a_scan(deployment):
    # Given tasks whose ids are not in the id index (records written by an older taskq)
    store = deployment.runtime.store
    create(deployment.runtime, IDS)
    store.client.delete(store.ids_key)
    # When a prefix is resolved
    found = store.resolve_id("abcdef01")
    # Then it is found all the same
    assert found == IDS[0]


def test_the_id_index_loses_an_id_with_its_record(deployment):
    # Given three tasks
    runtime = deployment.runtime
    store = runtime.store
    create(runtime, IDS)
    assert store.client.zcard(store.ids_key) == 3
    # When one is deleted, and the record of another expires and the indexes are trimmed
    store.delete(IDS[0])
    store.client.delete(store.key(IDS[1]))
    later = time.time() + runtime.settings.record_ttl + 1
    retention.trim(store, runtime.settings, now=later)
    # Then only the third is left in the id index
    assert [m.decode() for m in store.client.zrange(store.ids_key, 0, -1)] == [IDS[2]]
