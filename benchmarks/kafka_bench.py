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
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from timing import load_test_helper, steady_case  # noqa: E402


def cases(args: argparse.Namespace, places: dict[str, str]) -> list[dict[str, Any]]:
    options = {"multi": {}, "redis": {"redis_url": places.get("redis", "")},
               "kafka": {"kafka_url": places.get("kafka", "")}}
    return [steady_case(mapping, args.workers, args.items, args.repeat, **options[mapping])
            for mapping in ("multi", "redis", "kafka")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    brokers, servers = load_test_helper("kafka_broker"), load_test_helper("redis_server")
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
