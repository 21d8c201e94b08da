"""Back-pressure: peak memory of a fast source feeding a slow consumer, bounded and not.

The graph: a source emitting ``items`` small tuples as fast as it can -> a consumer doing
``--work`` iterations of busy work per item (several times slower than the source) -> a
global sum. Under ``multi`` (and ``mpi``) a worker may have at most ``queue_depth`` batches
in flight to one PE instance; with ``queue_depth`` set beyond any run's batch count the
queues are unbounded, as they were before the back-pressure, and the backlog of the source's
batches grows with ``items``.

For each size the benchmark runs both side by side and prints the peak resident memory of
the whole process tree (the caller and its workers, sampled every 20 ms) and the wall time;
then the trivial producer -> doubler -> sum workload (``benchmarks/workloads.py``) with the
default and with unbounded queues, to show what the flow control costs where nothing is slow.

Usage::

    python benchmarks/backpressure_bench.py                      # 1 M and 5 M items
    python benchmarks/backpressure_bench.py --items 1e6 2e7      # up to 20 M
    python benchmarks/backpressure_bench.py --json

Nothing here is a test: no threshold fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from timing import median_time  # noqa: E402
from workloads import Summer, busy, make_graph  # noqa: E402

import engine  # noqa: E402
import engine.mappings.worker  # noqa: E402
from engine import IterativePE, ProducerPE, WorkflowGraph  # noqa: E402

#: A queue depth no run reaches: the queues are unbounded (the behaviour before back-pressure).
UNBOUNDED = 10**9


class Tuples(ProducerPE):
    """Emit ``items`` small tuples in one call, as fast as the engine takes them."""

    def __init__(self, items: int) -> None:
        super().__init__()
        self.items = items

    def produce(self, iteration: Any) -> None:
        write = self.write
        for i in range(self.items):
            write("output", (i, i & 255))


class SlowCopy(IterativePE):
    """Pass each tuple on after ``work`` iterations of busy work."""

    def __init__(self, work: int) -> None:
        super().__init__(instances=1)
        self.work = work

    def apply(self, data: tuple[int, int]) -> int:
        busy(data[1], self.work)
        return data[0]


def slow_graph(items: int, work: int) -> WorkflowGraph:
    graph = WorkflowGraph("backpressure")
    source, slow, total = Tuples(items), SlowCopy(work), Summer()
    graph.connect(source, "output", slow, "input")
    graph.connect(slow, "output", total, "input")
    return graph


class PeakMemory:
    """Peak resident memory of this process and its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            time.sleep(self.interval)


def measure_slow(items: int, work: int, workers: int, depth: int) -> dict[str, Any]:
    """One run of the slow graph: peak memory (MB), wall time; its sum is checked."""
    with PeakMemory() as memory:
        start = time.perf_counter()
        result = engine.run(slow_graph(items, work), mapping="multi", workers=workers,
                            queue_depth=depth)
        seconds = time.perf_counter() - start
    total = result.output("Summer")[0]
    if total != items * (items - 1) // 2:
        raise SystemExit(f"wrong result: the sum of 0..{items - 1} is not {total}")
    return {"items": items, "queue_depth": depth, "peak_mb": memory.peak / 2**20,
            "seconds": seconds}


def measure_trivial(items: int, workers: int, depth: int, repeat: int) -> dict[str, Any]:
    """Median wall time of the trivial workload (producer -> doubler -> sum)."""
    def call() -> int:
        result = engine.run(make_graph(items), mapping="multi", workers=workers,
                            queue_depth=depth)
        return result.output("Summer")[0]

    seconds, total = median_time(call, repeat)
    if total != items * (items - 1):
        raise SystemExit(f"wrong result: {total}")
    return {"items": items, "queue_depth": depth, "seconds": seconds,
            "items_per_second": items / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=float, nargs="+", default=[1e6, 5e6],
                        help="sizes of the slow-consumer runs (default 1e6 5e6)")
    parser.add_argument("--work", type=int, default=40,
                        help="busy-work iterations per item in the slow consumer")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--trivial-items", type=float, default=1e6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    default_depth = engine.mappings.worker.DEFAULT_QUEUE_DEPTH
    slow = [measure_slow(int(items), args.work, args.workers, depth)
            for items in args.items for depth in (default_depth, UNBOUNDED)]
    trivial = [measure_trivial(int(args.trivial_items), args.workers, depth, args.repeat)
               for depth in (default_depth, UNBOUNDED)]
    if args.json:
        print(json.dumps({"slow_consumer": slow, "trivial": trivial}, indent=2))
        return
    print(f"fast source -> slow consumer (multi, {args.workers} workers), peak RSS of the "
          "process tree:")
    print(f"{'items':>12} {'queue_depth':>12} {'peak MB':>9} {'seconds':>9}")
    for row in slow:
        depth = "unbounded" if row["queue_depth"] == UNBOUNDED else str(row["queue_depth"])
        print(f"{row['items']:>12,} {depth:>12} {row['peak_mb']:>9.0f} {row['seconds']:>9.1f}")
    bounded, unbounded = trivial
    print(f"\ntrivial workload, {bounded['items']:,} items, median of {args.repeat}: "
          f"{bounded['seconds']:.2f} s with queue_depth {default_depth}, "
          f"{unbounded['seconds']:.2f} s unbounded "
          f"(throughput ratio {unbounded['seconds'] / bounded['seconds']:.3f})")


if __name__ == "__main__":
    main()
