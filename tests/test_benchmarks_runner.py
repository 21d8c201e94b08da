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
