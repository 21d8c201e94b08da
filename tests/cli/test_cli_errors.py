"""Bad input and failed runs: exit codes and the exact one-line messages."""

from __future__ import annotations

import json

import pytest
from cli_helpers import MAPPINGS, error_line, workflow

from engine.mappings import available


def test_unknown_mapping(cli):
    result = cli("run", workflow("wf_pipeline"), "--mapping", "nope")
    assert result.exit_code == 2
    assert error_line(result) == (
        f"error: unknown mapping 'nope'; available mappings: {', '.join(sorted(available()))}"
    )
    assert result.stdout == ""


def test_unknown_mapping_in_config(cli, tmp_path):
    config = tmp_path / "dare.toml"
    config.write_text('[run]\nmapping = "nope"\n')
    result = cli("--config", config, "run", workflow("wf_pipeline"))
    assert result.exit_code == 2
    assert error_line(result).startswith("error: unknown mapping 'nope'; available mappings:")


def test_bad_module(cli):
    result = cli("run", "no_such_pkg.flows")
    assert result.exit_code == 2
    assert error_line(result) == (
        "error: cannot import 'no_such_pkg.flows': No module named 'no_such_pkg'"
    )
    assert "Traceback" not in result.stderr


def test_missing_file(cli):
    result = cli("run", "missing_flow.py")
    assert result.exit_code == 2
    assert error_line(result) == "error: cannot import 'missing_flow.py': no such file"


def test_module_raising_on_import(cli):
    target = workflow("wf_broken")
    result = cli("run", target)
    assert result.exit_code == 2
    assert error_line(result) == (
        f"error: cannot import {target!r}: RuntimeError: this module is broken"
    )


def test_malformed_data_json(cli):
    text = '{"Numbers": [1,'
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        reason = str(exc)
    result = cli("run", workflow("wf_pipeline", "counting"), "-d", text)
    assert result.exit_code == 2
    assert error_line(result) == f"error: -d is not valid JSON: {reason}"
    assert reason == "Expecting value: line 1 column 16 (char 15)"


def test_malformed_file_json(cli, tmp_path):
    path = tmp_path / "inputs.json"
    path.write_text("{nope")
    result = cli("run", workflow("wf_pipeline"), "-f", path)
    assert result.exit_code == 2
    assert error_line(result).startswith(f"error: -f '{path}' is not valid JSON: Expecting")


def test_missing_data_file(cli, tmp_path):
    path = tmp_path / "absent.json"
    result = cli("run", workflow("wf_pipeline"), "-f", path)
    assert result.exit_code == 2
    assert error_line(result) == f"error: cannot read -f '{path}': No such file or directory"


def test_data_and_file_together(cli, tmp_path):
    path = tmp_path / "inputs.json"
    path.write_text("{}")
    result = cli("run", workflow("wf_pipeline"), "-f", path, "-d", "{}")
    assert result.exit_code == 2
    assert error_line(result) == "error: give the inputs with -d or with -f, not both"


def test_unknown_pe_id(cli):
    result = cli("run", workflow("wf_pipeline"), "-d", '{"Nope": [1]}')
    assert result.exit_code == 2
    assert error_line(result) == "error: unknown PE 'Nope' in -d; PEs: ListSource, double, Collect"


def test_data_not_an_object(cli):
    result = cli("run", workflow("wf_pipeline"), "-d", "[1, 2]")
    assert result.exit_code == 2
    assert error_line(result) == (
        'error: -d must be a JSON object {"PE id": count or list}, not a list'
    )


@pytest.mark.parametrize(
    ("graph", "data", "message"),
    [
        ("squares", '{"Square": 3}',
         "error: -d: PE 'Square' is not a source, so it takes a list of items, "
         "not an iteration count"),
        ("joins", '{"Join": [1, 2]}',
         "error: -d: PE 'Join' has 2 unconnected input ports (left, right): give its items "
         'as [{"left": item}, ...]'),
        ("squares", '{"Square": "abc"}',
         "error: -d: input of PE 'Square' must be an iteration count or a list, not a string"),
        ("squares", '{"Collect": [1]}',
         "error: -d: PE 'Collect' has no unconnected input port: other PEs feed it"),
        ("squares", '{"Collect": [{"input": 1}]}',
         "error: -d: cannot feed PE 'Collect' port 'input': it is not an unconnected input"),
    ],
)
def test_inputs_a_pe_cannot_take(cli, graph, data, message):
    result = cli("run", workflow("wf_ports", graph), "-d", data)
    assert result.exit_code == 2
    assert error_line(result) == message


