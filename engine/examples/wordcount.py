"""Word count over a fixed public-domain text (dispel4py-style workflow).

Graph: ``LineProducer -> SplitWords -> CountWords`` (CountWords has 3 instances,
input grouped by word, ``grouping=[0]``).

Every iteration the producer writes the 4 opening lines of Charles Dickens,
*A Tale of Two Cities* (1859, public domain).  The splitter lower-cases each
line, strips punctuation and writes one ``(word, 1)`` tuple per word.  Each
counter instance accumulates the counts of the words routed to it and writes
``(word, count)`` tuples from ``postprocess`` to its unconnected ``output``
(printed by ``dispel4py simple`` as ``Outputs: {...}``); it also logs a summary.

Expected result for ``-i N``: 48*N words, 16 distinct, with counts
``it, was, the, of = 8*N``; ``age, epoch, season, times = 2*N``;
``best, worst, wisdom, foolishness, belief, incredulity, light, darkness = N``.
With ``-i 2`` the simple mapping prints (one line)::

    Outputs: {'CountWords2': {'output': [('age', 4), ('belief', 2), ('best', 2),
      ('darkness', 2), ('epoch', 4), ('foolishness', 2), ('incredulity', 2),
      ('it', 16), ('light', 2), ('of', 16), ('season', 4), ('the', 16),
      ('times', 4), ('was', 16), ('wisdom', 2), ('worst', 2)]}}

Run::

    dispel4py simple engine/examples/wordcount.py -i 2
    dispel4py multi engine/examples/wordcount.py -i 2 -n 5

(or ``PYTHONPATH=. dispel4py simple engine.examples.wordcount``; the
``dispel4py`` script does not put the current directory on ``sys.path``).
In the multi mapping unconnected outputs are discarded, so the per-instance
counts are visible only in the ``self.log`` lines.
"""

from dispel4py.base import IterativePE
from dispel4py.core import GenericPE
from dispel4py.workflow_graph import WorkflowGraph

TEXT = """It was the best of times, it was the worst of times,
it was the age of wisdom, it was the age of foolishness,
it was the epoch of belief, it was the epoch of incredulity,
it was the season of Light, it was the season of Darkness,"""

PUNCTUATION = ",.;:!?\"'()"


class LineProducer(GenericPE):
    """Writes every line of ``TEXT`` once per iteration."""

    def __init__(self, text=TEXT):
        GenericPE.__init__(self)
        self._add_output("output")
        self.lines = text.splitlines()

    def process(self, inputs):
        # A root PE receives an empty dict ({}) once per iteration (-i N).
        for line in self.lines:
            self.write("output", line)


class SplitWords(IterativePE):
    """Splits a line into normalised words and writes ``(word, 1)`` for each."""

    def __init__(self):
        IterativePE.__init__(self)

    def _process(self, line):
        for token in line.split():
            word = token.strip(PUNCTUATION).lower()
            if word:
                self.write("output", (word, 1))
        # returning None: nothing more is written for this input block


class CountWords(GenericPE):
    """Counts words; all tuples of one word reach the same instance (grouping=[0])."""

    def __init__(self):
        GenericPE.__init__(self)
        self._add_input("input", grouping=[0])
        self._add_output("output")
        self.numprocesses = 3
        self.counts = {}

    def process(self, inputs):
        word, count = inputs["input"]
        self.counts[word] = self.counts.get(word, 0) + count

    def postprocess(self):
        for word in sorted(self.counts):
            self.write("output", (word, self.counts[word]))
        self.log(
            f"counted {sum(self.counts.values())} words, "
            f"{len(self.counts)} distinct: {sorted(self.counts.items())}"
        )


producer = LineProducer()
splitter = SplitWords()
counter = CountWords()

graph = WorkflowGraph()
graph.connect(producer, "output", splitter, "input")
graph.connect(splitter, "output", counter, "input")
