"""The dispel4py layer's per-unit paths give dispel4py's results, short path or generic.

``IterativePE``, ``ConsumerPE``, ``ProducerPE`` and ``SimpleFunctionPE`` whose ``process`` is
dispel4py's own are called without the ``inputs`` dicts; every other PE goes through
``process(inputs)``. The module below mixes both, with the cases where the two could differ,
and its results were taken from dispel4py 2.9.1's ``simple`` mapping (``dispel4py simple
d4py_shapes.py -i 1``; re-checked by :func:`test_shapes_match_the_real_dispel4py`).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import engine
from engine import EngineError, PEError
from engine.compat import dispel4py as d4p
from engine.compat.dispel4py import aliases

MODULE = textwrap.dedent(
    '''
    from dispel4py.base import ConsumerPE, IterativePE, ProducerPE, create_iterative_chain
    from dispel4py.core import GenericPE
    from dispel4py.workflow_graph import WorkflowGraph


    class Numbers(ProducerPE):
        """Writes 1..4 with ``write``, then returns 5."""

        def _process(self, inputs):
            for i in range(1, 5):
                self.write("output", i)
            return 5


    class Running(IterativePE):
        """State set by ``preprocess`` and kept across calls; ``None`` for even inputs."""

        single = True  # one instance on every mapping (its running total is one)

        def preprocess(self):
            self.total = 100

        def _process(self, data):
            self.total += data
            return self.total if data % 2 else None


    class Tagged(IterativePE):
        """Overrides ``write``: returned units go through it too."""

        def write(self, name, data):
            GenericPE.write(self, name, ("tagged", data))

        def _process(self, data):
            return data * 10


    class Fan(IterativePE):
        """Writes several units (``None`` among them, one through ``_write``), returns 0."""

        def _process(self, data):
            self.write("output", data)
            self.write("output", None)
            self._write("output", -data)
            return 0


    class Squares(IterativePE):
        """Overrides ``process`` (the generic path), skipping ``None``."""

        def process(self, inputs):
            value = inputs["input"]
            if value is not None:
                return {"output": value * value}
            return None


    class Pair(GenericPE):
        """Two inputs, two outputs; returns a dict and writes; postprocess writes its count."""

        single = True

        def __init__(self):
            GenericPE.__init__(self)
            self._add_input("left_in")
            self._add_input("right_in")
            self._add_output("left")
            self._add_output("right")
            self.calls = 0

        def process(self, inputs):
            self.calls += 1
            if "left_in" in inputs:
                self.write("right", ("from left", inputs["left_in"]))
                return {"left": inputs["left_in"]}
            return {"left": None, "right": inputs["right_in"]}

        def postprocess(self):
            self.write("left", ("calls", self.calls))


    class Summer(ConsumerPE):
        """A consumer with state; postprocess writes the total on an output it adds."""

        single = True

        def __init__(self):
            ConsumerPE.__init__(self)
            self._add_output("output")
            self.total = 0

        def _process(self, data):
            self.total += data

        def postprocess(self):
            self.write("output", self.total)


    def add(data, n):
        return data + n


    def double(data):
        return 2 * data


    numbers = Numbers()
    running = Running()
    tagged = Tagged()
    fan = Fan()
    squares = Squares()
    pair = Pair()
    summer = Summer()
    chain = create_iterative_chain([(add, {"n": 3}), double])

    graph = WorkflowGraph()
    graph.connect(numbers, "output", running, "input")
    graph.connect(running, "output", tagged, "input")
    graph.connect(numbers, "output", fan, "input")
    graph.connect(fan, "output", squares, "input")
    graph.connect(fan, "output", pair, "left_in")
    graph.connect(running, "output", pair, "right_in")
    graph.connect(numbers, "output", chain, "input")
    graph.connect(chain, "output", summer, "input")
    '''
)

FAN = [(i, None, -i, 0) for i in range(1, 6)]
#: dispel4py 2.9.1, ``simple`` mapping, ``-i 1`` (ids without dispel4py's counters).
EXPECTED: dict[str, dict[str, list[Any]]] = {
    "Tagged": {"output": [("tagged", 1010), ("tagged", 1060), ("tagged", 1150)]},
    "Squares": {"output": [v * v for i in range(1, 6) for v in (i, -i, 0)]},
    "Pair": {
        "left": [None] * 3 + [v for unit in FAN for v in unit] + [("calls", 23)],
        "right": [101, 106, 115] + [("from left", v) for unit in FAN for v in unit],
    },
    "Summer": {"output": [60]},
}


def _sorted(values: list[Any]) -> list[Any]:
    return sorted(values, key=repr)


@pytest.fixture
def shapes(tmp_path: Path) -> Any:
    path = tmp_path / "d4py_shapes.py"
    path.write_text(MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        with aliases():
            sys.modules.pop("d4py_shapes", None)
            yield importlib.import_module("d4py_shapes")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("d4py_shapes", None)


def test_shapes_give_dispel4py_results(shapes, mapping):
    outputs = mapping.run(shapes.graph, {"Numbers": 1}).outputs
    assert set(outputs) == set(EXPECTED)
    for pe, ports in EXPECTED.items():
        for port, values in ports.items():
            # dispel4py runs PE by PE; dare depth-first: only Pair's interleaving differs.
            assert _sorted(outputs[pe][port]) == _sorted(values), (pe, port)
    if mapping.ordered:
        for pe in ("Tagged", "Squares", "Summer"):
            assert outputs[pe] == EXPECTED[pe]
        assert outputs["Pair"]["left"][-1] == ("calls", 23)


def test_shapes_match_the_real_dispel4py(tmp_path):
    pytest.importorskip("dispel4py.new.processor", reason="stream-d4py is in the dev extra")
    (tmp_path / "d4py_shapes.py").write_text(MODULE)
    script = "import sys; from dispel4py.new.processor import main; sys.argv[0]='dispel4py'; main()"
    out = subprocess.run(
        [sys.executable, "-c", script, "simple", "d4py_shapes.py", "-i", "1"],
        capture_output=True, text=True, check=True, timeout=120, cwd=tmp_path,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("Outputs: "))
    theirs = eval(line.removeprefix("Outputs: "))  # a dict repr printed by dispel4py
    assert {pe.rstrip("0123456789"): ports for pe, ports in theirs.items()} == EXPECTED


def _kernel_of(pe: d4p.GenericPE) -> str:
    """Which handler the mappings get for ``pe`` (set up as a run would)."""
    pe.write = lambda name, data: None  # type: ignore[method-assign]
    pe.setup()
    return str(pe._handle.__qualname__).split(".")[0]


def test_short_paths_only_when_process_is_dispel4py_own():
    class Plain(d4p.IterativePE):
        def _process(self, data: Any) -> Any:
            return data

    class Overridden(d4p.IterativePE):
        def process(self, inputs: dict[str, Any]) -> Any:
            return None

    class Sink(d4p.ConsumerPE):
        def _process(self, data: Any) -> None:
            pass

    class Source(d4p.ProducerPE):
        def _process(self, inputs: dict[str, Any]) -> Any:
            return 1

    two_inputs = Plain()
    two_inputs._add_input("other")
    patched = Plain()
    patched.process = lambda inputs: None  # type: ignore[method-assign]
    assert _kernel_of(Plain()) == "IterativePE"
    assert _kernel_of(d4p.SimpleFunctionPE(abs)) == "IterativePE"
    assert _kernel_of(Sink()) == "ConsumerPE"
    assert _kernel_of(Source()) == "ProducerPE"
    assert _kernel_of(Overridden()) == "GenericPE"
    assert _kernel_of(two_inputs) == "GenericPE"
    assert _kernel_of(patched) == "GenericPE"


def test_simple_function_pe_keeps_its_params_and_no_function_emits_nothing():
    pe = d4p.SimpleFunctionPE(lambda data, n: data + n, {"n": 10})
    written: list[tuple[str, Any]] = []
    pe.write = lambda name, data: written.append((name, data))  # type: ignore[method-assign]
    pe.setup()
    pe._handle("input", 1)
    empty = d4p.SimpleFunctionPE()
    empty.write = lambda name, data: written.append((name, data))  # type: ignore[method-assign]
    empty.setup()
    empty._handle("input", 1)
    assert written == [("output", 11)]


class _Extra(d4p.IterativePE):
    """An iterative PE with a second input: dispel4py's ``inputs['input']`` fails on it."""

    def __init__(self) -> None:
        d4p.IterativePE.__init__(self)
        self._add_input("extra")

    def _process(self, data: Any) -> Any:
        return data


class _Feed(d4p.ProducerPE):
    def _process(self, inputs: dict[str, Any]) -> Any:
        return inputs.get("x", 0)


def test_a_second_input_on_an_iterative_pe_fails_as_in_dispel4py():
    graph = d4p.WorkflowGraph()
    graph.connect(_Feed(), "output", _Extra(), "extra")
    with pytest.raises(PEError, match="KeyError: 'input'"):
        engine.run(graph, {"_Feed": [{"x": 1}]}, mapping="simple")


def test_producer_iterations_get_their_dicts():
    graph = d4p.WorkflowGraph()
    graph.add(_Feed())
    result = engine.run(graph, {"_Feed": [{"x": 3}, {}, {"x": 4}]}, mapping="simple")
    assert result.output("_Feed") == [3, 0, 4]
    assert engine.run(graph, 2, mapping="simple").output("_Feed") == [0, 0]


def test_writing_outside_a_run_is_an_engine_error():
    with pytest.raises(EngineError, match="wrote to 'output' outside a run"):
        _Feed().write("output", 1)
    with pytest.raises(EngineError, match="outside a run"):
        _Feed()._write("output", 1)