def test_graph_not_found(cli):
    target = workflow("wf_pipeline")
    result = cli("run", f"{target}:nothere")
    assert result.exit_code == 2
    assert error_line(result) == (
        f"error: graph 'nothere' not found in {target!r}; graphs in it: graph, counting"
    )


def test_attribute_that_is_not_a_graph(cli):
    target = workflow("wf_pipeline")
    result = cli("graph", "show", f"{target}:not_a_graph")
    assert result.exit_code == 2
    assert error_line(result) == (
        f"error: {target}:not_a_graph is 'int', not a WorkflowGraph; "
        f"graphs in {target!r}: graph, counting"
    )


def test_several_graphs(cli):
    target = workflow("wf_several")
    result = cli("run", target)
    assert result.exit_code == 2
    assert error_line(result) == (
        f"error: several workflow graphs in {target!r}: first, second; "
        f"choose one as {target}:GRAPH"
    )


def test_no_graph(cli):
    target = workflow("wf_empty")
    result = cli("graph", "show", target)
    assert result.exit_code == 2
    assert error_line(result) == (
        f"error: no workflow graph in {target!r}: define a WorkflowGraph named 'graph' "
        f"or name one as {target}:GRAPH"
    )


def test_unknown_mapping_option(cli):
    result = cli("run", workflow("wf_pipeline"), "--option", "bogus=1")
    assert result.exit_code == 2
    assert error_line(result) == (
        "error: mapping 'simple' does not accept option(s) bogus (accepted: timing, "
        "unit_timeout)"
    )


def test_malformed_option(cli):
    result = cli("run", workflow("wf_pipeline"), "--option", "batch_size")
    assert result.exit_code == 2
    assert error_line(result) == (
        "error: --option expects KEY=VALUE with KEY a name, not 'batch_size'"
    )


def test_click_usage_errors_exit_2(cli):
    assert cli("run", workflow("wf_pipeline"), "-n", "0").exit_code == 2
    assert cli("run").exit_code == 2
    assert cli("graph", "show", workflow("wf_pipeline"), "--format", "dot").exit_code == 2


@pytest.mark.parametrize("mapping_name", MAPPINGS)
def test_failed_run_exits_1_with_one_line(cli, mapping_name):
    result = cli("run", workflow("wf_failing", "boom"), "-m", mapping_name, "-n", "3")
    assert result.exit_code == 1
    assert error_line(result) == (
        "error: PE 'Explode' instance 0 failed while processing unit ListSource[0]#2 "
        "(data: 2): ValueError: boom"
    )
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("mapping_name", MAPPINGS)
def test_verbose_failed_run_shows_the_traceback(cli, mapping_name):
    result = cli("-v", "run", workflow("wf_failing", "boom"), "-m", mapping_name, "-n", "3")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert "boom" in result.stderr
    assert error_line(result).startswith("error: PE 'Explode' instance 0 failed")


def test_verbose_usage_error_shows_the_cause(cli):
    result = cli("-v", "run", workflow("wf_broken"))
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert "RuntimeError" in result.stderr


def test_interrupt_exits_130(cli):
    result = cli("run", workflow("wf_failing", "interrupt"))
    assert result.exit_code == 130
    assert error_line(result) == "error: interrupted"


@pytest.mark.parametrize("mapping_name", ["simple", "multi"])
def test_unit_timeout_ends_a_source_that_never_returns(cli, mapping_name, tmp_path,
                                                       monkeypatch):
    monkeypatch.setenv("DARE_TEST_MARKER", str(tmp_path / "started"))
    result = cli("run", workflow("wf_slow"), "-m", mapping_name, "--unit-timeout", "0.5")
    assert result.exit_code == 1
    assert error_line(result) == (
        "error: PE 'Forever' instance 0 failed while processing unit Forever[0]@0 "
        "(data: 0): UnitTimeout: the unit took longer than unit_timeout = 0.5 s")


def test_unit_timeout_must_be_positive_exit_2(cli):
    result = cli("run", workflow("wf_pipeline"), "--unit-timeout", "0")
    assert result.exit_code == 2
    assert error_line(result) == (
        "error: unit_timeout must be a positive number of seconds, not 0.0")
