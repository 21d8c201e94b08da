"""Workflow graphs: PEs, ports, connections and groupings, validated when built.

:class:`WorkflowGraph` is the builder users call (``connect`` checks ports, groupings and
cycles at once, naming the PE and port at fault); :meth:`WorkflowGraph.build` returns a frozen
:class:`Graph` with composites flattened, unique ids and a topological order. Nothing here
runs anything: mappings enact a :class:`Graph`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import GraphError
from engine.pe import Port, ProcessingElement
from engine.routing import AllToOne, Grouping, Shuffle

__all__ = ["Composite", "Edge", "Graph", "Node", "WorkflowGraph"]


def check_unit_timeout(seconds: Any, what: str = "") -> None:
    """Reject a unit time limit that is not a positive number of seconds (``what``: whose)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        prefix = f"{what}: " if what else ""
        raise GraphError(f"{prefix}unit_timeout must be a positive number of seconds, "
                         f"not {seconds!r}")


@dataclass(frozen=True)
class Node:
    """One PE in a built graph."""

    id: str
    pe: ProcessingElement = field(repr=False, compare=False)
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    instances: int | None
    #: Longest time, in seconds, one unit (or source iteration) may take (``None``: no limit).
    unit_timeout: float | None = None

    @property
    def is_source(self) -> bool:
        """Whether the PE has no input ports."""
        return not self.inputs


@dataclass(frozen=True)
class Edge:
    """A connection from an output port to an input port, with the grouping that routes it."""

    src: str
    src_port: str
    dst: str
    dst_port: str
    grouping: Grouping

    def describe(self) -> str:
        """Return ``"src.port -> dst.port (grouping)"``."""
        grouping = self.grouping.describe()
        return f"{self.src}.{self.src_port} -> {self.dst}.{self.dst_port} ({grouping})"


@dataclass(frozen=True)
class Graph:
    """A validated, immutable workflow graph; nodes are in topological order."""

    nodes: Mapping[str, Node]
    edges: tuple[Edge, ...]
    name: str = "workflow"

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, node_id: str) -> Node:
        """Return the node with id ``node_id`` (``GraphError`` naming the known ids if none)."""
        try:
            return self.nodes[node_id]
        except KeyError:
            raise GraphError(
                f"no PE {node_id!r} in graph {self.name!r}; PEs: {', '.join(self.nodes)}"
            ) from None

    def with_unit_timeout(self, seconds: float) -> Graph:
        """Return a copy with ``seconds`` as the unit time limit of PEs that set none."""
        check_unit_timeout(seconds)
        nodes = {
            node_id: node if node.unit_timeout is not None
            else dataclasses.replace(node, unit_timeout=float(seconds))
            for node_id, node in self.nodes.items()
        }
        return dataclasses.replace(self, nodes=nodes)

    def incoming(self, node_id: str) -> list[Edge]:
        """Edges ending at ``node_id``."""
        return [edge for edge in self.edges if edge.dst == node_id]

    def outgoing(self, node_id: str) -> list[Edge]:
        """Edges starting at ``node_id``."""
        return [edge for edge in self.edges if edge.src == node_id]

    def sources(self) -> list[Node]:
        """Nodes without input ports."""
        return [node for node in self if node.is_source]

    def unconnected_outputs(self) -> list[tuple[str, str]]:
        """``(pe_id, port)`` of every output port that feeds nothing: the run's results."""
        used = {(edge.src, edge.src_port) for edge in self.edges}
        return [
            (node.id, port.name)
            for node in self
            for port in node.outputs
            if (node.id, port.name) not in used
        ]

    def unconnected_inputs(self) -> list[tuple[str, str]]:
        """``(pe_id, port)`` of every input port that nothing feeds (external inputs)."""
        used = {(edge.dst, edge.dst_port) for edge in self.edges}
        return [
            (node.id, port.name)
            for node in self
            for port in node.inputs
            if (node.id, port.name) not in used
        ]

    def grouping_of(self, node_id: str, port: str) -> Grouping:
        """Grouping declared on an input port (shuffle if none)."""
        for candidate in self.node(node_id).inputs:
            if candidate.name == port:
                return candidate.grouping or Shuffle()
        raise GraphError(f"PE {node_id!r} has no input port {port!r}")

    def has_all_to_one_input(self, node_id: str) -> bool:
        """Whether some connection into ``node_id`` is all-to-one."""
        return any(isinstance(edge.grouping, AllToOne) for edge in self.incoming(node_id))


