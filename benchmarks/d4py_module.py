"""A dispel4py module, whole process: ``dare run`` against ``dispel4py`` itself.

Runs ``benchmarks/d4py_graphs.py`` (producer -> doubler -> summing consumer, written for
dispel4py) with both command lines on their ``simple`` mapping, each run a fresh process:

* ``dispel4py simple benchmarks/d4py_graphs.py -i I`` (PyPI ``stream-d4py``, if installed);
* ``dare run benchmarks/d4py_graphs.py --mapping simple -i I`` (the compatibility layer).

Each tool runs with ``--items`` items and with one item (its start-up: interpreter, imports,
loading the module, a run of one item); rounds are interleaved across all cases so that drifts
of a shared machine hit them alike, and medians are kept. Per-item cost is
``(wall(N) - wall(1)) / (N - 1)``. The consumer's printed count and sum are checked. One
untimed run of each tool comes first, with bytecode writing allowed (as on a normal install;
``PYTHONDONTWRITEBYTECODE`` is dropped for the runs), so that no run compiles modules.

Producer modes (as in ``dispel4py_baseline.py``): ``batch`` writes the N items with
``self.write`` in one ``process`` call (``-i 1``); ``per_iter`` returns one item per call
(``-i N``).

Usage::

    python benchmarks/d4py_module.py --items 1000000 --repeat 5
    python benchmarks/d4py_module.py --json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GRAPH = "benchmarks/d4py_graphs.py"
D4PY = "import sys; from dispel4py.new.processor import main; sys.argv[0] = 'dispel4py'; main()"


def dispel4py_installed() -> bool:
    """Whether the real dispel4py (``stream-d4py``) can be imported here."""
    try:
        return importlib.util.find_spec("dispel4py.new.processor") is not None
    except ModuleNotFoundError:
        return False


def command(tool: str, mode: str, items: int) -> list[str]:
    """The command line of one run."""
    iterations = str(items if mode == "per_iter" else 1)
    if tool == "dispel4py":
        return [sys.executable, "-c", D4PY, "simple", GRAPH, "-i", iterations]
    return [sys.executable, "-m", "dare_cli", "run", GRAPH, "--mapping", "simple", "-i",
            iterations]


def run_once(tool: str, mode: str, items: int, timeout: float) -> float:
    """Wall time of one run, in s; raises if the consumer's sum is wrong."""
    env = dict(os.environ, D4PY_BENCH_MODE=mode, D4PY_BENCH_ITEMS=str(items),
               D4PY_BENCH_WORK="0", D4PY_BENCH_DOUBLERS="1", PYTHONHASHSEED="0")
    # Bytecode caches as on any install after its first run (dispel4py's were written by
    # pip; a checkout's are written by the warm-up run).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    out = subprocess.run(command(tool, mode, items), cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=timeout)
    wall = time.perf_counter() - start
    found = re.search(r"D4PY_BENCH_RESULT count=(\d+) sum=(-?\d+)", out.stdout)
    if out.returncode or not found or found.groups() != (str(items), str(items * (items - 1))):
        raise RuntimeError(f"{tool} {mode} {items}: rc={out.returncode}, "
                           f"{found.group(0) if found else 'no result'}; "
                           f"stderr: {out.stderr.strip()[-400:]}")
    return wall


def measure(items: int, repeat: int, modes: list[str], tools: list[str],
            timeout: float = 600.0) -> dict[str, Any]:
    """Interleaved runs of every (tool, mode) at ``items`` and at one item; medians."""
    cases = [(tool, mode, n) for mode in modes for tool in tools for n in (items, 1)]
    samples: dict[tuple[str, str, int], list[float]] = {case: [] for case in cases}
    for tool in tools:  # warm-up: bytecode caches, the OS's file cache
        run_once(tool, modes[0], 1, timeout)
    for _ in range(repeat):
        for case in cases:
            samples[case].append(run_once(*case, timeout=timeout))
    rows = []
    for mode in modes:
        for tool in tools:
            wall = statistics.median(samples[(tool, mode, items)])
            startup = statistics.median(samples[(tool, mode, 1)])
            rows.append({
                "tool": tool, "mode": mode, "items": items,
                "wall_s": round(wall, 3), "startup_s": round(startup, 3),
                # None when noise exceeds the items' share (small runs, a busy machine)
                "us_per_item": (round((wall - startup) / max(1, items - 1) * 1e6, 3)
                                if wall > startup else None),
                "wall_s_all": [round(s, 3) for s in samples[(tool, mode, items)]],
                "startup_s_all": [round(s, 3) for s in samples[(tool, mode, 1)]],
            })
    by_key = {(row["tool"], row["mode"]): row for row in rows}
    for row in rows:
        theirs = by_key.get(("dispel4py", row["mode"]))
        if row["tool"] == "dare" and theirs:
            row["throughput_x_dispel4py"] = round(theirs["wall_s"] / row["wall_s"], 2)
            if theirs["us_per_item"] and row["us_per_item"]:
                row["per_item_x_dispel4py"] = round(
                    theirs["us_per_item"] / row["us_per_item"], 2)
    return {"graph": GRAPH, "mapping": "simple", "repeat": repeat,
            "statistic": "medians of interleaved whole-process runs", "rows": rows}


def print_table(report: dict[str, Any]) -> None:
    """Print the rows as a table."""
    print(f"dispel4py module ({report['graph']}), simple mapping, whole process, median of "
          f"{report['repeat']}:")
    print(f"{'tool':10} {'mode':9} {'items':>8} {'wall s':>8} {'start-up s':>11} "
          f"{'us/item':>8} {'x dispel4py (whole)':>20} {'(per item)':>11}")
    for row in report["rows"]:
        print(f"{row['tool']:10} {row['mode']:9} {row['items']:8d} {row['wall_s']:8.3f} "
              f"{row['startup_s']:11.3f} {row['us_per_item'] or float('nan'):8.3f} "
              f"{row.get('throughput_x_dispel4py', ''):>20} "
              f"{row.get('per_item_x_dispel4py', ''):>11}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default="batch", help="batch and/or per_iter")
    parser.add_argument("--no-dispel4py", action="store_true", help="dare only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tools = ["dare"] if args.no_dispel4py or not dispel4py_installed() else ["dispel4py", "dare"]
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    report = measure(args.items, args.repeat, modes, tools)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
