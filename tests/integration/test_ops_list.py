"""`taskq list`: filters, newest first, and records that expire, on the embedded broker."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from taskq.request import SubmitRequest
from taskq.store import listing, retention
from taskq.submit import prepare

pytestmark = pytest.mark.integration


def _ids(rows):
    return [row["id"] for row in rows]


def test_list_filters_by_state_type_priority_and_since_newest_first(deployment):
    # Given, with no worker running: queued, delayed and cancelled tasks of two types,
    # and one record submitted two hours ago
    spin_high = deployment.submit("spin", "high", ms=1)
    data_low = deployment.submit("data", "low", data=[1])
    delayed = deployment.submit("data", "normal", delay=600, data=[2])
    cancelled = deployment.submit("spin", "normal", ms=1)
    assert deployment.cli("cancel", cancelled.id).returncode == 0
    old = prepare(deployment.runtime.settings, SubmitRequest("data", "high", {"data": [3]}))
    old.submitted_at = time.time() - 7200
    deployment.runtime.store.create(old)

    # When listing without filters, Then every task shows, newest first
    assert _ids(deployment.cli_json("list")) == [cancelled.id, delayed.id, data_low.id,
                                                 spin_high.id, old.id]
    # And each filter narrows it (aliases and lower-case states are accepted)
    assert _ids(deployment.cli_json("list", "--state", "queued")) == [data_low.id,
                                                                      spin_high.id, old.id]
    assert _ids(deployment.cli_json("list", "--state", "SCHEDULED")) == [delayed.id]
    assert _ids(deployment.cli_json("list", "--state", "REVOKED")) == [cancelled.id]
    assert _ids(deployment.cli_json("list", "--type", "spin")) == [cancelled.id, spin_high.id]
    assert _ids(deployment.cli_json("list", "--priority", "high")) == [spin_high.id, old.id]
    assert _ids(deployment.cli_json("list", "--type", "data", "--priority", "low,high",
                                    "--state", "QUEUED")) == [data_low.id, old.id]
    assert _ids(deployment.cli_json("list", "--since", "1h", "--type", "data")) == [
        delayed.id, data_low.id]
    assert _ids(deployment.cli_json("list", "--limit", "2")) == [cancelled.id, delayed.id]


def test_list_rejects_an_unknown_state_or_duration_with_exit_2(deployment):
    bad_state = deployment.cli("list", "--state", "DONE")
    assert bad_state.returncode == 2
    assert "unknown state 'DONE'" in bad_state.stderr
    bad_since = deployment.cli("list", "--since", "yesterday")
    assert bad_since.returncode == 2
    assert "invalid duration" in bad_since.stderr


def test_expired_records_leave_the_list_and_retention_trims_the_indexes(deployment):
    # Given two tasks, one of whose records has expired (its hash is gone)
    kept = deployment.submit("data", data=[1])
    gone = deployment.submit("data", data=[2])
    store = deployment.runtime.store
    store.client.delete(store.key(gone.id))
    # When listing, Then only the live one shows and the stale entries are dropped
    query = listing.ListQuery(states=("QUEUED",))
    assert [r.id for r in listing.list_tasks(deployment.runtime, query)] == [kept.id]
    cell = store.cell_key("QUEUED", "data_processing", "normal")
    assert store.client.zscore(cell, gone.id) is None
    # And trimming long past the retention period keeps the entries of the queued task (its
    # record lives until record_ttl after it finishes)
    later = time.time() + deployment.runtime.settings.record_ttl + 8 * 86400
    assert retention.trim(store, deployment.runtime.settings, now=later) == 0
    assert [r.id for r in listing.list_tasks(deployment.runtime, query)] == [kept.id]
    # And once its record is gone too, trimming empties every index
    store.client.delete(store.key(kept.id))
    assert retention.trim(store, deployment.runtime.settings, now=later) == 2  # global + cell
    assert store.client.zcard(store.index_key) == 0
    assert store.client.zcard(cell) == 0


def test_piped_list_is_plain_text_that_grep_and_cut_can_take_apart(deployment):
    # Given a queued task and a cancelled one (no worker running)
    queued = deployment.submit("data", data=[1])
    cancelled = deployment.submit("spin", ms=1)
    assert deployment.cli("cancel", cancelled.id).returncode == 0
    # When the list is piped through grep and cut, as in a shell script
    script = f"{sys.executable} -m taskq list | grep REVOKED | cut -d' ' -f1"
    piped = subprocess.run(script, shell=True, capture_output=True, text=True,
                           env=deployment.env, cwd=deployment.home, timeout=60)
    # Then the cancelled task's whole id comes out, alone
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == f"{cancelled.id}\n"
    # And the list itself has a header, one plain line a task, no colour and nothing cut
    listed = deployment.cli("list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "state", "type", "age"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [cancelled.id, "REVOKED", "spin"], [queued.id, "QUEUED", "data_processing"]]
    assert "\x1b" not in listed.stdout and "…" not in listed.stdout


def test_an_empty_list_says_so_on_stderr_and_prints_nothing(deployment):
    deployment.submit("data", data=[1])
    result = deployment.cli("list", "--state", "FAILURE")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == "no tasks match\n"