class Composite:
    """A subgraph used as one PE: its exposed ports map onto ports of inner PEs.

    Parameters
    ----------
    graph
        The inner graph.
    inputs, outputs
        ``{exposed_name: (inner_pe, inner_port)}``.
    id
        Prefix of the inner PEs' ids once flattened (``id/inner``).
    """

    def __init__(
        self,
        graph: WorkflowGraph,
        inputs: Mapping[str, tuple[Any, str]] | None = None,
        outputs: Mapping[str, tuple[Any, str]] | None = None,
        *,
        id: str | None = None,
    ) -> None:
        self.graph = graph
        self.id = id
        self.input_map = dict(inputs or {})
        self.output_map = dict(outputs or {})
        for name, (inner, port) in self.input_map.items():
            self._check_inner(inner, port, "input", name)
        for name, (inner, port) in self.output_map.items():
            self._check_inner(inner, port, "output", name)

    @property
    def _display_id(self) -> str:
        """The composite's id, or its class name."""
        return self.id or type(self).__name__

    def _check_inner(self, inner: Any, port: str, side: str, name: str) -> None:
        if inner not in self.graph:
            raise GraphError(
                f"composite {self._display_id!r}: exposed {side} {name!r} maps to a PE that "
                "is not in its graph"
            )
        if isinstance(inner, Composite):
            inner.resolve(port, side)  # raises if the nested composite does not expose it
            return
        ports = inner.input_ports if side == "input" else inner.output_ports
        if port not in ports:
            raise GraphError(
                f"composite {self._display_id!r}: PE {inner._display_id!r} "
                f"has no {side} port {port!r}"
            )

    def resolve(self, port: str, side: str) -> tuple[Any, str]:
        """Return the inner ``(pe, port)`` behind an exposed port (recursively)."""
        mapping = self.input_map if side == "input" else self.output_map
        if port not in mapping:
            raise GraphError(
                f"composite {self._display_id!r} has no {side} port {port!r} "
                f"(it exposes {', '.join(mapping) or 'none'})"
            )
        inner, inner_port = mapping[port]
        if isinstance(inner, Composite):
            return inner.resolve(inner_port, side)
        return inner, inner_port


Vertex = ProcessingElement | Composite
RawEdge = tuple[ProcessingElement, str, ProcessingElement, str, Grouping | None]


