"""Benchmark of the ``dask`` mapping against ``multi``, on the same graphs and worker counts.

Two workloads, on the producer -> doubler -> sum graph (``workloads.py``):

* **trivial**: ``--items`` items (default 1,000,000) of no work: the cost of moving units.
  Reported: start-up (``SMALL`` items, the whole ``run`` call), wall time of the big run and
  its steady rate ``(N - SMALL) / (T(N) - T(SMALL))``.
* **cpu**: ``--cpu-items`` items (default 4,000) of about ``--cpu-ms`` ms (default 1) of pure
  Python work each, on ``--workers`` doubler instances: wall time and speed-up over a plain
  loop.

``dask`` runs twice: on a ``LocalCluster`` (``--workers`` single-threaded worker processes)
started once for the benchmark and given as ``scheduler`` (what a user with a cluster sees),
and with no scheduler, when the mapping starts and closes a ``LocalCluster`` for each run.
Every result is checked against the plain loop; ratios are ``dask / multi`` wall times
(above 1: dask is slower).

Usage::

    python benchmarks/dask_bench.py            # table on stdout
    python benchmarks/dask_bench.py --json
    python benchmarks/dask_bench.py --quick    # small sizes, one repeat

Nothing here is a test: no threshold fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from timing import SMALL, median_time, steady_case  # noqa: E402
from workloads import calibrate, make_graph, plain_loop  # noqa: E402

import engine  # noqa: E402


def cpu_case(mapping: str, workers: int, items: int, work: int, repeat: int,
             **options: Any) -> dict[str, Any]:
    """Wall time of the CPU-bound graph (``workers`` doubler instances), checked exact."""

    def run() -> int:
        graph = make_graph(items, work, doubler_instances=workers)
        total: int = engine.run(graph, mapping=mapping, workers=workers,
                                **options).output("Summer")[0]
        return total

    seconds, total = median_time(run, repeat)
    return {"case": f"dare {mapping} -n {workers}", "wall_s": seconds,
            "ok": total == plain_loop(items, work)}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from distributed import LocalCluster

    work = calibrate(args.cpu_ms / 1000)
    plain_cpu, _ = median_time(lambda: plain_loop(args.cpu_items, work), args.repeat)
    trivial: list[dict[str, Any]] = []
    cpu: list[dict[str, Any]] = []
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
        variants: list[tuple[str, str, dict[str, Any]]] = [
            ("multi", "multi", {}),
            ("dask (running cluster)", "dask", {"scheduler": cluster.scheduler_address}),
            ("dask (LocalCluster per run)", "dask", {}),
        ]
        for label, mapping, options in variants:
            row = steady_case(mapping, args.workers, args.items, args.repeat, **options)
            trivial.append({**row, "case": f"{label} -n {args.workers}"})
            row = cpu_case(mapping, args.workers, args.cpu_items, work, args.repeat, **options)
            cpu.append({**row, "case": f"{label} -n {args.workers}",
                        "speedup": plain_cpu / row["wall_s"]})
    return {"workers": args.workers, "items": args.items, "cpu_items": args.cpu_items,
            "cpu_ms": args.cpu_ms, "plain_cpu_s": plain_cpu, "cpus": os.cpu_count(),
            "trivial": trivial, "cpu": cpu}


def print_tables(figures: dict[str, Any]) -> None:
    trivial, cpu = figures["trivial"], figures["cpu"]
    multi_big, multi_cpu = trivial[0]["big_s"], cpu[0]["wall_s"]
    print(f"trivial: {figures['items']:,} items; start-up = run of {SMALL} items "
          f"(CPUs: {figures['cpus']})")
    print(f"  {'case':34} {'start-up s':>10} {'big run s':>10} {'units/s':>12} "
          f"{'/ multi':>8} ok")
    for row in trivial:
        print(f"  {row['case']:34} {row['small_s']:10.2f} {row['big_s']:10.2f} "
              f"{row['rate']:12,.0f} {row['big_s'] / multi_big:8.2f} {row['ok']}")
    print(f"cpu: {figures['cpu_items']:,} items of ~{figures['cpu_ms']:g} ms; plain loop "
          f"{figures['plain_cpu_s']:.2f} s")
    print(f"  {'case':34} {'wall s':>10} {'speed-up':>10} {'/ multi':>8} ok")
    for row in cpu:
        print(f"  {row['case']:34} {row['wall_s']:10.2f} {row['speedup']:10.2f} "
              f"{row['wall_s'] / multi_cpu:8.2f} {row['ok']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--cpu-items", type=int, default=4000)
    parser.add_argument("--cpu-ms", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.items, args.cpu_items, args.repeat = 50_000, 500, 1
    figures = measure(args)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_tables(figures)
    rows = figures["trivial"] + figures["cpu"]
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
