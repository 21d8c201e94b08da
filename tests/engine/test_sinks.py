"""engine.sinks.Collect: the production sink hands back every unit under its own id."""

from __future__ import annotations

from engine import WorkflowGraph, run
from engine.pe import function_pe
from engine.sinks import Collect
from engine.testing import ListSource


@function_pe
def square(x: int) -> int:
    return x * x


def test_collect_returns_every_unit_under_its_id(mapping, same):
    graph = WorkflowGraph()
    source, squares, sink = ListSource(range(20), id="numbers"), square(), Collect(id="kept")
    graph.connect(source, "output", squares, "input")
    graph.connect(squares, "output", sink, "input")
    result = mapping.run(graph)
    assert same(result.output("kept"), [x * x for x in range(20)])
    assert list(result.outputs) == ["kept"]  # the squares PE's output is connected: not returned


def test_collect_passes_units_on_when_connected():
    graph = WorkflowGraph()
    first, second = Collect(id="first"), Collect(id="second")
    graph.connect(first, "output", second, "input")
    result = run(graph, {"first": ["a", {"b": 1}, None, 0]})
    # an IterativePE returning None emits nothing: a None unit ends at the first sink
    assert result.output("second") == ["a", {"b": 1}, 0]
    assert "first" not in result.outputs
