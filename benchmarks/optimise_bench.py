"""Benchmark of the static optimisations: default placement versus ``naive`` and ``staging``.

Workload: a source emits ``--items`` records of ``--size`` bytes; three cheap one-to-one PEs
(checksum, tag, trim) transform each record; an all-to-one PE counts and sums. With the default
placement each of the three PEs runs in its own processes, so every record is pickled and
piped three times; ``staging`` fuses the chain into replicated stages (one crossing per record),
``naive`` fuses the PEs whose recorded sending time exceeds their processing time.

Every case runs the same graph on ``multi`` with the same number of workers, after one
monitored run that provides the record; results are checked identical. Figures are medians of
``--repeat`` runs; the baseline is the default placement measured in the same run.

Usage::

    python benchmarks/optimise_bench.py [--items 20000] [--size 2000] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import engine
from engine import AllToOne, IterativePE, ProcessingElement, ProducerPE, WorkflowGraph
from engine.monitor import MonitorWriter
from engine.optimise import Optimisation


class Records(ProducerPE):
    """Emit ``items`` byte records of ``size`` bytes."""

    def __init__(self, items: int, size: int) -> None:
        super().__init__()
        self.items, self.size = items, size

    def produce(self, iteration: Any) -> Any:
        block = bytes(range(256)) * (self.size // 256 + 1)
        for number in range(self.items):
            yield (number, block[: self.size])


class Checksum(IterativePE):
    def apply(self, data: Any) -> Any:
        number, payload = data
        return (number, payload, zlib.crc32(payload))


class Tag(IterativePE):
    def apply(self, data: Any) -> Any:
        number, payload, crc = data
        return (number, payload, crc, number % 7)


class Trim(IterativePE):
    def apply(self, data: Any) -> Any:
        number, payload, crc, tag = data
        return (number, len(payload), crc, tag)


class Totals(ProcessingElement):
    INPUTS = ("input",)
    OUTPUTS = ("output",)

    def setup(self) -> None:
        self.count = 0
        self.total = 0

    def process(self, port: str | None, data: Any) -> None:
        self.count += 1
        self.total += data[1] + data[2] + data[3]

    def flush(self) -> Any:
        return {"output": (self.count, self.total)}


def make_graph(items: int, size: int) -> WorkflowGraph:
    """Records -> Checksum -> Tag -> Trim -> Totals (all-to-one)."""
    graph = WorkflowGraph("optimise-bench")
    source, checksum, tag, trim, totals = Records(items, size), Checksum(), Tag(), Trim(), Totals()
    graph.connect(source, "output", checksum, "input")
    graph.connect(checksum, "output", tag, "input")
    graph.connect(tag, "output", trim, "input")
    graph.connect(trim, "output", totals, "input", AllToOne())
    return graph


def timed(graph: WorkflowGraph, workers: int, repeat: int, **options: Any) -> tuple[float, Any]:
    """Median wall time and the output of ``repeat`` multi runs."""
    times, output = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = engine.run(graph, mapping="multi", workers=workers, **options)
        times.append(time.perf_counter() - start)
        output = result.output("Totals")
    return statistics.median(times), output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    graph = make_graph(args.items, args.size)
    with tempfile.TemporaryDirectory() as folder:
        record_path = Path(folder) / "record.json"
        engine.run(graph, mapping="multi", workers=args.workers,
                   observers=[MonitorWriter(record_path)])
        rows = []
        base, expected = timed(graph, args.workers, args.repeat)
        rows.append({"case": "default placement", "seconds": base, "speed_up": 1.0})
        for strategy in ("naive", "staging"):
            optimisation = Optimisation.load(strategy, str(record_path))
            seconds, output = timed(graph, args.workers, args.repeat, optimisation=optimisation)
            if output != expected:
                raise SystemExit(f"{strategy}: output {output} differs from {expected}")
            rows.append({"case": strategy, "seconds": seconds, "speed_up": base / seconds})
    if args.json:
        print(json.dumps({"items": args.items, "size": args.size, "workers": args.workers,
                          "rows": rows}, indent=2))
        return 0
    print(f"{args.items} records of {args.size} B, 3 one-to-one PEs, multi -n {args.workers}, "
          f"median of {args.repeat}")
    print(f"{'case':<20} {'seconds':>8} {'speed-up':>9}")
    for row in rows:
        print(f"{row['case']:<20} {row['seconds']:>8.3f} {row['speed_up']:>8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
