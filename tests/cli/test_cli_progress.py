"""The progress observer: counts per PE, live display on a terminal, counts after a failure."""

from __future__ import annotations

import io

import pytest
from cli_helpers import MAPPINGS, workflow
from rich.console import Console

import engine
from dare_cli.progress import RunReporter
from engine.observe import InstanceStats
from engine.pe import function_pe
from engine.testing import Collect, ListSource


@function_pe
def triple(x):
    return 3 * x


@pytest.fixture
def graph():
    builder = engine.WorkflowGraph()
    builder.connect(ListSource(range(50)), "output", triple(), "input")
    builder.connect(builder.vertices[1], "output", Collect(), "input")
    return builder.build()


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=100)


def text_of(renderable) -> str:
    console = Console(file=io.StringIO(), width=100)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_counts_and_partial_table(graph):
    reporter = RunReporter(terminal(), live=True)
    reporter.run_started("multi", graph, {"ListSource": 1, "triple": 2, "Collect": 1,
                                          "_input:x.y": 1})
    reporter.progress("triple", 0, 3, 2)
    reporter.progress("triple", 1, 4, 4)
    reporter.progress("triple", 0, 5, 5)
    reporter.instance_finished(InstanceStats("ListSource", 0, units_in=1, units_out=50))
    assert reporter.totals("triple") == (9, 9)
    assert reporter.totals("ListSource") == (1, 50)
    reporter.run_failed(RuntimeError("stop"))
    table = text_of(reporter.partial_table())
    assert "_input" not in table
    assert "ListSource │            1/1 │        1 │        50" in table
    assert "triple     │            0/2 │        9 │         9" in table


def test_no_partial_table_without_counts(graph):
    reporter = RunReporter(terminal(), live=False)
    reporter.run_started("simple", graph, {"ListSource": 1})
    assert reporter.partial_table() is None


@pytest.mark.parametrize("mapping_name", MAPPINGS)
def test_live_display_during_a_run(graph, mapping_name):
    console = terminal()
    reporter = RunReporter(console, live=True)
    result = engine.run(graph, mapping=mapping_name, workers=3, observers=[reporter])
    assert sorted(result.output("Collect")) == [3 * i for i in range(50)]
    assert reporter.totals("Collect") == (50, 50)
    assert reporter.finished == {"ListSource": 1, "triple": 1, "Collect": 1}
    assert reporter._progress is None  # stopped by run_finished
    assert "triple" in console.file.getvalue()  # type: ignore[attr-defined]


def test_not_live_in_cli_runner(cli):
    result = cli("run", workflow("wf_pipeline"))
    assert "\x1b[" not in result.stderr  # no terminal control codes
