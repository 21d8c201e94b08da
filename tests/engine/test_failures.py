"""Failures: an exception in a PE, a dying worker, Ctrl-C, bad mapping names."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from polling import group_members, wait_until

import engine
from engine import IterativePE, PEError, ProcessingElement, WorkerDied, WorkflowGraph
from engine.errors import MappingNotFound
from engine.testing import Collect, FailOn, HoldsFile, ListSource


class DieOn(IterativePE):
    """End the whole process abruptly on unit ``bad`` (``how``: kill or exit)."""

    def __init__(self, bad: int, how: str) -> None:
        super().__init__(instances=1)
        self.bad = bad
        self.how = how

    def apply(self, data: Any) -> Any:
        if data == self.bad:
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(3)
        return data


class FailInPhase(ProcessingElement):
    INPUTS = ("input",)
    OUTPUTS = ("output",)

    def __init__(self, phase: str) -> None:
        super().__init__()
        self.phase = phase

    def setup(self) -> None:
        if self.phase == "setup":
            raise RuntimeError("cannot open the archive")

    def process(self, port: str | None, data: Any) -> None:
        return None

    def flush(self) -> None:
        if self.phase == "flush":
            raise RuntimeError("cannot write the summary")

    def teardown(self) -> None:
        if self.phase == "teardown":
            raise RuntimeError("cannot close the archive")


class WriteUnknownPort(IterativePE):
    def apply(self, data: Any) -> None:
        self.write("nowhere", data)


def graph_of(*pes: Any) -> WorkflowGraph:
    graph = WorkflowGraph()
    for upstream, downstream in itertools.pairwise(pes):
        graph.connect(upstream, "output", downstream, "input")
    return graph


def test_exception_names_pe_instance_and_unit(mapping):
    graph = graph_of(ListSource(range(50)), FailOn(17, id="fragile", instances=1), Collect())
    with pytest.raises(PEError) as caught:
        mapping.run(graph)
    error = caught.value
    assert (error.pe_id, error.instance, error.phase) == ("fragile", 0, "process")
    assert error.unit_id == "ListSource[0]#18"  # the 18th unit the source emitted
    assert str(error) == (
        "PE 'fragile' instance 0 failed while processing unit ListSource[0]#18 (data: 17): "
        "ZeroDivisionError: division by zero"
    )
    assert isinstance(error.__cause__, ZeroDivisionError)


def test_a_failed_run_tears_down_in_the_failing_process(mapping, tmp_path):
    """What setup acquired is released where the run failed (everywhere in one process)."""
    graph = graph_of(ListSource(range(50)), HoldsFile(tmp_path, bad=17, instances=3),
                     HoldsFile(tmp_path, id="after", instances=2), Collect())
    with pytest.raises(PEError, match="unit 17 refused"):
        mapping.run(graph)
    closed = {path.name: path.read_text().split() for path in tmp_path.glob("*.closed")}
    # the failing instance: torn down without its flush
    assert any(name.startswith("HoldsFile-") and flushed == "0"
               for name, (_, flushed) in closed.items()), closed
    if mapping.name in ("simple", "mpi"):  # one process, or every rank stopped by an alarm
        assert sorted(path.name for path in tmp_path.glob("*.open")) == []


class Hang(IterativePE):
    """Pass units through; hang (sleep for days) on the unit equal to ``bad``."""

    def __init__(self, bad: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bad = bad

    def apply(self, data: Any) -> Any:
        if data == self.bad:
            time.sleep(1e6)
        return data


def test_a_hung_unit_fails_the_run_after_unit_timeout(mapping):
    """The run's unit_timeout ends a hung PE, naming PE, instance and unit, on every mapping."""
    graph = graph_of(ListSource(range(20)), Hang(7, id="stuck", instances=1), Collect())
    started = time.monotonic()
    with pytest.raises(PEError) as caught:
        mapping.run(graph, unit_timeout=1.0)
    waited = time.monotonic() - started
    error = caught.value
    assert (error.pe_id, error.instance, error.phase) == ("stuck", 0, "process")
    assert error.unit_id == "ListSource[0]#8"
    assert error.cause == "UnitTimeout: the unit took longer than unit_timeout = 1 s"
    assert waited < 60  # not 1e6 s (the bound is loose: this is no benchmark)


def test_a_pe_sets_its_own_unit_timeout(mapping):
    hang = Hang(3, id="stuck", instances=1)
    hang.unit_timeout = 0.5
    graph = graph_of(ListSource(range(5)), hang, Collect())
    with pytest.raises(PEError, match=r"unit ListSource\[0\]#4 .*unit_timeout = 0\.5 s"):
        mapping.run(graph, unit_timeout=3600)  # the PE's own limit wins


