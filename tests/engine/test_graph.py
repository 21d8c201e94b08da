"""Graphs are validated when built: every mistake names the PE and the port."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine import (
    Composite,
    GraphError,
    GroupBy,
    IterativePE,
    OneToAll,
    Port,
    ProcessingElement,
    WorkflowGraph,
)
from engine.partition import build_plan
from engine.routing import BROADCAST, AllToOne, Shuffle, canonical_bytes, make_router, stable_hash
from engine.testing import Collect, ListSource


class Echo(IterativePE):
    def apply(self, data):
        return data


class BadOutputGrouping(ProcessingElement):
    INPUTS = ("input",)
    OUTPUTS = (Port("output", GroupBy(0)),)


def test_unknown_ports_name_the_pe_and_list_its_ports():
    graph = WorkflowGraph()
    message = r"PE 'ListSource' has no output port 'out' \(outputs: output\)"
    with pytest.raises(GraphError, match=message):
        graph.connect(ListSource([]), "out", Echo(), "input")
    with pytest.raises(GraphError, match=r"PE 'Echo' has no input port 'in' \(inputs: input\)"):
        graph.connect(ListSource([]), "output", Echo(), "in")


def test_output_to_output_is_rejected():
    graph = WorkflowGraph()
    with pytest.raises(GraphError, match="PE 'Echo': 'output' is an output port, it cannot be "
                                         "used as a destination"):
        graph.connect(ListSource([]), "output", Echo(), "output")
    with pytest.raises(GraphError, match="PE 'Echo': 'input' is an input port, it cannot be "
                                         "used as a source"):
        graph.connect(Echo(), "input", Collect(), "input")


def test_duplicate_ids_are_rejected():
    graph = WorkflowGraph()
    graph.connect(ListSource([], id="a"), "output", Echo(id="b"), "input")
    with pytest.raises(GraphError, match="duplicate PE id 'b'"):
        graph.connect(ListSource([], id="c"), "output", Echo(id="b"), "input")


def test_automatic_ids_are_unique():
    graph = WorkflowGraph()
    first, second, third = Echo(), Echo(), Echo()
    graph.connect(ListSource([]), "output", first, "input")
    graph.connect(first, "output", second, "input")
    graph.connect(second, "output", third, "input")
    assert list(graph.build().nodes) == ["ListSource", "Echo", "Echo2", "Echo3"]


def test_cycles_are_rejected_and_named():
    graph = WorkflowGraph()
    a, b, c = Echo(id="a"), Echo(id="b"), Echo(id="c")
    graph.connect(a, "output", b, "input")
    graph.connect(b, "output", c, "input")
    cycles = "a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c"
    with pytest.raises(GraphError, match=rf"cycle in the graph: ({cycles})\.input"):
        graph.connect(c, "output", a, "input")
    assert len(graph.build().edges) == 2  # the bad connection was not kept
    with pytest.raises(GraphError, match="cannot connect a PE to itself"):
        graph.connect(a, "output", a, "input")


def test_grouping_on_an_output_port_is_rejected():
    with pytest.raises(GraphError, match="PE 'BadOutputGrouping': grouping 'group-by 0' on "
                                         "output port 'output'; groupings belong on input ports"):
        WorkflowGraph().add(BadOutputGrouping())


def test_connecting_twice_is_rejected():
    graph = WorkflowGraph()
    a, b = ListSource([]), Echo()
    graph.connect(a, "output", b, "input")
    with pytest.raises(GraphError, match="already connected"):
        graph.connect(a, "output", b, "input")


def test_composite_ports_are_checked():
    inner = WorkflowGraph()
    first, second = Echo(), Echo()
    inner.connect(first, "output", second, "input")
    with pytest.raises(GraphError, match="composite 'blk': PE 'Echo' has no input port 'x'"):
        Composite(inner, inputs={"in": (first, "x")}, id="blk")
    block = Composite(inner, inputs={"in": (first, "input")}, outputs={"out": (second, "output")},
                      id="blk")
    message = r"composite 'blk' has no input port 'input' \(it exposes in\)"
    with pytest.raises(GraphError, match=message):
        WorkflowGraph().connect(ListSource([]), "output", block, "input")


def test_groupings_are_taken_from_the_port_unless_the_connection_overrides():
    graph = WorkflowGraph()
    source, counter, other = ListSource([]), Echo(), Echo()
    counter.add_input("input", grouping=GroupBy(0))
    graph.connect(source, "output", counter, "input")
    graph.connect(source, "output", other, "input", grouping=OneToAll())
    edges = {edge.dst: edge.grouping for edge in graph.build().edges}
    assert edges == {"Echo": GroupBy(0), "Echo2": OneToAll()}


def test_plan_shares_workers_like_dispel4py():
    graph = WorkflowGraph()
    source, a, b = ListSource([]), Echo(), Echo(instances=3)
    graph.connect(source, "output", a, "input")
    graph.connect(a, "output", b, "input")
    plan = build_plan(graph, None, workers=8)
    assert dict(plan.instances) == {"ListSource": 1, "Echo": 4, "Echo2": 3}
    assert not plan.partitioned and len(plan.workers) == 8
    plan = build_plan(graph, None, workers=3)
    assert plan.partitioned and dict(plan.instances) == {"ListSource": 1, "Echo": 1, "Echo2": 3}
    assert [len(worker) for worker in plan.workers] == [2, 2, 1]


def test_bad_inputs_are_graph_errors():
    graph = WorkflowGraph()
    graph.connect(ListSource([]), "output", Echo(), "input")
    with pytest.raises(GraphError, match="no PE 'Nope' in graph"):
        build_plan(graph, {"Nope": 3})
    with pytest.raises(GraphError, match="cannot feed PE 'Echo' port 'input': it is not an "
                                         "unconnected input"):
        build_plan(graph, {("Echo", "input"): [1]})


def test_canonical_bytes_treat_equal_numbers_alike():
    assert canonical_bytes(1) == canonical_bytes(1.0) == canonical_bytes(True)
    assert canonical_bytes(("a", 1)) != canonical_bytes(("a", "1"))
    assert canonical_bytes("ab") != canonical_bytes(("a", "b"))
    with pytest.raises(TypeError, match="not stable across processes"):
        canonical_bytes(object())


def test_stable_hash_is_the_same_in_every_process():
    keys = ["CI.CCC", ("CI", "SLA"), 42, 2.5, None, b"raw"]
    code = (
        "from engine.routing import stable_hash; "
        f"print([stable_hash(k) for k in {keys!r}])"
    )
    values = set()
    for seed in ("1", "2", "random"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={"PYTHONHASHSEED": seed, "PYTHONPATH": "."}, check=True)
        values.add(out.stdout.strip())
    assert values == {str([stable_hash(k) for k in keys])}
    # A fixed value pins the encoding: changing it would move keys between instances.
    assert stable_hash("CI.CCC") == stable_hash("CI.CCC") and stable_hash("a") % 1000 == (
        int.from_bytes(__import__("hashlib").blake2b(b"s1:a", digest_size=8).digest(),
                       "little") % 1000
    )


def test_routers():
    assert [make_router(Shuffle(), 3, start=1)(None) for _ in range(1)] == [1]
    shuffle = make_router(Shuffle(), 3)
    assert [shuffle(None) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    assert make_router(OneToAll(), 3)("x") == BROADCAST
    assert make_router(AllToOne(), 3)("x") == 0
    group = make_router(GroupBy(0), 4)
    assert group(("k", 1)) == group(("k", 2)) == stable_hash("k") % 4


def test_fed_inputs_take_no_worker_of_their_own():
    graph = WorkflowGraph()
    graph.add(Echo(id="work"))
    plan = build_plan(graph, {"work": [1, 2, 3]}, workers=2)
    assert plan.instances["work"] == 2
    assert [list(worker) for worker in plan.workers] == [
        [("_input:work.input", 0), ("work", 0)], [("work", 1)]]
