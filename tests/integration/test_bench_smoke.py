"""The benchmark runs end to end at a tiny size (benchmarks are not tests: no figure is judged
here; strict priority is tested in test_priority.py, which can tell a task taken before the
high one was queued from one taken after). Dramatiq and Huey run only when installed (the
bench extra, which the dev extra includes)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from taskq.bench import peers
from taskq.bench.figures import FIGURES
from taskq.bench.taskq_side import TaskqSide
from taskq.bench.user_paths import api_installed

pytestmark = pytest.mark.integration

USER_PATHS = {"submit_file_per_s", "submit_big_file_per_s", "submit_http_batch_per_s"}
COUNTS = {"priority_overtakes"}  # 0 is the expected count, not a missing figure


def test_bench_at_tiny_size_reports_every_figure_for_taskq_and_each_peer(tmp_path):
    # Given the peers that are installed (Celery always is)
    names = [name for name in peers.PEERS if not peers.missing([name])]
    # When the benchmark runs on the embedded broker at its tiny size
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "taskq", "bench", "--size", "tiny",
                             "--broker", "embedded", "--peers", ",".join(names),
                             "--out", str(out), "--json"],
                            capture_output=True, text=True, timeout=110)
    # Then it exits 0 and prints the same JSON it wrote
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert json.loads(out.read_text()) == printed
    # And each side has a positive figure where it measures one, and n/a elsewhere
    sides = printed["brokers"]["embedded"]
    assert list(sides) == ["taskq", *names]
    expected = {"taskq": TaskqSide.measures | USER_PATHS,
                **{name: peers.side_class(name).measures for name in names}}
    if not api_installed():
        expected["taskq"] -= {"submit_http_batch_per_s"}
    for side, measured in expected.items():
        for figure in FIGURES:
            value = sides[side][figure.key]
            if figure.key not in measured:
                assert value is None, (side, figure.key)
            elif figure.key in COUNTS:
                assert value >= 0, (side, figure.key)
            else:
                assert value > 0, (side, figure.key)
    # And a row a figure compares taskq with every peer
    assert len(printed["rows"]) == len(FIGURES)
    assert all(set(row["peers"]) == set(names) for row in printed["rows"])


def test_bench_with_an_unknown_peer_exits_2_before_running_anything():
    result = subprocess.run([sys.executable, "-m", "taskq", "bench", "--size", "tiny",
                             "--peers", "celery,rq"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown peer 'rq'")
