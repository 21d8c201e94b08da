"""From a graph and its inputs to an execution plan: instances per PE, PE instances per worker.

The plan is shared by every mapping, so that all enact the same thing:

* external inputs become hidden source PEs (``_input:PE.port``) feeding the input port, with
  the port's grouping, and source PEs get their iterations;
* each PE gets a number of instances: sources and PEs with an all-to-one input get one; a PE
  that asks for *k* gets *k*; the others share the remaining workers equally, as dispel4py's
  multiprocessing mapping does; hidden feeders take no worker of their own (they run in the
  first worker);
* when the graph needs more processes than there are workers, every PE that did not ask for
  more gets one instance and the instances are grouped into partitions (round-robin in
  topological order, so that consecutive PEs land in different processes and pipeline), each
  partition running inside one worker process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.errors import GraphError
from engine.graph import Edge, Graph, Node, WorkflowGraph
from engine.pe import Port, ProcessingElement
from engine.routing import make_router

if TYPE_CHECKING:
    from engine.optimise import Optimisation

__all__ = ["InputSpec", "Plan", "build_plan", "normalise_inputs"]

#: What ``run(graph, inputs)`` accepts: ``None`` (one iteration of every source), an int
#: (that many iterations of every source), or a mapping from a PE (object or id), or a
#: ``(PE, port)`` pair, to an iteration count or to the items to feed.
InputSpec = None | int | Mapping[Any, Any]


class _Feeder(ProcessingElement):
    """Hidden source that emits the items given as input to one port."""

    OUTPUTS = ("output",)

    def _handle(self, port: str | None, data: Any) -> None:
        self.write("output", data)


@dataclass(frozen=True)
class Plan:
    """What a mapping enacts.

    Attributes
    ----------
    graph
        The execution graph: the user's graph plus hidden feeder PEs for external inputs.
    iterations
        For each source PE, the sequence of values its iterations receive.
    instances
        Number of instances per PE.
    workers
        For each worker process, the ``(pe_id, instance)`` pairs it hosts.
    partitioned
        Whether some worker hosts more than one PE instance.
    pinned
        Connections ``(src, src_port, dst, dst_port)`` on which instance *i* always sends to
        instance *i* (set by the optimisations for PEs placed together).
    strategy
        How the placement was made: ``"default"``, ``"naive"`` or ``"staging"``.
    """

    graph: Graph
    iterations: Mapping[str, Sequence[Any]]
    instances: Mapping[str, int]
    workers: tuple[tuple[tuple[str, int], ...], ...]
    partitioned: bool
    pinned: frozenset[tuple[str, str, str, str]] = field(default_factory=frozenset)
    strategy: str = "default"

    def router(self, edge: Edge, instance: int) -> Callable[[Any], int]:
        """Return the router of ``edge`` for sender ``instance`` (see :func:`make_router`)."""
        if (edge.src, edge.src_port, edge.dst, edge.dst_port) in self.pinned:
            return lambda data: instance
        return make_router(edge.grouping, self.instances[edge.dst], start=instance)

    def partitions(self) -> list[list[str]]:
        """Instance labels (``PE[i]``) per worker, for reports."""
        return [[f"{pe}[{i}]" for pe, i in worker] for worker in self.workers]


def _node_id(graph: Graph, key: Any) -> str:
    if isinstance(key, str):
        return graph.node(key).id
    for node in graph:
        if node.pe is key:
            return node.id
    raise GraphError(f"input given for {key!r}, which is not a PE of graph {graph.name!r}")


def normalise_inputs(
    graph: Graph, inputs: InputSpec
) -> tuple[dict[str, Sequence[Any]], dict[tuple[str, str], list[Any]]]:
    """Split ``inputs`` into source iterations and items fed to unconnected input ports.

    Returns
    -------
    iterations, feeds
        ``{source_id: values}`` (every source; one iteration by default) and
        ``{(pe_id, port): items}``.
    """
    default: Sequence[Any] = range(1)
    if isinstance(inputs, int) and not isinstance(inputs, bool):
        if inputs < 0:
            raise GraphError(f"the number of iterations must be >= 0, not {inputs}")
        default = range(inputs)
        inputs = None
    iterations: dict[str, Sequence[Any]] = {node.id: default for node in graph.sources()}
    feeds: dict[tuple[str, str], list[Any]] = {}
    open_inputs = set(graph.unconnected_inputs())
    given: Mapping[Any, Any] = inputs if isinstance(inputs, Mapping) else {}
    for key, value in given.items():
        port: str | None = None
        if isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], str):
            node_id, port = _node_id(graph, key[0]), key[1]
        else:
            node_id = _node_id(graph, key)
        node = graph.node(node_id)
        if node.is_source:
            if port is not None:
                raise GraphError(f"PE {node_id!r} is a source and has no input port {port!r}")
            if isinstance(value, int) and not isinstance(value, bool):
                iterations[node_id] = range(value)
            elif isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
                iterations[node_id] = list(value)
            else:
                raise GraphError(
                    f"input of source PE {node_id!r} must be an iteration count or a list, "
                    f"not {type(value).__name__}"
                )
            continue
        if port is None:
            candidates = [p for n, p in open_inputs if n == node_id]
            if len(candidates) != 1:
                raise GraphError(
                    f"PE {node_id!r} has {len(candidates)} unconnected input ports "
                    f"({', '.join(sorted(candidates)) or 'none'}); give inputs as "
                    f"{{(PE, port): items}}"
                )
            port = candidates[0]
        if (node_id, port) not in open_inputs:
            raise GraphError(
                f"cannot feed PE {node_id!r} port {port!r}: it is not an unconnected input"
            )
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise GraphError(
                f"input of PE {node_id!r} port {port!r} must be a list of data units"
            )
        feeds[(node_id, port)] = list(value)
    return iterations, feeds


def execution_graph(
    graph: Graph, feeds: Mapping[tuple[str, str], list[Any]]
) -> tuple[Graph, dict[str, list[Any]]]:
    """Add one hidden feeder source per fed input port; return the graph and their items."""
    if not feeds:
        return graph, {}
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    feeder_items: dict[str, list[Any]] = {}
    for (node_id, port), items in feeds.items():
        feeder_id = f"_input:{node_id}.{port}"
        feeder = _Feeder(id=feeder_id)
        nodes[feeder_id] = Node(feeder_id, feeder, (), (Port("output"),), 1)
        edges.append(Edge(feeder_id, "output", node_id, port, graph.grouping_of(node_id, port)))
        feeder_items[feeder_id] = items
    nodes.update(graph.nodes)
    merged = Graph(dict(nodes), (*edges, *graph.edges), graph.name)
    return merged, feeder_items


def _fixed_instances(graph: Graph, node: Node) -> int | None:
    if node.is_source:
        return 1
    if node.instances is not None:
        return node.instances
    if graph.has_all_to_one_input(node.id):
        return 1
    return None


def build_plan(
    graph: Graph | WorkflowGraph,
    inputs: InputSpec = None,
    workers: int | None = 1,
    optimisation: Optimisation | None = None,
) -> Plan:
    """Plan a run of ``graph`` on ``workers`` processes (``None``: one instance per PE).

    ``optimisation`` (see :mod:`engine.optimise`) replaces the default placement.
    """
    if isinstance(graph, WorkflowGraph):
        graph = graph.build()
    iterations, feeds = normalise_inputs(graph, inputs)
    exec_graph, feeder_items = execution_graph(graph, feeds)
    iterations.update(feeder_items)
    fixed = {node.id: _fixed_instances(exec_graph, node) for node in exec_graph}
    if workers is None:
        counts = {node_id: n or 1 for node_id, n in fixed.items()}
        return Plan(exec_graph, dict(iterations), dict(counts),
                    (tuple((n, i) for n in counts for i in range(counts[n])),), False)
    if workers < 1:
        raise GraphError(f"the number of workers must be >= 1, not {workers}")
    # Hidden feeders only hand out the given items: they share the first worker instead of
    # taking a process of their own.
    feeders = [(node_id, 0) for node_id in feeder_items]
    fixed = {node_id: n for node_id, n in fixed.items() if node_id not in feeder_items}
    if optimisation is not None:
        from engine.optimise import place

        placed = place(exec_graph, fixed, workers, optimisation)
        opt_slots = [list(slot) for slot in placed.slots]
        opt_slots[0][:0] = feeders
        opt_counts = {**placed.instances, **dict.fromkeys(feeder_items, 1)}
        return Plan(exec_graph, dict(iterations), opt_counts,
                    tuple(tuple(slot) for slot in opt_slots),
                    any(len(slot) > 1 for slot in placed.slots), placed.pinned,
                    optimisation.strategy)
    free = [node_id for node_id, n in fixed.items() if n is None]
    used = sum(n for n in fixed.values() if n is not None)
    share = (workers - used) // len(free) if free else 0
    partitioned = not (used <= workers and (not free or share >= 1))
    if not partitioned:
        counts = {node_id: n if n is not None else share for node_id, n in fixed.items()}
    else:
        counts = {node_id: n if n is not None else 1 for node_id, n in fixed.items()}
    keys = [(node_id, i) for node_id in counts for i in range(counts[node_id])]
    slots: list[list[tuple[str, int]]] = [[] for _ in range(max(1, min(workers, len(keys))))]
    for index, key in enumerate(keys):
        slots[index % len(slots)].append(key)
    slots[0][:0] = feeders
    counts.update(dict.fromkeys(feeder_items, 1))
    return Plan(exec_graph, dict(iterations), dict(counts),
                tuple(tuple(slot) for slot in slots), partitioned)
