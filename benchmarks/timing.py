"""Helpers shared by the benchmarks: medians of wall times, the trivial graph's steady rate,
and the test helpers that start servers.

Nothing here is a test: no threshold fails.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TESTS = ROOT / "tests"
#: Items of the small run, whose time is the start-up.
SMALL = 200


def median_time(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def load_test_helper(name: str) -> Any:
    """``tests/NAME.py``, loaded by path (``tests/`` is not a package; its helpers import
    each other, so ``tests/`` goes on ``sys.path``)."""
    if str(TESTS) not in sys.path:
        sys.path.append(str(TESTS))
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", TESTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trivial_runner(mapping: str, workers: int, **options: Any) -> Callable[[int], int]:
    """``run(items) -> sum`` of the producer -> doubler -> sum graph on one mapping."""
    from workloads import make_graph

    import engine

    def run(items: int) -> int:
        result = engine.run(make_graph(items), mapping=mapping, workers=workers, **options)
        total: int = result.output("Summer")[0]
        return total

    return run


def steady_case(mapping: str, workers: int, items: int, repeat: int,
                **options: Any) -> dict[str, Any]:
    """Start-up (``SMALL`` items) and steady rate (``items``) of ``mapping``, checked exact.

    The steady rate is ``(items - SMALL) / (T(items) - T(SMALL))``; if start-up is lost in
    the noise of the big run, the big run's own rate (a lower bound).
    """
    from workloads import plain_loop

    run = trivial_runner(mapping, workers, **options)
    small, total = median_time(lambda: run(SMALL), repeat)
    ok = total == plain_loop(SMALL)
    big, total = median_time(lambda: run(items), repeat)
    ok = ok and total == plain_loop(items)
    steady = big - small > 0.2 * big
    rate = (items - SMALL) / (big - small) if steady else items / big
    return {"case": f"dare {mapping} -n {workers}", "small_s": small, "big_s": big,
            "rate": rate, "ok": ok}
