"""Graphs and PEs shared by the tests of the broker mappings (``redis``, ``kafka``)."""

from __future__ import annotations

import textwrap
from typing import Any

from engine import AllToOne, IterativePE, ProcessingElement, WorkflowGraph
from engine.testing import Collect, ListSource


class Square(IterativePE):
    def apply(self, data: int) -> int:
        return data * data


class Total(ProcessingElement):
    """Sum of its inputs; counts its setups."""

    INPUTS = ("input",)
    OUTPUTS = ("output",)

    def setup(self) -> None:
        self.total = 0
        self.setups = getattr(self, "setups", 0) + 1

    def process(self, port: str | None, data: int) -> None:
        self.total += data

    def flush(self) -> dict[str, Any]:
        return {"output": (self.instance, self.total, self.setups)}


def squares_graph(items: list[int], work: IterativePE | None = None,
                  totals: int = 1) -> WorkflowGraph:
    """items -> work (pool) -> {Total (``totals`` instances, round-robin), Collect (pool)}.

    One ``Total`` gets its units all-to-one.
    """
    graph = WorkflowGraph()
    source, total, sink = ListSource(items), Total(instances=totals), Collect()
    work = work or Square()
    if totals == 1:
        total.add_input("input", grouping=AllToOne())
    graph.connect(source, "output", work, "input")
    graph.connect(work, "output", total, "input")
    graph.connect(work, "output", sink, "input")
    return graph


#: A workflow module for a file loaded by path, as ``dare run flow.py`` does:
#: ``make_graph(items, folder, stick=False)``.
FLOW = textwrap.dedent(
    '''
    """A workflow module loaded by path, as `dare run flow.py` does."""
    import os
    import time
    from pathlib import Path

    from engine import AllToOne, IterativePE, ProcessingElement, WorkflowGraph
    from engine.testing import Collect, ListSource


    class Cube(IterativePE):
        """Cubes; with ``stick``, the first process to reach unit 0 hangs on it."""

        def __init__(self, folder, stick=False):
            super().__init__()
            self.folder = folder
            self.stick = stick

        def apply(self, data):
            if self.stick and data == 0:
                folder = Path(self.folder)
                mine = folder / f"stuck.{os.getpid()}"
                mine.write_text(str(os.getpid()))
                try:
                    os.link(mine, folder / "stuck")  # only the first process gets here
                except FileExistsError:
                    pass
                else:
                    time.sleep(120)  # hangs until the test kills this worker
            return data ** 3


    class Sum(ProcessingElement):
        INPUTS = ("input",)
        OUTPUTS = ("output",)

        def setup(self):
            self.total = 0

        def process(self, port, data):
            self.total += data

        def flush(self):
            return {"output": self.total}


    def make_graph(items, folder, stick=False):
        graph = WorkflowGraph()
        source, cube, total, sink = ListSource(items), Cube(folder, stick), Sum(), Collect()
        total.add_input("input", grouping=AllToOne())
        graph.connect(source, "output", cube, "input")
        graph.connect(cube, "output", total, "input")
        graph.connect(cube, "output", sink, "input")
        return graph
    '''
)
