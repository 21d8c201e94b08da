"""``dare graph show`` and the pure renderings behind it."""

from __future__ import annotations

import json

import pytest
from cli_helpers import workflow

from engine import GroupBy, IterativePE, Port, WorkflowGraph
from engine.partition import build_plan
from engine.render import outputs_to_text, render_json, render_mermaid, render_text
from engine.testing import Collect, ListSource


class Weird(IterativePE):
    INPUTS = (Port("input", GroupBy("key")),)

    def apply(self, data):
        return data


@pytest.fixture
def graph():
    builder = WorkflowGraph("demo")
    builder.connect(ListSource([1], id='say "hi"'), "output", Weird(instances=2), "input")
    builder.connect(builder.vertices[1], "output", Collect(), "input")
    return builder.build()


def test_text(graph):
    text = render_text(graph)
    assert text.splitlines()[0] == "graph 'demo': 3 PEs, 2 connections"
    assert "Weird" in text and "in: input (group-by key)" in text and "instances: 2" in text
    assert '  say "hi".output -> Weird.input (group-by key)' in text
    assert text.splitlines()[-1] == "outputs: Collect.output"


def test_text_with_plan(graph):
    text = render_text(graph, build_plan(graph, None, workers=2))
    assert "placement on 2 workers (partitioned: several instances per process):" in text
    assert "  worker 0: " in text and "  worker 1: " in text


def test_mermaid(graph):
    lines = render_mermaid(graph).splitlines()
    assert lines[0] == "flowchart LR"
    assert '    n0["say #quot;hi#quot;"]' in lines
    assert '    n1["Weird \u00d72"]' in lines
    assert '    n0 -->|"output→input (group-by key)"| n1' in lines
    assert '    n1 -->|"output→input (shuffle)"| n2' in lines


def test_json(graph):
    data = json.loads(render_json(graph, build_plan(graph, None, workers=4)))
    assert [node["id"] for node in data["nodes"]] == ['say "hi"', "Weird", "Collect"]
    assert data["nodes"][1]["inputs"] == [{"name": "input", "grouping": "group-by key"}]
    assert data["nodes"][1]["instances"] == 2
    assert data["edges"][0] == {"src": 'say "hi"', "src_port": "output", "dst": "Weird",
                                "dst_port": "input", "grouping": "group-by key"}
    assert data["outputs"] == ["Collect.output"]
    assert data["plan"]["workers"] == 4
    assert data["plan"]["instances"] == {'say "hi"': 1, "Weird": 2, "Collect": 1}


def test_outputs_to_text():
    text = outputs_to_text({"A": {"out": [1, "x"], "err": []}})
    assert text.splitlines() == ["A.out:", "  1", "  'x'", "A.err:"]


def test_show_text(cli):
    result = cli("graph", "show", workflow("wf_grouped"))
    assert result.exit_code == 0
    assert "Pair.output -> Count.input (group-by 0)" in result.stdout
    assert "Count  in: input (group-by 0)  out: output  instances: 3" in result.stdout


def test_show_mermaid(cli):
    result = cli("graph", "show", workflow("wf_grouped"), "--format", "mermaid")
    assert result.exit_code == 0
    assert result.stdout.startswith("flowchart LR\n")
    assert '-->|"output→input (group-by 0)"|' in result.stdout


def test_show_json_with_partitions(cli):
    result = cli("graph", "show", workflow("wf_grouped"), "--format", "json", "--partitions",
                 "--workers", "2")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [edge["grouping"] for edge in data["edges"]] == ["shuffle", "group-by 0"]
    plan = data["plan"]
    assert plan["workers"] == 2 and plan["partitioned"] is True
    assert sorted(label for worker in plan["placement"] for label in worker) == [
        "Count[0]", "Count[1]", "Count[2]", "Pair[0]", "Words[0]"
    ]


def test_show_partitions_without_workers_uses_config(cli, tmp_path):
    config = tmp_path / "dare.toml"
    config.write_text("[run]\nworkers = 5\n")
    result = cli("--config", config, "graph", "show", workflow("wf_grouped"), "--partitions",
                 "--format", "json")
    plan = json.loads(result.stdout)["plan"]
    assert plan == {**plan, "workers": 5, "partitioned": False}


def test_show_does_not_run(cli):
    result = cli("graph", "show", workflow("wf_failing", "boom"))
    assert result.exit_code == 0
    assert "Explode" in result.stdout
