"""Monitoring records and the naive/staging placement optimisations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import engine
from engine import AllToOne, GroupBy, WorkflowGraph, function_pe
from engine.graph import Graph
from engine.monitor import (
    FORMAT,
    MonitorRecord,
    MonitorRecordError,
    MonitorWriter,
    parse_record,
    read_record,
)
from engine.optimise import Optimisation, _shares, place
from engine.partition import build_plan
from engine.testing import Collect, ListSource


@function_pe
def double(x: int) -> int:
    return 2 * x


@function_pe
def add_one(x: int) -> int:
    return x + 1


@function_pe
def total(x: int) -> int:
    return x


def chain_graph(n: int = 100) -> Graph:
    """ListSource -> double -> add_one -> total (all-to-one) -> Collect."""
    graph = WorkflowGraph("chain")
    source, doubler, adder = ListSource(range(n)), double(), add_one()
    summer, sink = total(), Collect()
    graph.connect(source, "output", doubler, "input")
    graph.connect(doubler, "output", adder, "input")
    graph.connect(adder, "output", summer, "input", AllToOne())
    graph.connect(summer, "output", sink, "input")
    return graph.build()


def record(
    graph: Graph, seconds: dict[str, float], links: dict[tuple[str, str], float]
) -> MonitorRecord:
    """A record with the given processing and sending times (ports are input/output)."""
    return MonitorRecord(
        path="test", mapping="multi", workers=4, wall_seconds=1.0,
        process_seconds=seconds, units_in=dict.fromkeys(seconds, 100),
        send_seconds={(src, "output", dst, "input"): t for (src, dst), t in links.items()},
        bytes_sent={},
    )


# -- monitoring records -------------------------------------------------------------------
def test_record_counts_units_bytes_and_groupings(tmp_path: Path) -> None:
    graph = chain_graph(300)
    path = tmp_path / "run.monitor.json"
    engine.run(graph, mapping="multi", workers=3, observers=[MonitorWriter(path)])
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT and data["graph"] == "chain" and data["mapping"] == "multi"
    assert {pe: v["units_in"] for pe, v in data["pes"].items()} == {
        "ListSource": 1, "double": 300, "add_one": 300, "total": 300, "Collect": 300}
    assert data["pes"]["ListSource"]["units_out"] == 300
    links = {(c["src"], c["dst"]): c for c in data["connections"]}
    assert set(links) == {("ListSource", "double"), ("double", "add_one"),
                          ("add_one", "total"), ("total", "Collect")}
    assert all(c["units"] == 300 for c in links.values())
    assert links[("add_one", "total")]["grouping"] == "all-to-one"
    # 5 PEs on 3 processes: at least one connection crosses processes and has bytes and time
    assert any(c["bytes"] > 300 and c["send_seconds"] > 0 for c in links.values())
    assert all(v["process_seconds"] >= 0 for v in data["pes"].values())
    assert list(tmp_path.iterdir()) == [path]  # written atomically, nothing else left
    loaded = read_record(path)
    assert loaded.units_in["double"] == 300
    loaded.check_graph(graph)


def test_simple_record_is_timed_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "simple.json"
    engine.run(chain_graph(), mapping="simple", observers=[MonitorWriter(path)], timing=True)
    data = json.loads(path.read_text())
    assert data["timed"] is True
    assert all(c["bytes"] == 0 and c["send_seconds"] == 0 for c in data["connections"])
    path_untimed = tmp_path / "untimed.json"
    engine.run(chain_graph(), mapping="simple", observers=[MonitorWriter(path_untimed)])
    with pytest.raises(MonitorRecordError, match="not timed"):
        read_record(path_untimed)


def test_failed_run_writes_no_record(tmp_path: Path) -> None:
    @function_pe
    def broken(x: int) -> int:
        raise ValueError("no")

    graph = WorkflowGraph()
    graph.connect(ListSource([1]), "output", broken(), "input")
    path = tmp_path / "failed.json"
    with pytest.raises(engine.PEError):
        engine.run(graph, mapping="simple", observers=[MonitorWriter(path)])
    assert not path.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot be read"),
        ('{"format": "other"}', "is not a dare monitoring record"),
        ('{"format": "dare-monitor/1", "pes": {}}', "lacks the field 'connections'"),
        ('{"format": "dare-monitor/1", "connections": [], '
         '"pes": {"A": {"process_seconds": -1}}}', "pes.A.process_seconds is negative"),
        ('{"format": "dare-monitor/1", "connections": [{"src": "A"}], "pes": {}}',
         r"connections\[0\] needs src"),
    ],
)
def test_bad_records_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(MonitorRecordError, match=message) as info:
        read_record(path)
    assert str(path) in str(info.value)


def test_missing_record_and_record_of_another_graph(tmp_path: Path) -> None:
    with pytest.raises(MonitorRecordError, match="does not exist"):
        read_record(tmp_path / "nothing.json")
    other = parse_record({"format": FORMAT, "connections": [],
                          "pes": {"Elsewhere": {"process_seconds": 1.0}}}, "other.json")
    with pytest.raises(MonitorRecordError, match=r"names PE.*Elsewhere"):
        other.check_graph(chain_graph())


# -- placement ----------------------------------------------------------------------------
def test_shares_are_proportional_with_at_least_one_each() -> None:
    assert _shares([3.0, 1.0], 6) == [4, 2]
    assert _shares([1.0, 1.0, 1.0], 2) == [1, 1, 1]
    assert _shares([0.0, 0.0], 4) == [2, 2]
    assert _shares([10.0, 0.0, 0.0], 5) == [3, 1, 1]
    assert sum(_shares([0.3, 0.5, 0.2], 11)) == 11


def test_naive_fuses_pes_that_communicate_more_than_they_compute() -> None:
    graph = chain_graph()
    rec = record(graph,
                 {"ListSource": 0.1, "double": 0.5, "add_one": 1.5, "total": 0.1, "Collect": 0.1},
                 {("ListSource", "double"): 0.01, ("double", "add_one"): 0.9,
                  ("add_one", "total"): 0.01, ("total", "Collect"): 0.01})
    plan = build_plan(graph, None, workers=6, optimisation=Optimisation("naive", rec))
    assert plan.strategy == "naive"
    # double+add_one fused (0.9 s sending > 0.5 s processing) and replicated on the 3 free
    # processes; the single-instance PEs keep one process each
    assert plan.instances == {"ListSource": 1, "double": 3, "add_one": 3, "total": 1, "Collect": 1}
    assert sorted(plan.workers) == sorted([
        (("ListSource", 0),), (("double", 0), ("add_one", 0)), (("double", 1), ("add_one", 1)),
        (("double", 2), ("add_one", 2)), (("total", 0),), (("Collect", 0),)])
    assert plan.pinned == {("double", "output", "add_one", "input")}


def test_naive_shares_processes_in_proportion_to_processing_time() -> None:
    graph = chain_graph()
    rec = record(graph,
                 {"ListSource": 0.1, "double": 3.0, "add_one": 1.0, "total": 0.1, "Collect": 0.1},
                 {})
    plan = build_plan(graph, None, workers=9, optimisation=Optimisation("naive", rec))
    # 6 free processes split 3:1 -> shares 1 + 4*0.75... = [5, 1]? exact: spare 4, [3, 1]
    assert plan.instances["double"] == 4 and plan.instances["add_one"] == 2
    assert plan.pinned == frozenset()
    assert len(plan.workers) == 9


def test_staging_fuses_one_to_one_chains_and_replicates_them() -> None:
    graph = chain_graph()
    plan = build_plan(graph, None, workers=5, optimisation=Optimisation("staging"))
    assert plan.instances == {"ListSource": 1, "double": 2, "add_one": 2, "total": 1, "Collect": 1}
    assert (("double", 0), ("add_one", 0)) in plan.workers
    assert (("double", 1), ("add_one", 1)) in plan.workers
    assert plan.pinned == {("double", "output", "add_one", "input")}


def test_staging_never_fuses_across_groupings_or_fan_out() -> None:
    graph = WorkflowGraph()
    source, a, b, c = ListSource(range(10)), double(), add_one(), total()
    graph.connect(source, "output", a, "input")
    graph.connect(a, "output", b, "input", GroupBy(0))
    graph.connect(a, "output", c, "input")
    built = graph.build()
    placed = place(built, {"ListSource": 1, "double": None, "add_one": None, "total": None}, 4,
                   Optimisation("staging"))
    assert sorted(map(tuple, placed.groups)) == [("ListSource",), ("add_one",), ("double",),
                                                  ("total",)]
    assert placed.pinned == frozenset()


def test_more_copies_than_workers_share_processes() -> None:
    graph = chain_graph()
    plan = build_plan(graph, None, workers=2, optimisation=Optimisation("staging"))
    assert len(plan.workers) == 2 and plan.partitioned
    placed = sorted(key for worker in plan.workers for key in worker)
    assert placed == sorted((pe, i) for pe, n in plan.instances.items() for i in range(n))


def test_naive_needs_a_record_and_strategies_are_checked() -> None:
    with pytest.raises(engine.GraphError, match="needs a monitoring record"):
        Optimisation("naive")
    with pytest.raises(engine.GraphError, match="unknown optimisation 'fastest'"):
        Optimisation("fastest")


def _expected(graph: Graph, inputs: Any = None) -> list[Any]:
    return sorted(engine.run(graph, inputs, mapping="simple").output("Collect"))


@pytest.mark.parametrize("strategy", ["naive", "staging"])
@pytest.mark.parametrize("workers", [2, 4])
def test_optimised_multi_runs_give_the_same_results(tmp_path: Path, strategy: str,
                                                    workers: int) -> None:
    graph = chain_graph(500)
    path = tmp_path / "record.json"
    engine.run(graph, mapping="multi", workers=workers, observers=[MonitorWriter(path)])
    optimisation = Optimisation.load(strategy, str(path))
    result = engine.run(graph, mapping="multi", workers=workers, optimisation=optimisation)
    assert sorted(result.output("Collect")) == _expected(graph)
    assert result.summary.pes["add_one"].units_in == 500


# -- elastic pool bounds from a record ----------------------------------------------------
def test_dynamic_pool_bounds_come_from_a_record() -> None:
    from engine.mappings.dynamic import Scaling

    graph = chain_graph()
    busy = record(graph, {"double": 3.0, "add_one": 1.2, "total": 0.5}, {})
    # the stateless PEs kept 4.2 processes busy over the 1 s recorded: 5 + 1 for bursts
    assert Scaling.from_record(busy, ["double", "add_one"], cpus=8) == Scaling(1, 6)
    assert Scaling.from_record(busy, ["double", "add_one"], cpus=4) == Scaling(1, 4)
    elastic = MonitorRecord(path="dyn", mapping="dynamic", workers=4, wall_seconds=2.0,
                            process_seconds={}, units_in={}, send_seconds={}, bytes_sent={},
                            scaling={"peak": 3, "pool_process_seconds": 4.1})
    assert Scaling.from_record(elastic, ["double"], cpus=8) == Scaling(2, 3)


def test_dynamic_run_sized_by_a_record(tmp_path: Path) -> None:
    graph = chain_graph(400)
    path = tmp_path / "dynamic.json"
    first = engine.run(graph, mapping="dynamic", workers=2, observers=[MonitorWriter(path)])
    recorded = read_record(path)
    assert recorded.scaling["max_workers"] == 2
    again = engine.run(graph, mapping="dynamic", workers=2, record=recorded)
    assert sorted(again.output("Collect")) == sorted(first.output("Collect")) == _expected(graph)
    peak = recorded.scaling["peak"]
    assert again.summary.scaling["max_workers"] == peak
    assert again.summary.scaling["min_workers"] == max(
        1, min(round(recorded.scaling["pool_process_seconds"] / recorded.wall_seconds), peak))
