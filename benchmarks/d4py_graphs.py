"""Benchmark graph ``producer -> doubler -> summing consumer`` (dispel4py-style).

Loadable by the real ``dispel4py`` command (``dispel4py simple|multi
benchmarks/d4py_graphs.py ...``) and meant to run unchanged on ``dare``.
Configuration comes from environment variables so that the same module file
serves every benchmark case:

``D4PY_BENCH_MODE``
    ``per_iter`` (default): the producer emits ONE item per ``process`` call,
    so N items need ``-i N`` (the mapping calls ``process({})`` N times).
    ``batch``: the producer writes all N items with ``self.write`` inside one
    ``process`` call, so run it with ``-i 1``.
``D4PY_BENCH_ITEMS``
    N, number of items in ``batch`` mode (default 1000; ignored in per_iter).
``D4PY_BENCH_WORK``
    iterations of a pure-Python busy loop the doubler runs per item
    (default 0 = trivial items).
``D4PY_BENCH_DOUBLERS``
    ``numprocesses`` of the doubler (default 1).

When ``D4PY_BENCH_WORK`` > 0 every doubler instance prints
``D4PY_BENCH_BURN items=<n> seconds=<s>`` (time spent in the busy loop) from
``postprocess``.  The consumer prints ``D4PY_BENCH_RESULT count=<n> sum=<s>`` from its
``postprocess`` (the multi mapping discards unconnected outputs, so the result
is printed).  For N items the expected sum is ``N * (N - 1)``.
"""

import os
import time

from dispel4py.base import ConsumerPE, IterativePE, ProducerPE
from dispel4py.workflow_graph import WorkflowGraph

MODE = os.environ.get("D4PY_BENCH_MODE", "per_iter")
ITEMS = int(os.environ.get("D4PY_BENCH_ITEMS", "1000"))
WORK = int(os.environ.get("D4PY_BENCH_WORK", "0"))
DOUBLERS = int(os.environ.get("D4PY_BENCH_DOUBLERS", "1"))


def burn(loops):
    """Deterministic pure-Python CPU work (calibrated by the benchmark driver)."""
    acc = 0
    for i in range(loops):
        acc = (acc + i * i) % 1000003
    return acc


class CountingProducer(ProducerPE):
    """per_iter: returns 0, 1, 2, ... one per call; batch: writes 0..N-1 in one call."""

    def __init__(self, mode=MODE, items=ITEMS):
        ProducerPE.__init__(self)
        self.mode = mode
        self.items = items
        self.counter = 0

    def _process(self, inputs):
        if self.mode == "batch":
            write = self.write
            for i in range(self.items):
                write("output", i)
            return None
        value = self.counter
        self.counter += 1
        return value


class Doubler(IterativePE):
    def __init__(self, work=WORK):
        IterativePE.__init__(self)
        self.work = work
        self.burn_seconds = 0.0
        self.burn_items = 0

    def _process(self, data):
        if self.work:
            t0 = time.perf_counter()
            burn(self.work)
            self.burn_seconds += time.perf_counter() - t0
            self.burn_items += 1
        return 2 * data

    def postprocess(self):
        if self.burn_items:
            # lets the driver report the CPU work actually done per item
            print(
                f"D4PY_BENCH_BURN items={self.burn_items} seconds={self.burn_seconds:.6f}",
                flush=True,
            )


class SummingConsumer(ConsumerPE):
    def __init__(self):
        ConsumerPE.__init__(self)
        self.total = 0
        self.count = 0

    def _process(self, data):
        self.total += data
        self.count += 1

    def postprocess(self):
        if self.count:
            print(f"D4PY_BENCH_RESULT count={self.count} sum={self.total}", flush=True)


producer = CountingProducer()
doubler = Doubler()
doubler.numprocesses = DOUBLERS
consumer = SummingConsumer()

graph = WorkflowGraph()
graph.connect(producer, "output", doubler, "input")
graph.connect(doubler, "output", consumer, "input")
