"""The ``dynamic`` mapping: which PEs the pool serves, autoscaling, lifecycle, dead workers."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine import (
    AllToOne,
    GroupBy,
    IterativePE,
    OneToAll,
    ProducerPE,
    WorkerDied,
    WorkflowGraph,
    function_pe,
)
from engine.compat import dispel4py as d4p
from engine.errors import EngineError
from engine.mappings.dynamic import DynamicMapping
from engine.mappings.tasks import pooled_pes
from engine.testing import Collect, Lifecycle, ListSource


@function_pe
def double(x: int) -> int:
    return 2 * x


class Keep(IterativePE):
    def apply(self, data: Any) -> Any:
        return data


class Counter(Keep):
    STATEFUL = True


class Flushes(Keep):
    def flush(self) -> None:
        return None


class D4PSum(d4p.GenericPE):
    """dispel4py style: sums in process, writes the total in postprocess."""

    def __init__(self) -> None:
        super().__init__()
        self._add_input("input")
        self._add_output("output")
        self.total = 0

    def process(self, inputs: dict[str, Any]) -> None:  # type: ignore[override]
        self.total += inputs["input"]

    def postprocess(self) -> None:
        self.write("output", self.total)


class D4PDouble(d4p.IterativePE):
    def _process(self, data: Any) -> Any:
        return 2 * data


def test_only_stateless_pes_go_to_the_pool():
    graph = WorkflowGraph()
    source = ListSource([(1, 2)])
    pes = {
        "free": Keep(id="free"), "asked": Keep(id="asked", instances=2),
        "grouped": Keep(id="grouped"), "global": Keep(id="global"), "all": Keep(id="all"),
        "stateful": Counter(id="stateful"), "flushes": Flushes(id="flushes"),
        "d4p_post": D4PSum(), "d4p_plain": D4PDouble(),
    }
    pes["d4p_post"].name, pes["d4p_plain"].name = "d4p_post", "d4p_plain"
    groupings = {"grouped": GroupBy(0), "global": AllToOne(), "all": OneToAll()}
    for name, pe in pes.items():
        graph.connect(source, "output", pe, "input", grouping=groupings.get(name))
    assert pooled_pes(graph.build()) == {"free", "d4p_plain"}


def test_setup_and_flush_once_per_instance_and_fan_out_through_the_pool():
    n = 500
    graph = WorkflowGraph()
    source, doubler = ListSource(range(n)), double()
    watcher, total, sink = Lifecycle(instances=3), D4PSum(), Collect()
    graph.connect(source, "output", doubler, "input")
    for consumer in (watcher, total, sink):  # fan-out from a pooled PE
        graph.connect(doubler, "output", consumer, "input")
    result = DynamicMapping().run(graph, workers=3, min_workers=2, batch_size=8)
    rows = sorted(result.output("Lifecycle"))
    assert [row[:4] for row in rows] == [(0, 3, 1, 1), (1, 3, 1, 1), (2, 3, 1, 1)]
    assert sum(row[4] for row in rows) == n
    assert result.output("D4PSum") == [sum(2 * i for i in range(n))]
    assert sorted(result.output("Collect")) == [2 * i for i in range(n)]
    assert result.summary.pes["double"].units_in == n


class Bursty(ProducerPE):
    """Iteration 0 emits ``burst`` units at once; later ones one unit every ``period`` s."""

    def __init__(self, burst: int, period: float) -> None:
        super().__init__()
        self.burst, self.period = burst, period

    def produce(self, iteration: int) -> Iterator[int]:
        if iteration == 0:
            yield from range(self.burst)
        else:
            time.sleep(self.period)  # a slow source: the pool has little to do
            yield self.burst + iteration


class Slow(IterativePE):
    def apply(self, data: int) -> int:
        time.sleep(0.03)  # the work of one unit
        return data * data


@pytest.mark.slow
def test_autoscaling_grows_under_a_burst_and_shrinks_after():
    graph = WorkflowGraph()
    source, slow, sink = Bursty(24, 0.05), Slow(), Collect()
    graph.connect(source, "output", slow, "input")
    graph.connect(slow, "output", sink, "input")
    result = DynamicMapping().run(graph, {source: 17}, min_workers=1, max_workers=3,
                                  threshold=1, tick=0.05, patience=4, batch_size=1)
    expected = [i * i for i in range(24)] + [(24 + k) ** 2 for k in range(1, 17)]
    assert sorted(result.output("Collect")) == sorted(expected)
    record = result.summary.scaling  # type: ignore[attr-defined]
    sizes = [n for _, n in record["sizes"]]
    assert sizes[0] == 1
    assert record["peak"] == 3 and record["grown"] == 3
    peak_at = sizes.index(3)
    running = sizes[peak_at:]
    assert any(1 <= n < 3 for n in running), f"the pool never shrank: {record['sizes']}"
    assert record["retired"] >= 1
    assert 0 < record["pool_process_seconds"] < 3 * result.summary.wall_seconds


def test_a_static_pool_keeps_its_size():
    graph = WorkflowGraph()
    graph.connect(ListSource(range(100)), "output", double(), "input")
    result = DynamicMapping().run(graph, min_workers=2, max_workers=2, batch_size=4)
    assert sorted(result.output("double")) == [2 * i for i in range(100)]
    record = result.summary.scaling  # type: ignore[attr-defined]
    assert record["grown"] == 2 and record["retired"] == 0 and record["peak"] == 2


class DieOn(IterativePE):
    def apply(self, data: int) -> int:
        if data == 50:
            os.kill(os.getpid(), signal.SIGKILL)
        return data


def test_a_dead_pool_worker_ends_the_run_within_seconds():
    graph = WorkflowGraph()
    graph.connect(ListSource(range(200)), "output", DieOn(), "input")
    started = time.monotonic()
    with pytest.raises(WorkerDied) as caught:
        DynamicMapping().run(graph, workers=2, batch_size=8)
    assert time.monotonic() - started < 20  # an error, never a hang (generous: no benchmark)
    assert caught.value.exitcode == -signal.SIGKILL
    assert any(label.startswith("DieOn[") for label in caught.value.hosted)


def test_options_are_checked():
    graph = WorkflowGraph()
    graph.connect(ListSource([1]), "output", double(), "input")
    with pytest.raises(EngineError, match=r"max_workers \(1\) must be >= min_workers \(2\)"):
        DynamicMapping().run(graph, min_workers=2, max_workers=1)
    with pytest.raises(EngineError, match=r"does not accept option.*bogus"):
        DynamicMapping().run(graph, bogus=1)
