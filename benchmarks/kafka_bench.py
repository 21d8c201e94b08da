"""Benchmark of the ``kafka`` mapping against ``redis`` (and ``multi``), measured in one run.

The producer -> doubler -> sum graph (``benchmarks/workloads.py``):

* **small**: 200 trivial items; wall time of the whole ``run`` call (topics, processes and
  the pool's consumer-group join included);
* **steady**: ``--items`` items (default 20,000); steady-state rate
  ``(N - 200) / (T(N) - T(200))`` in units/s.

A Tansu broker (``tests/kafka_broker.py``) and a ``redis-server`` (``tests/redis_server.py``)
are started on free loopback ports for the run. Nothing here is a test: no threshold fails.

Usage::

    python benchmarks/kafka_bench.py [--items N] [--workers N] [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from workloads import make_graph, plain_loop  # noqa: E402

import engine  # noqa: E402
from engine.mappings.kafka_queue import KafkaMapping  # noqa: E402
from engine.mappings.redis_queue import RedisMapping  # noqa: E402

SMALL = 200


def load_helper(name: str) -> Any:
    """``tests/NAME.py``, loaded by path (``tests/`` is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", ROOT / "tests" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median_time(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def runner(mapping: str, workers: int, where: str) -> Callable[[int], int]:
    """``run(items) -> sum`` on one mapping."""

    def run(items: int) -> int:
        graph = make_graph(items)
        if mapping == "kafka":
            result = KafkaMapping().run(graph, workers=workers, kafka_url=where)
        elif mapping == "redis":
            result = RedisMapping().run(graph, workers=workers, redis_url=where)
        else:
            result = engine.run(graph, mapping=mapping, workers=workers)
        total: int = result.output("Summer")[0]
        return total

    return run


def cases(args: argparse.Namespace, places: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for mapping in ("multi", "redis", "kafka"):
        run = runner(mapping, args.workers, places.get(mapping, ""))
        small, total = median_time(lambda: run(SMALL), args.repeat)  # noqa: B023
        ok = total == plain_loop(SMALL)
        big, total = median_time(lambda: run(args.items), args.repeat)  # noqa: B023
        ok = ok and total == plain_loop(args.items)
        steady = big - small > 0.2 * big
        rate = (args.items - SMALL) / (big - small) if steady else args.items / big
        rows.append({"case": f"dare {mapping} -n {args.workers}", "small_s": small,
                     "big_s": big, "rate": rate, "ok": ok})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    brokers, servers = load_helper("kafka_broker"), load_helper("redis_server")
    with tempfile.TemporaryDirectory() as folder, \
            brokers.kafka_broker(Path(folder) / "kafka") as broker, \
            servers.redis_server(Path(folder) / "redis") as server:
        rows = cases(args, {"kafka": broker.bootstrap, "redis": server.url})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    kafka = rows[-1]
    redis = rows[-2]
    print(f"{'case':<22} {'200 items (s)':>14} {f'{args.items} items (s)':>16} "
          f"{'steady units/s':>15}  exact")
    for row in rows:
        print(f"{row['case']:<22} {row['small_s']:>14.3f} {row['big_s']:>16.3f} "
              f"{row['rate']:>15,.0f}  {row['ok']}")
    print(f"kafka / redis: 200 items {kafka['small_s'] / redis['small_s']:.2f}x the time, "
          f"steady rate {kafka['rate'] / redis['rate']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
