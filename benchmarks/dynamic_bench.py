"""Benchmarks of the ``dynamic`` and ``redis`` mappings, with baselines from the same run.

Three workloads:

* **small**: producer -> doubler -> sum on 200 trivial items; wall time of the whole ``run``
  call, start-up (processes, Redis keys) included. Target: under 1 s.
* **steady**: the same graph on ``--items`` items (default 200,000); steady-state rate
  ``(N - 200) / (T(N) - T(200))`` in units/s. Target: at least 5,000/s.
* **bursty**: a source emitting ``--bursts`` bursts of ``--burst`` items separated by
  ``--quiet`` seconds of silence, into a stage doing about ``--work-ms`` ms of pure-Python
  work per item, into a sum. The autoscaling pool (``min_workers=1``, ``max_workers`` = the
  CPUs, as by default) is compared with every static pool size from 1 to CPUs + 1
  (``min_workers = max_workers = k``): throughput (items/s of the whole run) against the best
  static size (target: at least 90%) and process-seconds of the pool (target: fewer). Every
  variant uses ``batch_size=--bursty-batch`` (8), so that a burst spreads over the pool.

Baselines: a plain Python loop; the ``multi`` mapping; dispel4py's own ``dyn_multi`` and
``dyn_redis`` mappings (PyPI ``stream-d4py``, when installed) on the same graph
(``benchmarks/d4py_graphs.py``, one item per iteration, ``-n 4``), timed by their own
``ELAPSED TIME``; their steady rate is measured on ``--d4py-items`` (default 2,000). Their
dynamic mappings skip ``postprocess``, so the sum they should print never appears: the table
says so. A ``redis-server`` is started on a free port for the run (``tests/redis_server.py``).

Usage::

    python benchmarks/dynamic_bench.py            # table on stdout
    python benchmarks/dynamic_bench.py --json
    python benchmarks/dynamic_bench.py --quick    # small sizes, one repeat

Nothing here is a test: no threshold fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from timing import SMALL, load_test_helper, median_time, steady_case  # noqa: E402
from workloads import Summer, busy, calibrate, plain_loop  # noqa: E402

from engine import IterativePE, ProducerPE, WorkflowGraph  # noqa: E402
from engine.mappings.dynamic import DynamicMapping  # noqa: E402

D4PY_GRAPH = HERE / "d4py_graphs.py"
D4PY_CLI = "import sys; from dispel4py.new.processor import main; sys.argv[0] = 'dispel4py'; main()"


def trivial_cases(args: argparse.Namespace, url: str) -> list[dict[str, Any]]:
    rows = []
    small_plain, _ = median_time(lambda: plain_loop(SMALL), args.repeat)
    big_plain, _ = median_time(lambda: plain_loop(args.items), args.repeat)
    rows.append({"case": "plain Python", "small_s": small_plain,
                 "rate": args.items / big_plain, "ok": True})
    options: dict[str, dict[str, Any]] = {"multi": {}, "dynamic": {},
                                          "redis": {"redis_url": url}}
    for mapping in ("multi", "dynamic", "redis"):
        rows.append(steady_case(mapping, args.workers, args.items, args.repeat,
                                **options[mapping]))
    return rows


def d4py_run(mapping: str, items: int, redis_port: int, timeout: float) -> dict[str, Any]:
    """One dispel4py run in a subprocess: its ELAPSED TIME, whether it printed the sum."""
    env = {**os.environ, "D4PY_BENCH_MODE": "per_iter", "PYTHONHASHSEED": "0",
           "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_port)}
    command = [sys.executable, "-c", D4PY_CLI, mapping, str(D4PY_GRAPH), "-i", str(items),
               "-n", "4"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"ok": False, "error": f"timeout after {timeout} s"}
    wall = time.perf_counter() - started
    elapsed = re.search(r"^ELAPSED TIME: ([0-9.eE+-]+)", out, re.M)
    found = re.search(r"D4PY_BENCH_RESULT count=(\d+) sum=(-?\d+)", out)
    correct = bool(found) and int(found.group(2)) == items * (items - 1)  # type: ignore[union-attr]
    return {"ok": process.returncode == 0 and elapsed is not None, "wall_s": wall,
            "elapsed_s": float(elapsed.group(1)) if elapsed else None,
            "sum_correct": correct}


def d4py_cases(args: argparse.Namespace, server: Any) -> list[dict[str, Any]]:
    try:
        import dispel4py.new.processor  # noqa: F401
    except Exception as exc:
        return [{"case": "dispel4py", "ok": False, "error": f"not installed: {exc}"}]
    import redis

    rows = []
    for mapping in ("dyn_multi", "dyn_redis"):
        samples = {}
        for items in (SMALL, args.d4py_items):
            redis.Redis.from_url(server.url).flushall()  # its keys are fixed names
            samples[items] = d4py_run(mapping, items, server.port, args.timeout)
        small, big = samples[SMALL], samples[args.d4py_items]
        row: dict[str, Any] = {"case": f"dispel4py {mapping} -n 4",
                               "ok": small["ok"] and big["ok"]}
        if row["ok"]:
            row.update(small_s=small["elapsed_s"], small_wall_s=small["wall_s"],
                       rate=(args.d4py_items - SMALL) / max(big["elapsed_s"]
                                                            - small["elapsed_s"], 1e-9),
                       sum_correct=small["sum_correct"] and big["sum_correct"])
        else:
            row["error"] = small.get("error") or big.get("error") or "no ELAPSED TIME"
        rows.append(row)
    return rows


# -- the bursty graph ------------------------------------------------------------------------
class Bursts(ProducerPE):
    """Iteration *i* waits ``quiet`` seconds (but the first), then emits ``size`` items."""

    def __init__(self, size: int, quiet: float) -> None:
        super().__init__()
        self.size, self.quiet = size, quiet

    def produce(self, iteration: int) -> Iterator[int]:
        if iteration:
            time.sleep(self.quiet)  # the source is silent: no work arrives
        yield from range(iteration * self.size, (iteration + 1) * self.size)


class Work(IterativePE):
    """``work`` iterations of busy work, then the item itself."""

    def __init__(self, work: int) -> None:
        super().__init__()
        self.work = work

    def apply(self, data: int) -> int:
        busy(data, self.work)
        return data


def bursty_graph(args: argparse.Namespace, work: int) -> WorkflowGraph:
    graph = WorkflowGraph("bursty")
    source, stage, total = Bursts(args.burst, args.quiet), Work(work), Summer()
    graph.connect(source, "output", stage, "input")
    graph.connect(stage, "output", total, "input")
    return graph


def bursty_cases(args: argparse.Namespace) -> dict[str, Any]:
    work = calibrate(args.work_ms / 1000)
    items = args.bursts * args.burst
    expected = items * (items - 1) // 2
    variants: list[tuple[str, dict[str, Any]]] = [
        (f"static {k}", {"min_workers": k, "max_workers": k})
        for k in range(1, args.max_static + 1)
    ]
    variants.append((f"autoscale 1..{args.max_auto}",
                     {"min_workers": 1, "max_workers": args.max_auto, "tick": args.tick,
                      "patience": args.patience, "threshold": args.threshold}))
    samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _ in variants}
    for _ in range(args.repeat):  # rounds interleave the variants: the machine drifts
        for name, options in variants:
            result = DynamicMapping().run(bursty_graph(args, work), {"Bursts": args.bursts},
                                          batch_size=args.bursty_batch, **options)
            assert result.output("Summer") == [expected], name
            record = result.summary.scaling  # type: ignore[attr-defined]
            samples[name].append((result.summary.wall_seconds,
                                  record["pool_process_seconds"], record["peak"]))
    rows = []
    for name, _ in variants:
        runs = samples[name]
        wall = statistics.median(s[0] for s in runs)
        rows.append({"case": name, "wall_s": wall, "throughput": items / wall,
                     "pool_process_s": statistics.median(s[1] for s in runs),
                     "peak": max(s[2] for s in runs)})
    best = max((r for r in rows if r["case"].startswith("static")),
               key=lambda r: r["throughput"])
    auto = rows[-1]
    return {"items": items, "work_ms": args.work_ms, "bursts": args.bursts,
            "quiet_s": args.quiet, "tick": args.tick, "patience": args.patience,
            "threshold": args.threshold, "rows": rows, "best_static": best["case"],
            "throughput_vs_best": auto["throughput"] / best["throughput"],
            "process_seconds_vs_best": auto["pool_process_s"] / best["pool_process_s"]}


# -- report ------------------------------------------------------------------------------------
def table(results: dict[str, Any]) -> str:
    lines = [f"trivial graph, {SMALL} items (wall incl. start-up) and steady rate on "
             f"{results['items']:,} items (dispel4py: {results['d4py_items']:,})"]
    lines.append(f"  {'case':32} {'200 items':>10} {'units/s':>12}  notes")
    for row in results["trivial"] + results["dispel4py"]:
        if not row.get("ok") and "error" in row:
            lines.append(f"  {row['case']:32} {'-':>10} {'-':>12}  {row['error']}")
            continue
        note = "" if row.get("sum_correct", True) else "sum never printed (postprocess skipped)"
        if row.get("ok") is False:
            note = "WRONG RESULT"
        lines.append(f"  {row['case']:32} {row['small_s']:>9.3f}s {row['rate']:>12,.0f}  {note}")
    bursty = results["bursty"]
    lines.append("")
    lines.append(f"bursty workload: {bursty['bursts']} bursts, {bursty['items']} items of "
                 f"{bursty['work_ms']} ms work, {bursty['quiet_s']} s quiet between bursts; "
                 f"autoscale tick {bursty['tick']} s, patience {bursty['patience']}, "
                 f"threshold {bursty['threshold']}")
    lines.append(f"  {'pool':18} {'wall':>8} {'items/s':>9} {'pool proc-s':>12} {'peak':>5}")
    for row in bursty["rows"]:
        lines.append(f"  {row['case']:18} {row['wall_s']:>7.3f}s {row['throughput']:>9.1f} "
                     f"{row['pool_process_s']:>12.2f} {row['peak']:>5}")
    lines.append(f"  autoscale vs best static ({bursty['best_static']}): throughput "
                 f"{bursty['throughput_vs_best']:.0%}, process-seconds "
                 f"{bursty['process_seconds_vs_best']:.0%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--d4py-items", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bursts", type=int, default=4)
    parser.add_argument("--burst", type=int, default=400)
    parser.add_argument("--quiet", type=float, default=1.0)
    parser.add_argument("--work-ms", type=float, default=2.0)
    parser.add_argument("--bursty-batch", type=int, default=8)
    parser.add_argument("--max-static", type=int, default=(os.cpu_count() or 2) + 1)
    parser.add_argument("--max-auto", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--tick", type=float, default=0.05)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--no-dispel4py", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.items, args.d4py_items, args.repeat, args.bursts = 20_000, 1_000, 1, 2
    helper = load_test_helper("redis_server")
    with tempfile.TemporaryDirectory() as folder, helper.redis_server(Path(folder)) as server:
        results: dict[str, Any] = {"items": args.items, "d4py_items": args.d4py_items,
                                   "workers": args.workers}
        results["trivial"] = trivial_cases(args, server.url)
        results["dispel4py"] = [] if args.no_dispel4py else d4py_cases(args, server)
        results["bursty"] = bursty_cases(args)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