def test_unit_timeout_must_be_positive():
    with pytest.raises(engine.EngineError, match="unit_timeout must be a positive number"):
        engine.run(graph_of(ListSource([1]), Collect()), unit_timeout=0)


def test_a_failing_teardown_fails_the_run_and_names_the_pe(mapping):
    graph = graph_of(ListSource(range(5)), FailInPhase("teardown"), Collect())
    with pytest.raises(PEError, match=r"PE 'FailInPhase' instance \d+ failed during teardown: "
                                      r"RuntimeError: cannot close"):
        mapping.run(graph)


@pytest.mark.parametrize("phase", ["setup", "flush"])
def test_exception_in_setup_or_flush(mapping, phase):
    graph = graph_of(ListSource(range(5)), FailInPhase(phase))
    with pytest.raises(PEError, match=f"PE 'FailInPhase' instance \\d+ failed during {phase}: "
                                      "RuntimeError: cannot"):
        mapping.run(graph)


def test_writing_to_an_unknown_port_is_an_error_of_that_pe(mapping):
    graph = graph_of(ListSource([1]), WriteUnknownPort(instances=1))
    with pytest.raises(PEError, match="wrote to unknown output port 'nowhere'"):
        mapping.run(graph)


@pytest.mark.parametrize("how", ["kill", "exit"])
@pytest.mark.parametrize("workers", [1, 3])
def test_dead_worker_is_reported_within_seconds(how, workers):
    graph = graph_of(ListSource(range(10_000)), DieOn(5_000, how), Collect())
    started = time.monotonic()
    with pytest.raises(WorkerDied) as caught:
        engine.run(graph, mapping="multi", workers=workers, batch_size=64)
    # behaviour, not speed: an error, never a hang (generous: start-up on a loaded machine)
    assert time.monotonic() - started < 20
    error = caught.value
    assert "DieOn[0]" in error.hosted
    if how == "kill":
        assert error.exitcode == -signal.SIGKILL
        assert "was killed by signal SIGKILL" in str(error)
    else:
        assert error.exitcode == 3
        assert "exited with code 3 before finishing" in str(error)


def test_unknown_mapping_lists_the_available_ones():
    with pytest.raises(MappingNotFound) as caught:
        engine.run(graph_of(ListSource([1]), Collect()), mapping="nope")
    assert str(caught.value).startswith("unknown mapping 'nope'; available mappings: ")
    assert "multi" in caught.value.available and "simple" in caught.value.available


def test_unknown_option_is_rejected():
    with pytest.raises(engine.EngineError, match=r"does not accept option.*bogus"):
        engine.run(graph_of(ListSource([1]), Collect()), mapping="multi", bogus=1)


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import time, sys
    import engine
    from engine import IterativePE, WorkflowGraph
    from engine.testing import ListSource, Collect

    class Slow(IterativePE):
        def apply(self, data):
            time.sleep(0.01)
            return data

    graph = WorkflowGraph()
    a, b, c = ListSource(range(100000)), Slow(), Collect()
    graph.connect(a, "output", b, "input")
    graph.connect(b, "output", c, "input")
    print("started", flush=True)
    try:
        engine.run(graph, mapping="multi", workers=3)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    """
)


def test_ctrl_c_stops_every_worker(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(CTRL_C_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
        start_new_session=True, env={**os.environ, "PYTHONPATH": os.getcwd()},
        # A shell without job control starts background jobs (a CI script run with '&',
        # nohup) with SIGINT ignored, and an ignored signal stays ignored across exec.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    # the coordinator and its three workers (busy at once: 100000 units are waiting)
    wait_until(lambda: len(group_members(process.pid)) >= 4, 30, "the three workers to start")
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 130
    assert "interrupted" in out
    wait_until(lambda: not group_members(process.pid), 10,
               "every worker of the interrupted run to exit")


class EmitLambda(IterativePE):
    def apply(self, data: Any) -> Any:
        return lambda: data  # fine in one process, cannot be pickled


def test_unpicklable_units_are_named_when_they_must_cross_processes():
    graph = graph_of(ListSource([1, 2]), EmitLambda(id="maker", instances=1),
                     Collect(instances=1))
    assert len(engine.run(graph, mapping="simple").output("Collect")) == 2
    with pytest.raises(engine.EngineError) as caught:
        engine.run(graph, mapping="multi", workers=3)
    message = str(caught.value)
    assert "units sent by maker[0] to Collect[0] cannot cross processes" in message
    assert "pickle" in message
