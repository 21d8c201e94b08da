"""Static optimisations of the placement of PE instances on worker processes.

Both read a monitoring record of a previous run (:mod:`engine.monitor`) and change only *where*
PE instances run and which instances talk to each other, never what they compute, so results
stay identical (every mapping's semantic tests hold under them).

``naive`` (naive assignment)
    Connected PEs whose communication cost exceeds the smaller of their processing costs are
    fused: they share processes, one copy of the group per process. Processes are then shared
    among the groups in proportion to their processing time (at least one each).
``staging``
    Chains of one-to-one connections without grouping (the sender has that single outgoing
    connection, the receiver that single incoming one, neither limited to one instance) are
    fused into stages, and each stage is replicated: one copy per process, as many copies as
    its share of the processes (in proportion to processing time when a record is given, equal
    otherwise).

A group containing a PE that asked for *k* instances gets *k* copies; PEs limited to one
instance (sources, all-to-one inputs) sit in the group's first copy.

Inside a group, a connection between two PEs with the same number of instances and no grouping
(shuffle) is *pinned*: instance *i* always sends to instance *i*, which sits in the same process,
so its units never cross processes. The other connections route as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from engine.errors import GraphError
from engine.graph import Edge, Graph
from engine.monitor import MonitorRecord, read_record
from engine.routing import Shuffle

__all__ = ["STRATEGIES", "Optimisation", "Placement", "place"]

STRATEGIES = ("naive", "staging")

LinkKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class Optimisation:
    """A strategy and the monitoring record it reads.

    Parameters
    ----------
    strategy
        ``"naive"`` or ``"staging"``.
    record
        The record of a previous run (required by ``naive``; ``staging`` shares processes
        equally without one).
    """

    strategy: str
    record: MonitorRecord | None = None

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise GraphError(
                f"unknown optimisation {self.strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        if self.strategy == "naive" and self.record is None:
            raise GraphError(
                "the naive optimisation needs a monitoring record of a previous run "
                "(write one with 'dare run --monitor FILE')"
            )

    @classmethod
    def load(cls, strategy: str, record_path: str | None) -> Optimisation:
        """Build from a strategy name and the path of a record (or ``None``)."""
        return cls(strategy, read_record(record_path) if record_path else None)


@dataclass(frozen=True)
class Placement:
    """Instances per PE, PE instances per process, and the pinned connections."""

    instances: Mapping[str, int]
    slots: Sequence[Sequence[tuple[str, int]]]
    pinned: frozenset[LinkKey] = field(default_factory=frozenset)
    groups: Sequence[Sequence[str]] = ()


def _key(edge: Edge) -> LinkKey:
    return (edge.src, edge.src_port, edge.dst, edge.dst_port)


class _Groups:
    """Union-find over PE ids, remembering the graph's topological order."""

    def __init__(self, order: Sequence[str]) -> None:
        self.order = list(order)
        self.parent = {pe: pe for pe in order}

    def find(self, pe: str) -> str:
        while self.parent[pe] != pe:
            self.parent[pe] = self.parent[self.parent[pe]]
            pe = self.parent[pe]
        return pe

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(b)] = self.find(a)

    def groups(self) -> list[list[str]]:
        members: dict[str, list[str]] = {}
        for pe in self.order:
            members.setdefault(self.find(pe), []).append(pe)
        return list(members.values())


def _naive_groups(graph: Graph, order: Sequence[str], record: MonitorRecord) -> list[list[str]]:
    groups = _Groups(order)
    for edge in graph.edges:
        if edge.src not in groups.parent or edge.dst not in groups.parent:
            continue
        processing = min(record.seconds_of(edge.src), record.seconds_of(edge.dst))
        if record.link_seconds(_key(edge)) > processing:
            groups.union(edge.src, edge.dst)
    return groups.groups()


def _staging_groups(
    graph: Graph, order: Sequence[str], fixed: Mapping[str, int | None]
) -> list[list[str]]:
    groups = _Groups(order)
    for edge in graph.edges:
        if edge.src not in groups.parent or edge.dst not in groups.parent:
            continue
        one_to_one = (
            isinstance(edge.grouping, Shuffle)
            and len(graph.outgoing(edge.src)) == 1
            and len(graph.incoming(edge.dst)) == 1
            and fixed[edge.src] != 1
            and fixed[edge.dst] != 1
        )
        if one_to_one:
            groups.union(edge.src, edge.dst)
    return groups.groups()


def _shares(weights: Sequence[float], total: int) -> list[int]:
    """Split ``total`` processes in proportion to ``weights``, at least one each."""
    count = len(weights)
    if count == 0:
        return []
    if total <= count:
        return [1] * count
    norm = sum(weights)
    if norm <= 0:
        weights, norm = [1.0] * count, float(count)
    spare = total - count
    exact = [spare * w / norm for w in weights]
    shares = [1 + int(x) for x in exact]
    left = total - sum(shares)
    by_remainder = sorted(range(count), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for i in by_remainder[:left]:
        shares[i] += 1
    return shares


def place(
    graph: Graph,
    fixed: Mapping[str, int | None],
    workers: int,
    optimisation: Optimisation,
) -> Placement:
    """Place the PEs of ``graph`` listed in ``fixed`` on ``workers`` processes.

    Parameters
    ----------
    graph
        The execution graph.
    fixed
        For each PE to place, its required number of instances, or ``None`` if free.
    workers
        Number of processes.
    optimisation
        The strategy and its record.
    """
    order = [node.id for node in graph if node.id in fixed]
    record = optimisation.record
    if record is not None:
        record.check_graph(graph)
    if optimisation.strategy == "naive":
        assert record is not None  # checked by Optimisation
        groups = _naive_groups(graph, order, record)
    else:
        groups = _staging_groups(graph, order, fixed)

    copies: dict[int, int] = {}
    free_groups: list[int] = []
    for index, members in enumerate(groups):
        declared = [n for n in (fixed[pe] for pe in members) if n is not None]
        if any(n > 1 for n in declared):  # a PE asked for k instances: k copies of its group
            copies[index] = max(declared)
        elif len(declared) == len(members):  # single-instance PEs only
            copies[index] = 1
        else:
            free_groups.append(index)
    used = sum(copies.values())
    weights = [
        sum(record.seconds_of(pe) for pe in groups[index]) if record is not None else 1.0
        for index in free_groups
    ]
    for index, share in zip(free_groups, _shares(weights, max(workers - used, 0)), strict=True):
        copies[index] = share

    instances: dict[str, int] = {}
    slots: list[list[tuple[str, int]]] = []
    for index, members in enumerate(groups):
        k = copies[index]
        group_slots: list[list[tuple[str, int]]] = [[] for _ in range(k)]
        for pe in members:
            n = fixed[pe] if fixed[pe] is not None else k
            assert n is not None
            instances[pe] = n
            for i in range(n):
                group_slots[i % k].append((pe, i))
        slots.extend(slot for slot in group_slots if slot)

    if len(slots) > workers:  # more copies than processes: share processes round-robin
        merged: list[list[tuple[str, int]]] = [[] for _ in range(workers)]
        for index, slot in enumerate(slots):
            merged[index % workers].extend(slot)
        slots = merged

    pinned = frozenset(
        _key(edge)
        for members in groups
        for edge in graph.edges
        if edge.src in members
        and edge.dst in members
        and isinstance(edge.grouping, Shuffle)
        and instances[edge.src] == instances[edge.dst]
        and instances[edge.src] > 1
    )
    return Placement(instances, [tuple(slot) for slot in slots], pinned,
                     [tuple(g) for g in groups])
