"""Function PEs and an iterative chain (dispel4py-style workflow).

Graph::

    Counter -> [chain: PE_add_two -> PE_multiply -> PE_subtract_one] -> PE_square

* ``Counter`` (a ``ProducerPE``) returns 1, 2, 3, ... (one item per iteration).
* ``create_iterative_chain`` builds a composite (a ``WorkflowGraph`` with
  ``inputmappings``/``outputmappings``) of ``SimpleFunctionPE`` nodes from the
  functions ``add_two``, ``(multiply, {"factor": 4})`` and ``subtract_one``;
  it is flattened into the top-level graph when the workflow is run.
* ``SimpleFunctionPE(square)`` squares the result; its ``output`` is
  unconnected, so ``dispel4py simple`` prints it.

Each item x becomes ``((x + 2) * 4 - 1) ** 2``.  Expected result for ``-i 3``:
``[121, 225, 361]``; the simple mapping prints
``Outputs: {'PE_square4': {'output': [121, 225, 361]}}``.

Run::

    dispel4py simple engine/examples/function_chain.py -i 3
    dispel4py multi engine/examples/function_chain.py -i 3 -n 5
"""

from dispel4py.base import ProducerPE, SimpleFunctionPE, create_iterative_chain
from dispel4py.workflow_graph import WorkflowGraph


class Counter(ProducerPE):
    def __init__(self):
        ProducerPE.__init__(self)
        self.count = 0

    def _process(self, inputs):
        self.count += 1
        return self.count


def add_two(data):
    return data + 2


def multiply(data, factor):
    return data * factor


def subtract_one(data):
    return data - 1


def square(data):
    return data * data


class Printer(SimpleFunctionPE):
    """A SimpleFunctionPE that also logs each value (visible in the multi mapping)."""

    def _process(self, data):
        result = SimpleFunctionPE._process(self, data)
        self.log(f"{data} -> {result}")
        return result


counter = Counter()
chain = create_iterative_chain([add_two, (multiply, {"factor": 4}), subtract_one])
squarer = Printer(square)

graph = WorkflowGraph()
graph.connect(counter, "output", chain, "input")
graph.connect(chain, "output", squarer, "input")
