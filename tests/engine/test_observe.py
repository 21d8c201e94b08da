"""Observers see the same counts under every mapping; timings are exclusive per PE."""

from __future__ import annotations

import contextlib
import itertools
import time
from typing import Any

import engine
from engine import IterativePE, WorkflowGraph
from engine.observe import InstanceStats, Observer, RunResult
from engine.testing import Collect, ListSource


class Sleepy(IterativePE):
    def apply(self, data: Any) -> Any:
        time.sleep(0.01)
        return data


class Recorder(Observer):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.finished: list[InstanceStats] = []
        self.placement: dict[str, int] = {}

    def run_started(self, mapping: str, graph: Any, placement: Any) -> None:
        self.events.append("started")
        self.placement = dict(placement)

    def instance_finished(self, stats: InstanceStats) -> None:
        self.finished.append(stats)

    def run_finished(self, result: RunResult) -> None:
        self.events.append("finished")

    def run_failed(self, error: BaseException) -> None:
        self.events.append("failed")


def graph_of(*pes: Any) -> WorkflowGraph:
    graph = WorkflowGraph()
    for upstream, downstream in itertools.pairwise(pes):
        graph.connect(upstream, "output", downstream, "input")
    return graph


def test_observers_get_counts_of_every_instance(mapping):
    recorder = Recorder()
    graph = graph_of(ListSource(range(30)), Sleepy(instances=2), Collect(instances=1))
    result = mapping.run(graph, observers=[recorder])
    assert recorder.events == ["started", "finished"]
    assert recorder.placement == {"ListSource": 1, "Sleepy": 2, "Collect": 1}
    by_pe: dict[str, list[InstanceStats]] = {}
    for stats in recorder.finished:
        by_pe.setdefault(stats.pe_id, []).append(stats)
    assert sorted(s.instance for s in by_pe["Sleepy"]) == [0, 1]
    assert sum(s.units_in for s in by_pe["Sleepy"]) == 30
    assert [s.units_in for s in by_pe["Collect"]] == [30]
    assert result.summary.pes["Sleepy"].units_out == 30


def test_failures_reach_observers(mapping):
    recorder = Recorder()
    graph = graph_of(ListSource([1, 0]), engine.function_pe(lambda x: 1 / x)(instances=1))
    with contextlib.suppress(engine.PEError):
        mapping.run(graph, observers=[recorder])
    assert recorder.events == ["started", "failed"]


def test_processing_time_is_exclusive_per_pe(mapping):
    options = {"timing": True} if mapping.name == "simple" else {}
    result = mapping.run(graph_of(ListSource(range(20)), Sleepy(instances=1), Collect()),
                         **options)
    pes = result.summary.pes
    assert result.summary.timed
    assert 0.19 < pes["Sleepy"].process_seconds < 1.0  # 20 x 10 ms
    assert pes["ListSource"].process_seconds < 0.1  # not charged for Sleepy's time


def test_simple_without_timing_says_so():
    result = engine.run(graph_of(ListSource(range(3)), Collect()), mapping="simple")
    assert not result.summary.timed
    assert result.summary.as_dict()["pes"]["Collect"]["process_seconds"] is None
