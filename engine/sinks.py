"""Sinks for production graphs: a PE whose unconnected output the run hands back.

A mapping returns the values of every unconnected output port in
:meth:`engine.observe.RunResult.output`; a sink gives those values a name of their own, apart
from the PE that made them.
"""

from __future__ import annotations

from typing import Any

from engine.pe import IterativePE

__all__ = ["Collect"]


class Collect(IterativePE):
    """Pass every unit through to ``output``; left unconnected, the run returns them.

    As from any :class:`~engine.pe.IterativePE`, a ``None`` unit is emitted as nothing.

    >>> from engine import WorkflowGraph, run
    >>> graph = WorkflowGraph()
    >>> _ = graph.add(Collect(id="kept"))
    >>> run(graph, {"kept": [3, 1, 2]}).output("kept")
    [3, 1, 2]
    """

    def apply(self, data: Any) -> Any:
        """Return the unit unchanged."""
        return data
