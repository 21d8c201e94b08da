"""Graphs that fail while running: an exception in a PE, and a Ctrl-C inside one."""

from engine import IterativePE, WorkflowGraph
from engine.testing import Collect, ListSource


class Explode(IterativePE):
    def apply(self, data):
        if data == 2:
            raise ValueError("boom")
        return data


class Interrupt(IterativePE):
    def apply(self, data):
        raise KeyboardInterrupt


boom = WorkflowGraph("boom")
boom.connect(ListSource([1, 2, 3]), "output", Explode(), "input")
boom.connect(boom.vertices[1], "output", Collect(), "input")

interrupt = WorkflowGraph("interrupt")
interrupt.connect(ListSource([1]), "output", Interrupt(), "input")
