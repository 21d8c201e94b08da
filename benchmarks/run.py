"""Benchmark runner: the engine's per-item overhead and throughput against baselines.

Every figure is a ratio against a baseline measured in the same run on the same machine:

* ``plain``: a plain Python loop doing the same work (no engine);
* ``dispel4py``: the real dispel4py (PyPI ``stream-d4py``), when it is installed, measured by
  ``benchmarks/dispel4py_baseline.py`` in subprocesses; and side by side with ``dare run`` on
  the same dispel4py module, whole process (``benchmarks/d4py_module.py``, ``--d4py-items``,
  default 1,000,000).

Workloads: producer -> doubler -> summing consumer with trivial items (``--items``, default
100,000) and a CPU-bound variant (``--cpu-items``, default 2,000, about 0.5 ms of pure-Python
work per item in the doubler, which asks for as many instances as there are workers).

Usage::

    python benchmarks/run.py                 # table on stdout
    python benchmarks/run.py --json          # machine-readable
    python benchmarks/run.py --quick         # small sizes, for a smoke run

Timing runs are medians of ``--repeat`` runs. Nothing here is a test: no threshold fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from d4py_module import dispel4py_installed  # noqa: E402
from d4py_module import measure as measure_d4py_module  # noqa: E402
from d4py_module import print_table as print_d4py_module  # noqa: E402
from timing import median_time  # noqa: E402
from workloads import calibrate, make_graph, plain_loop  # noqa: E402

import engine  # noqa: E402


def engine_case(items: int, work: int, mapping: str, workers: int | None,
                doubler_instances: int | None, **options: Any) -> Callable[[], int]:
    def call() -> int:
        graph = make_graph(items, work, doubler_instances)
        result = engine.run(graph, mapping=mapping, workers=workers, **options)
        return result.output("Summer")[0]  # type: ignore[no-any-return]
    return call


def dispel4py_figures(items: int, cpu_items: int, cpu_ms: float, repeat: int) -> dict[str, Any]:
    """Run the dispel4py baseline in subprocesses; ``{}`` if dispel4py is not installed."""
    script = HERE / "dispel4py_baseline.py"
    command = [sys.executable, str(script), "--items", str(items), "--cpu-items",
               str(cpu_items), "--cpu-ms", str(cpu_ms), "--repeat", str(repeat), "--json"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=900, check=True)
        figures: dict[str, Any] = json.loads(out.stdout)
    except (subprocess.SubprocessError, json.JSONDecodeError) as error:
        return {"available": False, "error": str(error)[:300]}
    return figures


def print_dispel4py_comparison(figures: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Print dispel4py's per-item times beside ours, and our throughput relative to it."""
    if not figures.get("available"):
        print(f"\ndispel4py: not available ({figures.get('error', 'not installed')})")
        return
    print(f"\ndispel4py {figures.get('dispel4py_version')} (producer writing all items in one "
          "call; enactment time without interpreter start-up):")
    ours = {(row["workload"], row["case"]): row["us_per_item"] for row in rows}
    print(f"{'workload':8} {'case':22} {'d4py us/item':>13} {'dare us/item':>13} "
          f"{'dare throughput x':>18}")
    runs = [run for run in figures.get("runs", []) if run.get("producer_mode") == "batch"]
    for run in runs:
        if run["workload"] != "trivial":
            continue
        mapping = run["mapping"] if run["mapping"] == "simple" else f"multi -n {run['processes']}"
        case = f"dare {mapping}"
        theirs = run["us_per_item_enact"]
        mine = ours.get((run["workload"], case))
        ratio = f"{theirs / mine:18.1f}" if mine else f"{'':>18}"
        label = f"{run['workload']:8} {mapping:22}"
        print(f"{label} {theirs:13.2f} {mine if mine else float('nan'):13.2f} {ratio}")
    # CPU-bound work is calibrated separately in each process, so compare speed-ups only.
    cpu = {run["processes"]: run["us_per_item_enact"] for run in runs if run["workload"] == "cpu"}
    speedups = {row["case"]: row.get("speedup_over_simple") for row in rows
                if row["workload"] == "cpu"}
    for processes, seconds in sorted(cpu.items()):
        if processes > 1 and 1 in cpu:
            print(f"cpu      multi -n {processes}: speed-up over simple: dispel4py "
                  f"{cpu[1] / seconds:.2f}x, dare {speedups.get(f'dare multi -n {processes}')}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--cpu-items", type=int, default=2_000)
    parser.add_argument("--cpu-ms", type=float, default=0.5)
    parser.add_argument("--workers", default="2,4", help="worker counts for multi")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--d4py-items", type=int, default=1_000_000,
                        help="items of the dispel4py module run by both command lines")
    parser.add_argument("--no-dispel4py", action="store_true", help="skip the dispel4py runs")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.items, args.cpu_items, args.repeat, args.d4py_items = 5_000, 40, 1, 20_000
    workers = [int(n) for n in args.workers.split(",")]
    rows: list[dict[str, Any]] = []

    def record(workload: str, name: str, seconds: float, items: int, total: int,
               expected: int, baseline: float | None) -> None:
        if total != expected:
            raise SystemExit(f"{workload}/{name}: wrong sum {total} != {expected}")
        row = {"workload": workload, "case": name, "seconds": round(seconds, 4),
               "us_per_item": round(seconds / items * 1e6, 3)}
        if baseline is not None:
            row["overhead_us_per_item"] = round((seconds - baseline) / items * 1e6, 3)
            row["ratio_to_plain"] = round(seconds / baseline, 2)
        rows.append(row)

    # Trivial items: engine overhead per item.
    n = args.items
    expected = n * (n - 1)
    plain, total = median_time(lambda: plain_loop(n), args.repeat)
    record("trivial", "plain python", plain, n, total, expected, None)
    seconds, total = median_time(engine_case(n, 0, "simple", None, None), args.repeat)
    record("trivial", "dare simple", seconds, n, total, expected, plain)
    for count in workers:
        seconds, total = median_time(engine_case(n, 0, "multi", count, None), args.repeat)
        record("trivial", f"dare multi -n {count}", seconds, n, total, expected, plain)

    # CPU-bound items: parallel speed-up.
    work = calibrate(args.cpu_ms / 1000)
    m = args.cpu_items
    expected = m * (m - 1)
    plain, total = median_time(lambda: plain_loop(m, work), args.repeat)
    record("cpu", "plain python", plain, m, total, expected, None)
    simple, total = median_time(engine_case(m, work, "simple", None, None), args.repeat)
    record("cpu", "dare simple", simple, m, total, expected, plain)
    for count in workers:
        seconds, total = median_time(engine_case(m, work, "multi", count, count), args.repeat)
        record("cpu", f"dare multi -n {count}", seconds, m, total, expected, plain)
        rows[-1]["speedup_over_simple"] = round(simple / seconds, 2)

    report: dict[str, Any] = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                              "work_per_cpu_item": work, "rows": rows}
    if not args.no_dispel4py:
        report["dispel4py"] = dispel4py_figures(n, m, args.cpu_ms, args.repeat)
        if dispel4py_installed():
            report["dispel4py_module"] = measure_d4py_module(
                args.d4py_items, args.repeat, ["batch"], ["dispel4py", "dare"])
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{'workload':8} {'case':22} {'seconds':>9} {'us/item':>9} {'overhead':>9} "
              f"{'x plain':>8} {'speed-up':>8}")
        for row in rows:
            print(f"{row['workload']:8} {row['case']:22} {row['seconds']:9.3f} "
                  f"{row['us_per_item']:9.3f} {row.get('overhead_us_per_item', ''):>9} "
                  f"{row.get('ratio_to_plain', ''):>8} {row.get('speedup_over_simple', ''):>8}")
        if "dispel4py" in report:
            print_dispel4py_comparison(report["dispel4py"], rows)
        if "dispel4py_module" in report:
            print()
            print_d4py_module(report["dispel4py_module"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
