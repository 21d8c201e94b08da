"""What every mapping shares: the plugin base class and the output collectors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from engine.errors import EngineError
from engine.graph import Graph, WorkflowGraph
from engine.observe import Observer, RunResult
from engine.partition import InputSpec
from engine.runtime import Deliver

__all__ = ["Mapping", "collect_outputs"]


class Mapping:
    """A way of enacting a graph; subclasses are registered as ``dare.mappings`` entry points.

    Every mapping is called the same way: ``run(graph, inputs, workers=N, observers=[...])``
    returns a :class:`~engine.observe.RunResult`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: Options accepted by ``run`` besides the common ones.
    options: ClassVar[tuple[str, ...]] = ()

    def run(
        self,
        graph: Graph | WorkflowGraph,
        inputs: InputSpec = None,
        *,
        workers: int | None = None,
        observers: Iterable[Observer] = (),
        **options: Any,
    ) -> RunResult:
        """Run ``graph`` to completion and return its outputs and summary."""
        raise NotImplementedError

    def check_options(self, options: dict[str, Any]) -> None:
        """Reject options this mapping does not know, naming the ones it does."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise EngineError(
                f"mapping {self.name!r} does not accept option(s) {', '.join(unknown)} "
                f"(accepted: {known})"
            )


def collect_outputs(
    graph: Graph,
) -> tuple[dict[str, dict[str, list[Any]]], dict[str, dict[str, Deliver]]]:
    """Make the result lists of every unconnected output, and a deliver function for each."""
    outputs: dict[str, dict[str, list[Any]]] = {}
    collectors: dict[str, dict[str, Deliver]] = {}
    for pe_id, port in graph.unconnected_outputs():
        values: list[Any] = []
        outputs.setdefault(pe_id, {})[port] = values
        collectors.setdefault(pe_id, {})[port] = _appender(values)
    return outputs, collectors


def _appender(values: list[Any]) -> Deliver:
    append = values.append

    def collect(seq: int, data: Any) -> None:
        append(data)

    return collect
