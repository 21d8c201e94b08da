"""The benchmark workload, written for the engine: producer -> doubler -> summing consumer.

``make_graph(items, work)`` builds the graph; ``work`` is the number of iterations of a small
pure-Python loop done per item by the doubler (0 for trivial items). ``plain_loop`` does the
same work without the engine: the baseline every ratio is measured against.
"""

from __future__ import annotations

import time
from typing import Any

from engine import AllToOne, IterativePE, ProcessingElement, ProducerPE, WorkflowGraph


def busy(x: int, work: int) -> int:
    """Deterministic CPU work: ``work`` iterations of integer arithmetic."""
    acc = x
    for k in range(work):
        acc = (acc * 31 + k) % 1_000_003
    return acc


def calibrate(target_seconds: float = 0.0005) -> int:
    """Return the ``work`` that takes about ``target_seconds`` per item on this machine."""
    work = 1000
    while True:
        start = time.perf_counter()
        for i in range(20):
            busy(i, work)
        elapsed = (time.perf_counter() - start) / 20
        if elapsed > target_seconds / 4:
            return max(1, int(work * target_seconds / elapsed))
        work *= 4


class Numbers(ProducerPE):
    """Emit 0..items-1 in one call."""

    def __init__(self, items: int) -> None:
        super().__init__()
        self.items = items

    def produce(self, iteration: Any) -> None:
        write = self.write
        for i in range(self.items):
            write("output", i)


class Doubler(IterativePE):
    """2*x, after ``work`` iterations of busy work (the result does not depend on it)."""

    def __init__(self, work: int, instances: int | None = None) -> None:
        super().__init__(instances=instances)
        self.work = work

    def apply(self, data: int) -> int:
        if self.work:
            busy(data, self.work)
        return 2 * data


class Summer(ProcessingElement):
    """Sum everything (one instance: all-to-one) and emit the total at the end."""

    OUTPUTS = ("output",)

    def __init__(self) -> None:
        super().__init__()
        self.add_input("input", grouping=AllToOne())

    def setup(self) -> None:
        self.total = 0

    def process(self, port: str | None, data: int) -> None:
        self.total += data

    def flush(self) -> dict[str, int]:
        return {"output": self.total}


def make_graph(items: int, work: int = 0, doubler_instances: int | None = None) -> WorkflowGraph:
    """Producer -> doubler -> summing consumer."""
    graph = WorkflowGraph("bench")
    source, doubler, total = Numbers(items), Doubler(work, doubler_instances), Summer()
    graph.connect(source, "output", doubler, "input")
    graph.connect(doubler, "output", total, "input")
    return graph


def plain_loop(items: int, work: int = 0) -> int:
    """The same computation as a plain Python loop."""
    total = 0
    for i in range(items):
        if work:
            busy(i, work)
        total += 2 * i
    return total
