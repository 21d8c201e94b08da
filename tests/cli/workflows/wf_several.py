"""Two graphs and no attribute named ``graph``."""

from engine import WorkflowGraph
from engine.testing import Collect, ListSource

first = WorkflowGraph("first")
first.connect(ListSource([1]), "output", Collect(), "input")

second = WorkflowGraph("second")
second.connect(ListSource([2]), "output", Collect(), "input")
