"""The benchmark runner works end to end on small sizes (its sums are checked; no timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_runner_quick_json():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/run.py"), "--quick", "--no-dispel4py", "--json"],
        capture_output=True, text=True, check=True, timeout=300,
    )
    report = json.loads(out.stdout)
    cases = {(row["workload"], row["case"]) for row in report["rows"]}
    assert ("trivial", "dare multi -n 2") in cases and ("cpu", "dare simple") in cases
    assert all(row["us_per_item"] > 0 for row in report["rows"])


def test_backpressure_benchmark_quick_json():
    """Small sizes: both runs count every unit (the benchmark exits 1 otherwise)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/backpressure_bench.py"), "--items", "20000",
         "--trivial-items", "20000", "--repeat", "1", "--workers", "2", "--json"],
        capture_output=True, text=True, check=True, timeout=300,
    )
    report = json.loads(out.stdout)
    depths = [row["queue_depth"] for row in report["slow_consumer"]]
    assert depths == [32, 10**9]
    assert all(row["peak_mb"] > 10 for row in report["slow_consumer"])
    assert [row["items"] for row in report["trivial"]] == [20000, 20000]
