"""The pure input-parsing layer: targets, module loading, graph lookup, -d translation."""

from __future__ import annotations

import contextlib
import sys
import types

import pytest
from cli_helpers import WORKFLOWS

from dare_cli.errors import DareUsageError
from dare_cli.loading import (
    Target,
    build_inputs,
    find_graph,
    import_user_module,
    inputs_from_json,
    load_graph,
    parse_options,
)
from engine import ProcessingElement, WorkflowGraph
from engine.testing import Collect, ListSource


@pytest.mark.parametrize(
    ("spec", "module", "attribute"),
    [
        ("pkg.flows", "pkg.flows", None),
        ("pkg.flows:wordcount", "pkg.flows", "wordcount"),
        ("flows/wc.py:graph", "flows/wc.py", "graph"),
        ("C:\\flows\\wc.py", "C:\\flows\\wc.py", None),
        ("flows.py:", "flows.py:", None),
    ],
)
def test_target_parse(spec, module, attribute):
    assert Target.parse(spec) == Target(module, attribute)


def test_target_is_file():
    assert Target("flows/wc.py").is_file and Target("wc.py").is_file
    assert not Target("pkg.wc").is_file


class Two(ProcessingElement):
    INPUTS = ("a", "b")
    OUTPUTS = ("output",)

    def process(self, port, data):
        return {"output": data}


@pytest.fixture
def graph():
    builder = WorkflowGraph()
    builder.connect(ListSource([1]), "output", Two(), "a")
    builder.add(Collect())
    return builder.build()


def test_inputs_from_json(graph):
    data = {"ListSource": 3, "Two": [{"b": 1}, {"b": 2}], "Collect": [{"y": 1}, 5]}
    assert inputs_from_json(graph, data) == {
        "ListSource": 3,
        ("Two", "b"): [1, 2],
        "Collect": [{"y": 1}, 5],
    }


def test_inputs_from_json_names_the_option(graph):
    with pytest.raises(DareUsageError, match=r"^unknown PE 'X' in -f 'in.json'; PEs: "):
        inputs_from_json(graph, {"X": 1}, "-f 'in.json'")


def test_build_inputs(graph):
    assert build_inputs(graph, None, None) is None
    assert build_inputs(graph, 4, None) == 4
    assert build_inputs(graph, 2, {"Collect": [1]}) == {"Collect": [1], "ListSource": 2}
    with pytest.raises(DareUsageError, match="port 'a': it is not an unconnected input"):
        build_inputs(graph, None, {"Two": [{"a": 1}]})


def test_parse_options():
    assert parse_options(["n=3", "name=spawn", "x=[1, 2]", "empty="]) == {
        "n": 3, "name": "spawn", "x": [1, 2], "empty": ""
    }
    with pytest.raises(DareUsageError):
        parse_options(["1x=2"])


def test_find_graph_prefers_graph_attribute():
    module = types.ModuleType("flows")
    module.other = WorkflowGraph()
    module.graph = WorkflowGraph()
    assert find_graph(module) is module.graph
    assert find_graph(module, "other") is module.other


def test_find_graph_counts_aliases_once():
    module = types.ModuleType("flows")
    module.a = module.b = WorkflowGraph()
    module._private = WorkflowGraph()
    assert find_graph(module) is module.a


def test_built_graph_is_accepted(tmp_path):
    path = tmp_path / "built_flow.py"
    path.write_text(
        "from engine import WorkflowGraph\nfrom engine.testing import Collect, ListSource\n"
        "_builder = WorkflowGraph()\n"
        "_builder.connect(ListSource([1]), 'output', Collect(), 'input')\n"
        "built = _builder.build()\n"
    )
    assert list(load_graph(f"{path}:built").nodes) == ["ListSource", "Collect"]


def test_file_named_like_a_stdlib_module_does_not_shadow_it(tmp_path):
    path = tmp_path / "json.py"
    path.write_text("VALUE = 1\n")
    module = import_user_module(str(path))
    assert module.VALUE == 1
    assert module.__name__ != "json"
    assert sys.modules["json"].__name__ == "json" and hasattr(sys.modules["json"], "loads")


def test_file_can_import_its_siblings(tmp_path):
    (tmp_path / "sibling_helper_mod.py").write_text("ITEMS = [4, 5]\n")
    path = tmp_path / "uses_sibling.py"
    path.write_text(
        "from sibling_helper_mod import ITEMS\n"
        "from engine import WorkflowGraph\nfrom engine.testing import Collect, ListSource\n"
        "graph = WorkflowGraph()\n"
        "graph.connect(ListSource(ITEMS), 'output', Collect(), 'input')\n"
    )
    assert load_graph(str(path)).nodes["ListSource"].pe.items == [4, 5]


def test_user_module_is_imported_inside_dispel4py_aliases(monkeypatch):
    """If ``engine.compat.dispel4py`` provides ``aliases()``, imports happen inside it."""
    events = []

    @contextlib.contextmanager
    def aliases():
        events.append("enter")
        yield
        events.append("exit")

    fake = types.ModuleType("engine.compat.dispel4py")
    fake.aliases = aliases
    monkeypatch.setitem(sys.modules, "engine.compat.dispel4py", fake)
    load_graph(str(WORKFLOWS / "wf_pipeline.py"))
    assert events == ["enter", "exit"]


def test_dispel4py_example_runs_when_compat_is_installed():
    compat = pytest.importorskip("engine.compat.dispel4py")
    if not hasattr(compat, "aliases"):
        pytest.skip("engine.compat.dispel4py has no aliases() yet")
    import engine.examples
    from engine import run

    path = f"{engine.examples.__path__[0]}/wordcount.py"
    result = run(load_graph(path), 2)
    counts = dict(value for values in result.outputs["CountWords"].values() for value in values)
    assert counts["it"] == 16 and counts["wisdom"] == 2


def test_a_stdlib_named_sibling_does_not_shadow_it_in_spawned_workers(tmp_path):
    """Loading a file puts its folder on sys.path; a spawned worker must still get the real json."""
    import multiprocessing

    (tmp_path / "json.py").write_text("raise ImportError('shadowed the standard json')\n")
    path = tmp_path / "user_flow_spawn.py"
    path.write_text("VALUE = 2\n")
    assert import_user_module(str(path)).VALUE == 2
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply_async(_json_in_worker).get(timeout=60) == "[1]"


def _json_in_worker() -> str:
    import json

    return json.dumps([1])
