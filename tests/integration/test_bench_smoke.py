"""The benchmark runs end to end at a tiny size (benchmarks are not tests: no figure is judged
here; strict priority is tested in test_priority.py, which can tell a task taken before the
high one was queued from one taken after)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from taskq.bench.report import FIGURES

pytestmark = pytest.mark.integration


def test_bench_at_tiny_size_reports_every_figure_for_both_systems(tmp_path):
    # When the benchmark runs on the embedded broker at its tiny size
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "taskq", "bench", "--size", "tiny",
                             "--broker", "embedded", "--out", str(out), "--json"],
                            capture_output=True, text=True, timeout=110)
    # Then it exits 0 and prints the same JSON it wrote
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert json.loads(out.read_text()) == printed
    # And every figure is there for taskq and plain Celery, with a row comparing them
    sides = printed["brokers"]["embedded"]
    for key, *_ in FIGURES:
        assert sides["taskq"][key] >= 0
        assert sides["celery"][key] >= 0
    assert len(printed["rows"]) == len(FIGURES)
