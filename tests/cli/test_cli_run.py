"""``dare run``: outputs, inputs (-i/-d/-f), options, configuration, on every mapping."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_helpers import MAPPINGS, WORKFLOWS, workflow


@pytest.fixture(params=MAPPINGS)
def mapping_name(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def ordered(values: list[Any], mapping_name: str) -> list[Any]:
    """Sorted unless the mapping is ``simple`` (the only one with a deterministic order)."""
    return values if mapping_name == "simple" else sorted(values, key=repr)


def test_json_outputs_and_summary(run_json, mapping_name):
    data = run_json(workflow("wf_pipeline"), "--mapping", mapping_name, "-n", "3")
    assert ordered(data["outputs"]["Collect"]["output"], mapping_name) == [2, 4, 6]
    summary = data["summary"]
    assert summary["mapping"] == mapping_name
    assert summary["pes"]["double"] == {**summary["pes"]["double"], "units_in": 3, "units_out": 3}
    assert set(summary["pes"]) == {"ListSource", "double", "Collect"}


def test_human_output_groups_values_under_headers(cli):
    result = cli("run", workflow("wf_pipeline"))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["Collect.output:", "  2", "  4", "  6"]
    assert "run summary" in result.stderr
    assert "mapping simple" in result.stderr


def test_quiet_prints_results_only(cli):
    result = cli("-q", "run", workflow("wf_pipeline"))
    assert result.exit_code == 0
    assert result.stdout.startswith("Collect.output:")
    assert result.stderr == ""


def test_values_that_are_not_json_are_reprs(cli):
    result = cli("run", workflow("wf_ports", "sets"), "--json", "-d", '{"AsSet": [[1, 2]]}')
    assert json.loads(result.stdout)["outputs"] == {"Collect": {"output": ["frozenset({1, 2})"]}}
    human = cli("run", workflow("wf_ports", "sets"), "-d", '{"AsSet": [[1, 2]]}')
    assert human.stdout.splitlines() == ["Collect.output:", "  frozenset({1, 2})"]


def test_dotted_module_name(run_json, monkeypatch):
    monkeypatch.syspath_prepend(str(WORKFLOWS))
    data = run_json("wf_pipeline:graph")
    assert data["outputs"]["Collect"]["output"] == [2, 4, 6]


def test_iterations(run_json, mapping_name):
    data = run_json(workflow("wf_pipeline", "counting"), "-i", "3", "-m", mapping_name)
    assert ordered(data["outputs"]["double"]["output"], mapping_name) == [0, 20, 40]


def test_data_items_of_a_source(run_json, mapping_name):
    data = run_json(workflow("wf_pipeline", "counting"), "-m", mapping_name,
                    "-d", '{"Numbers": [5, 7]}')
    assert ordered(data["outputs"]["double"]["output"], mapping_name) == [100, 140]


def test_data_count_of_a_source(run_json):
    data = run_json(workflow("wf_pipeline", "counting"), "-d", '{"Numbers": 2}')
    assert data["outputs"]["double"]["output"] == [0, 20]


def test_data_feeds_an_unconnected_input(run_json, mapping_name):
    data = run_json(workflow("wf_ports", "squares"), "-m", mapping_name,
                    "-d", '{"Square": [1, 2, 3]}')
    assert ordered(data["outputs"]["Collect"]["output"], mapping_name) == [1, 4, 9]


def test_dispel4py_port_dicts_feed_their_ports(run_json, mapping_name):
    inputs = {"Join": [{"left": 1}, {"right": 2}, {"left": 3, "right": 4}]}
    data = run_json(workflow("wf_ports", "joins"), "-m", mapping_name, "-d", json.dumps(inputs))
    assert sorted(data["outputs"]["Collect"]["output"]) == [
        "left:1", "left:3", "right:2", "right:4"
    ]


def test_dicts_not_keyed_by_ports_are_data(run_json):
    data = run_json(workflow("wf_ports", "echo"), "-d", '{"Collect": [{"x": 1}, {"input": 2}]}')
    assert data["outputs"]["Collect"]["output"] == [{"x": 1}, {"input": 2}]
    data = run_json(workflow("wf_ports", "echo"), "-d", '{"Collect": [{"input": 2}]}')
    assert data["outputs"]["Collect"]["output"] == [2]


def test_inputs_from_file(run_json, tmp_path, mapping_name):
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps({"Square": [4, 5]}))
    data = run_json(workflow("wf_ports", "squares"), "-f", path, "-m", mapping_name)
    assert ordered(data["outputs"]["Collect"]["output"], mapping_name) == [16, 25]


def test_iterations_with_data_for_other_pes(run_json):
    data = run_json(workflow("wf_pipeline", "counting"), "-i", "2", "-d", '{"Numbers": [1]}')
    assert data["outputs"]["double"]["output"] == [20]


def test_flush_output_on_every_mapping(run_json, mapping_name):
    data = run_json(workflow("wf_ports", "totals"), "-m", mapping_name,
                    "-d", '{"Square": [1, 2, 3]}')
    assert data["outputs"]["Total"]["output"] == [14]


def test_group_by_with_several_instances(run_json, mapping_name):
    data = run_json(workflow("wf_grouped"), "-m", mapping_name, "-n", "2", "-i", "2")
    assert sorted(map(tuple, data["outputs"]["Count"]["output"])) == [
        ("a", 6), ("b", 4), ("c", 2)
    ]
    assert data["summary"]["pes"]["Count"]["instances"] == 3


def test_mapping_option(run_json):
    data = run_json(workflow("wf_pipeline"), "--option", "timing=true")
    assert data["outputs"]["Collect"]["output"] == [2, 4, 6]
    data = run_json(workflow("wf_pipeline"), "-m", "multi", "-n", "2", "--option", "batch_size=1")
    assert sorted(data["outputs"]["Collect"]["output"]) == [2, 4, 6]


def test_config_gives_defaults(cli, tmp_path):
    config = tmp_path / "dare.toml"
    config.write_text('[run]\nmapping = "multi"\nworkers = 2\niterations = 2\n'
                      "[run.options]\nbatch_size = 4\n")
    result = cli("--config", config, "run", workflow("wf_pipeline", "counting"), "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["summary"]["mapping"] == "multi"
    assert data["summary"]["workers"] == 2
    assert sorted(data["outputs"]["double"]["output"]) == [0, 20]


def test_flags_override_config(cli, tmp_path):
    config = tmp_path / "dare.toml"
    config.write_text('[run]\nmapping = "multi"\nworkers = 2\niterations = 2\n')
    result = cli("--config", config, "run", workflow("wf_pipeline", "counting"), "--json",
                 "-m", "simple", "-i", "1")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["summary"]["mapping"] == "simple"
    assert data["outputs"]["double"]["output"] == [0]


def test_pe_logs_go_to_stderr(cli, tmp_path):
    module = tmp_path / "logging_flow.py"
    module.write_text(
        "from engine import IterativePE, WorkflowGraph\n"
        "from engine.testing import ListSource\n"
        "class Talk(IterativePE):\n"
        "    def apply(self, data):\n"
        "        self.log(f'saw {data}')\n"
        "        return data\n"
        "graph = WorkflowGraph()\n"
        "graph.connect(ListSource([7]), 'output', Talk(), 'input')\n"
    )
    result = cli("run", module)
    assert result.exit_code == 0
    assert "saw 7" in result.stderr
    assert "saw 7" not in result.stdout
    quiet = cli("-q", "run", module)
    assert "saw 7" not in quiet.stderr
