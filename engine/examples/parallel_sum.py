"""Parallel sum of doubled integers (dispel4py-style workflow).

Graph: ``NumberProducer -> Doubler (2 instances) -> PartialSum -> Total``.

* ``NumberProducer`` (a ``ProducerPE``) writes the integers ``0..N-1``
  (``N = 100``) on every iteration.
* ``Doubler`` (an ``IterativePE``, ``numprocesses = 2``) returns ``2 * x``.
* ``PartialSum`` sums what its instance receives (shuffle grouping) and writes
  its partial sum in ``postprocess`` (0 if the instance received nothing).
* ``Total`` (input ``grouping='global'``: every partial sum goes to its first
  instance) adds the partial sums and, in ``postprocess``, writes the total to
  its unconnected ``output`` and logs it.  Instances that received nothing
  (``global`` sends everything to one instance) stay silent.

Expected result for ``-i I``: ``I * N * (N - 1) = I * 9900``;
``-i 1`` -> 9900, ``-i 3`` -> 29700.  ``dispel4py simple`` prints e.g.
``Outputs: {'Total3': {'output': [29700]}}``; ``dispel4py multi`` discards
unconnected outputs, so there the total is visible in the log line
``Total3 (rank R): total = 29700``.

Run::

    dispel4py simple engine/examples/parallel_sum.py -i 3
    dispel4py multi engine/examples/parallel_sum.py -i 3 -n 5

The multi mapping needs ``-n >= 5`` (1 producer + 2 doublers + 1 + 1); with
``-n 4`` dispel4py 2.9.1 prints "Graph is larger than job size: 5 > 4." and
fails.  With ``-n 9`` the two default PEs are scaled to 2 instances each and
the log shows ``total = 29700 (from 2 partial sums)``.
"""

from dispel4py.base import IterativePE, ProducerPE
from dispel4py.core import GenericPE
from dispel4py.workflow_graph import WorkflowGraph

N = 100


class NumberProducer(ProducerPE):
    """Writes 0..n-1 on every iteration."""

    def __init__(self, n=N):
        ProducerPE.__init__(self)
        self.n = n

    def _process(self, inputs):
        # inputs is {} for each of the -i iterations
        for i in range(self.n):
            self.write(ProducerPE.OUTPUT_NAME, i)
        return None


class Doubler(IterativePE):
    def __init__(self):
        IterativePE.__init__(self)
        self.numprocesses = 2

    def _process(self, data):
        return 2 * data


class PartialSum(GenericPE):
    def __init__(self):
        GenericPE.__init__(self)
        self._add_input("input")
        self._add_output("output")
        self.partial = 0

    def process(self, inputs):
        self.partial += inputs["input"]

    def postprocess(self):
        self.write("output", self.partial)


class Total(GenericPE):
    def __init__(self):
        GenericPE.__init__(self)
        self._add_input("input", grouping="global")
        self._add_output("output")
        self.total = 0
        self.received = 0

    def process(self, inputs):
        self.total += inputs["input"]
        self.received += 1

    def postprocess(self):
        if self.received:
            self.write("output", self.total)
            self.log(f"total = {self.total} (from {self.received} partial sums)")


producer = NumberProducer()
doubler = Doubler()
partial = PartialSum()
total = Total()

graph = WorkflowGraph()
graph.connect(producer, "output", doubler, "input")
graph.connect(doubler, "output", partial, "input")
graph.connect(partial, "output", total, "input")