class WorkflowGraph:
    """Builder of a workflow: add PEs and connect their ports.

    Every call validates at once; :meth:`build` returns the frozen :class:`Graph`.

    Examples
    --------
    >>> from engine.testing import ListSource, Collect
    >>> graph = WorkflowGraph()
    >>> source, sink = ListSource([1, 2, 3]), Collect()
    >>> graph.connect(source, "output", sink, "input")
    >>> [node.id for node in graph.build()]
    ['ListSource', 'Collect']
    """

    def __init__(self, name: str = "workflow") -> None:
        self.name = name
        self._vertices: list[Vertex] = []
        self._connections: list[tuple[Vertex, str, Vertex, str, Grouping | None]] = []
        self._built: Graph | None = None

    def __contains__(self, vertex: object) -> bool:
        return any(vertex is candidate for candidate in self._vertices)

    @property
    def vertices(self) -> list[Vertex]:
        """PEs and composites added so far, in order."""
        return list(self._vertices)

    def add(self, vertex: Vertex) -> Vertex:
        """Add a PE or a composite (idempotent); return it."""
        if not isinstance(vertex, (ProcessingElement, Composite)):
            raise GraphError(
                f"cannot add {vertex!r} to graph {self.name!r}: not a ProcessingElement"
            )
        if vertex not in self:
            if isinstance(vertex, ProcessingElement):
                for port in vertex.output_ports.values():
                    if port.grouping is not None:
                        raise GraphError(
                            f"PE {vertex._display_id!r}: grouping {port.grouping.describe()!r} on "
                            f"output port {port.name!r}; groupings belong on input ports"
                        )
            self._vertices.append(vertex)
            self._built = None
        return vertex

    def connect(
        self,
        src: Vertex,
        src_port: str,
        dst: Vertex,
        dst_port: str,
        grouping: Grouping | None = None,
    ) -> None:
        """Connect output ``src_port`` of ``src`` to input ``dst_port`` of ``dst``.

        ``grouping`` overrides the grouping declared on the input port for this connection.
        """
        self.add(src)
        self.add(dst)
        inner_src, inner_src_port = self._resolve(src, src_port, "output")
        inner_dst, inner_dst_port = self._resolve(dst, dst_port, "input")
        if inner_src is inner_dst:
            raise GraphError(f"PE {inner_src._display_id!r}: cannot connect a PE to itself")
        key = (inner_src, inner_src_port, inner_dst, inner_dst_port)
        for existing in self._connections:
            if existing[:4] == key or (
                existing[0] is src and existing[1] == src_port
                and existing[2] is dst and existing[3] == dst_port
            ):
                raise GraphError(
                    f"{src._display_id}.{src_port} is already connected to "
                    f"{dst._display_id}.{dst_port}"
                )
        self._connections.append((src, src_port, dst, dst_port, grouping))
        self._built = None
        try:
            self.build()
        except GraphError:
            self._connections.pop()
            self._built = None
            raise

    @staticmethod
    def _resolve(vertex: Vertex, port: str, side: str) -> tuple[ProcessingElement, str]:
        if isinstance(vertex, Composite):
            return vertex.resolve(port, side)
        own = vertex.output_ports if side == "output" else vertex.input_ports
        other = vertex.input_ports if side == "output" else vertex.output_ports
        if port not in own:
            if port in other:
                other_side = "input" if side == "output" else "output"
                raise GraphError(
                    f"PE {vertex._display_id!r}: {port!r} is an {other_side} port, "
                    f"it cannot be used as {'a source' if side == 'output' else 'a destination'}"
                    f" (connect an output to an input)"
                )
            raise GraphError(
                f"PE {vertex._display_id!r} has no {side} port {port!r} "
                f"({side}s: {', '.join(own) or 'none'})"
            )
        return vertex, port

    # -- building ----------------------------------------------------------------------
    def build(self) -> Graph:
        """Flatten composites, assign unique ids, check for cycles; return a frozen graph."""
        if self._built is not None:
            return self._built
        pes: list[tuple[ProcessingElement, str]] = []  # (pe, prefix)
        raw_edges: list[RawEdge] = []
        self._flatten(self, "", pes, raw_edges)
        ids = self._assign_ids(pes)
        nodes = {
            ids[id(pe)]: Node(
                id=ids[id(pe)],
                pe=pe,
                inputs=tuple(pe.input_ports.values()),
                outputs=tuple(pe.output_ports.values()),
                instances=pe.instances,
                unit_timeout=getattr(pe, "unit_timeout", None),
            )
            for pe, _ in pes
        }
        for node in nodes.values():
            if node.instances is not None and node.instances < 1:
                raise GraphError(f"PE {node.id!r} asks for {node.instances} instances (min 1)")
            if node.unit_timeout is not None:
                check_unit_timeout(node.unit_timeout, f"PE {node.id!r}")
        edges = []
        for src, src_port, dst, dst_port, grouping in raw_edges:
            dst_id = ids[id(dst)]
            effective = grouping or dst.input_ports[dst_port].grouping or Shuffle()
            edges.append(Edge(ids[id(src)], src_port, dst_id, dst_port, effective))
        order = _topological_order(list(nodes), edges)
        graph = Graph(
            nodes=dict({node_id: nodes[node_id] for node_id in order}),
            edges=tuple(edges),
            name=self.name,
        )
        self._built = graph
        return graph

    @staticmethod
    def _flatten(
        builder: WorkflowGraph,
        prefix: str,
        pes: list[tuple[ProcessingElement, str]],
        edges: list[RawEdge],
    ) -> None:
        for vertex in builder._vertices:
            if isinstance(vertex, Composite):
                WorkflowGraph._flatten(vertex.graph, f"{prefix}{vertex._display_id}/", pes, edges)
            elif not any(vertex is pe for pe, _ in pes):
                pes.append((vertex, prefix))
        for src, src_port, dst, dst_port, grouping in builder._connections:
            s, sp = WorkflowGraph._resolve(src, src_port, "output")
            d, dp = WorkflowGraph._resolve(dst, dst_port, "input")
            edges.append((s, sp, d, dp, grouping))

    @staticmethod
    def _assign_ids(pes: list[tuple[ProcessingElement, str]]) -> dict[int, str]:
        ids: dict[int, str] = {}
        explicit: dict[str, ProcessingElement] = {}
        for pe, prefix in pes:
            if pe.id is not None:
                full = prefix + pe.id
                if full in explicit:
                    raise GraphError(
                        f"duplicate PE id {full!r}: two different PEs "
                        f"({type(explicit[full]).__name__} and {type(pe).__name__}) share it"
                    )
                explicit[full] = pe
                ids[id(pe)] = full
        taken = set(explicit)
        for pe, prefix in pes:
            if pe.id is None:
                base = prefix + pe._default_id()
                candidate, counter = base, 1
                while candidate in taken:
                    counter += 1
                    candidate = f"{base}{counter}"
                taken.add(candidate)
                ids[id(pe)] = candidate
        return ids


