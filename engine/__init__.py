"""A streaming dataflow engine: processing elements wired into a graph, enacted by mappings.

>>> from engine import WorkflowGraph, run
>>> from engine.pe import function_pe
>>> from engine.testing import ListSource, Collect
>>> @function_pe
... def double(x):
...     return 2 * x
>>> graph = WorkflowGraph()
>>> source, doubler, sink = ListSource([1, 2, 3]), double(), Collect()
>>> graph.connect(source, "output", doubler, "input")
>>> graph.connect(doubler, "output", sink, "input")
>>> run(graph, mapping="simple").output("Collect")
[2, 4, 6]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.errors import EngineError, GraphError, PEError, WorkerDied
from engine.graph import Composite, Graph, WorkflowGraph
from engine.observe import Observer, RunResult
from engine.partition import InputSpec
from engine.pe import (
    ConsumerPE,
    FunctionPE,
    IterativePE,
    Port,
    ProcessingElement,
    ProducerPE,
    chain,
    function_pe,
)
from engine.routing import AllToOne, GroupBy, OneToAll, Shuffle

__version__ = "0.1.0"

__all__ = [
    "AllToOne",
    "Composite",
    "ConsumerPE",
    "EngineError",
    "FunctionPE",
    "Graph",
    "GraphError",
    "GroupBy",
    "IterativePE",
    "OneToAll",
    "PEError",
    "Port",
    "ProcessingElement",
    "ProducerPE",
    "Shuffle",
    "WorkerDied",
    "WorkflowGraph",
    "chain",
    "function_pe",
    "run",
]


def run(
    graph: Graph | WorkflowGraph,
    inputs: InputSpec = None,
    *,
    mapping: str = "simple",
    workers: int | None = None,
    observers: Iterable[Observer] = (),
    **options: Any,
) -> RunResult:
    """Run ``graph`` with the mapping registered as ``mapping`` (see ``dare mappings``)."""
    from engine.mappings import get_mapping

    return get_mapping(mapping).run(graph, inputs, workers=workers, observers=observers,
                                    **options)
