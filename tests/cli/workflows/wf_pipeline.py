"""ListSource([1, 2, 3]) -> double -> Collect; and a producer graph for -i/-d."""

from engine import ProducerPE, WorkflowGraph
from engine.pe import function_pe
from engine.testing import Collect, ListSource


@function_pe
def double(x):
    return 2 * x


class Numbers(ProducerPE):
    """Produce ten times the iteration (or the item given for it)."""

    def produce(self, iteration):
        return 10 * iteration


graph = WorkflowGraph()
graph.connect(ListSource([1, 2, 3]), "output", double(), "input")
graph.connect(graph.vertices[1], "output", Collect(), "input")

counting = WorkflowGraph("counting")
counting.connect(Numbers(), "output", double(), "input")

not_a_graph = 42