def _topological_order(node_ids: list[str], edges: list[Edge]) -> list[str]:
    """Kahn's algorithm, stable on insertion order; a cycle is a ``GraphError`` naming it."""
    indegree = dict.fromkeys(node_ids, 0)
    successors: dict[str, list[str]] = {node_id: [] for node_id in node_ids}
    for edge in edges:
        indegree[edge.dst] += 1
        successors[edge.src].append(edge.dst)
    ready = [node_id for node_id in node_ids if indegree[node_id] == 0]
    order: list[str] = []
    while ready:
        current = ready.pop(0)
        order.append(current)
        for successor in successors[current]:
            indegree[successor] -= 1
            if indegree[successor] == 0:
                ready.append(successor)
    if len(order) < len(node_ids):
        cyclic = [node_id for node_id in node_ids if indegree[node_id] > 0]
        cycle = _find_cycle(cyclic, edges)
        raise GraphError("cycle in the graph: " + " -> ".join(cycle))
    return order


def _find_cycle(candidates: list[str], edges: list[Edge]) -> list[str]:
    inside = set(candidates)
    successors: dict[str, list[Edge]] = {}
    for edge in edges:
        if edge.src in inside and edge.dst in inside:
            successors.setdefault(edge.src, []).append(edge)
    path: list[str] = [candidates[0]]
    seen = {candidates[0]: 0}
    while True:
        step = successors[path[-1]][0]
        label = f"{step.dst}.{step.dst_port}"
        if step.dst in seen:
            start = seen[step.dst]
            names = [*path[start:], step.dst]
            return [f"{names[0]}"] + [f"{name}" for name in names[1:-1]] + [label]
        seen[step.dst] = len(path)
        path.append(step.dst)
