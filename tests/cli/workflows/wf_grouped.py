"""Word count with a group-by and three counter instances (exercises partitions)."""

from engine import GroupBy, Port, ProcessingElement, ProducerPE, WorkflowGraph


class Words(ProducerPE):
    def produce(self, iteration):
        yield from ("a", "b", "a", "c", "a", "b")


class Count(ProcessingElement):
    INPUTS = (Port("input", GroupBy(0)),)
    OUTPUTS = ("output",)
    INSTANCES = 3

    def setup(self):
        self.counts = {}

    def process(self, port, data):
        word = data[0]
        self.counts[word] = self.counts.get(word, 0) + 1

    def flush(self):
        for word, count in sorted(self.counts.items()):
            self.write("output", (word, count))


class Pair(ProcessingElement):
    INPUTS = ("input",)
    OUTPUTS = ("output",)

    def process(self, port, data):
        return {"output": (data, 1)}


graph = WorkflowGraph("wordcount")
words, pair, count = Words(), Pair(), Count()
graph.connect(words, "output", pair, "input")
graph.connect(pair, "output", count, "input")
