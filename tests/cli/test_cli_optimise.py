"""``dare run --monitor`` and ``--optimise``, and ``dare graph show --optimise``."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import error_line

EXAMPLE = "engine.examples.parallel_sum"


def test_monitor_then_optimise_gives_the_same_total(cli, tmp_path: Path) -> None:
    record = tmp_path / "sum.monitor.json"
    first = cli("run", EXAMPLE, "-i", "3", "-m", "multi", "-n", "4", "--json",
                "--monitor", str(record))
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["outputs"]["Total"]["output"] == [29700]
    data = json.loads(record.read_text())
    assert data["pes"]["Doubler"]["units_in"] == 300
    assert data["pes"]["Doubler"]["instances"] == 2
    for strategy in ("naive", "staging"):
        again = cli("run", EXAMPLE, "-i", "3", "-m", "multi", "-n", "4", "--json",
                    "--optimise", strategy, "--record", str(record))
        assert again.exit_code == 0, again.stderr
        assert json.loads(again.stdout)["outputs"]["Total"]["output"] == [29700]


def test_simple_monitoring_is_timed(cli, tmp_path: Path) -> None:
    record = tmp_path / "simple.json"
    result = cli("run", EXAMPLE, "--monitor", str(record))
    assert result.exit_code == 0, result.stderr
    data = json.loads(record.read_text())
    assert data["mapping"] == "simple" and data["timed"] is True
    assert data["pes"]["Doubler"]["process_seconds"] > 0


def test_graph_show_prints_the_optimised_plan(cli) -> None:
    result = cli("graph", "show", EXAMPLE, "--optimise", "staging", "-n", "4")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "placement on 4 workers (optimised: staging):" in lines
    assert "  worker 1: Doubler[0], PartialSum[0]" in lines
    assert "  Doubler.output -> PartialSum.input" in lines
    shown = cli("graph", "show", EXAMPLE, "--optimise", "staging", "-n", "4", "--format", "json")
    plan = json.loads(shown.stdout)["plan"]
    assert plan["strategy"] == "staging"
    assert plan["pinned"] == ["Doubler.output -> PartialSum.input"]


def test_optimise_errors_are_usage_errors(cli, tmp_path: Path) -> None:
    naive = cli("run", EXAMPLE, "-m", "multi", "--optimise", "naive")
    assert naive.exit_code == 2
    assert "needs a monitoring record" in error_line(naive)
    missing = cli("run", EXAMPLE, "-m", "multi", "--optimise", "naive",
                  "--record", str(tmp_path / "none.json"))
    assert missing.exit_code == 2 and "does not exist" in error_line(missing)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "dare-monitor/1", "connections": [],
                                 "pes": {"Elsewhere": {"process_seconds": 1}}}))
    foreign = cli("graph", "show", EXAMPLE, "--optimise", "naive", "--record", str(other))
    assert foreign.exit_code == 2 and "Elsewhere" in error_line(foreign)
    unknown = cli("run", EXAMPLE, "-m", "multi", "--optimise", "fastest")
    assert unknown.exit_code == 2 and "unknown optimisation 'fastest'" in error_line(unknown)
    simple = cli("run", EXAMPLE, "--optimise", "staging")
    assert simple.exit_code == 2 and "single placement" in error_line(simple)
    orphan = cli("run", EXAMPLE, "--record", str(other))
    assert orphan.exit_code == 2 and "--record is read by --optimise" in error_line(orphan)
