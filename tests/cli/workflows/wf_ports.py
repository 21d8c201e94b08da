"""PEs with unconnected input ports, to be fed with -d/-f."""

from engine import IterativePE, ProcessingElement, WorkflowGraph
from engine.testing import Collect


class Square(IterativePE):
    def apply(self, data):
        return data * data


class Join(ProcessingElement):
    """Two inputs; tags every unit with the port it came on."""

    INPUTS = ("left", "right")
    OUTPUTS = ("output",)

    def process(self, port, data):
        return {"output": f"{port}:{data}"}


class Total(ProcessingElement):
    """Sum of its inputs, emitted at flush."""

    INPUTS = ("input",)
    OUTPUTS = ("output",)

    def setup(self):
        self.total = 0

    def process(self, port, data):
        self.total += data

    def flush(self):
        return {"output": self.total}


squares = WorkflowGraph("squares")
squares.connect(Square(), "output", Collect(), "input")

joins = WorkflowGraph("joins")
joins.connect(Join(), "output", Collect(), "input")

totals = WorkflowGraph("totals")
totals.connect(Square(), "output", Total(instances=1), "input")

class AsSet(IterativePE):
    def apply(self, data):
        return frozenset(data)


echo = WorkflowGraph("echo")
echo.add(Collect())

sets = WorkflowGraph("sets")
sets.connect(AsSet(), "output", Collect(), "input")
