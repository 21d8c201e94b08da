"""``dare ra``: usage errors, dry runs, stage commands and a real run of the console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ra"))
from ra_helpers import example_config


def test_examples_are_listed(cli):
    result = cli("ra", "examples", "--json")
    assert result.exit_code == 0
    assert list(json.loads(result.stdout)) == ["ridgecrest"]


def test_dry_run_prints_the_plan_and_runs_nothing(cli, tmp_path):
    result = cli("ra", "run", "--example", "ridgecrest", "--out", tmp_path / "run",
                 "--mapping", "preprocess=multi:2", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "event:" in result.stdout and "event.xml" in result.stdout
    assert "preprocess" in result.stderr and "to run" in result.stderr
    assert not (tmp_path / "run").exists()


def test_config_or_example_is_required(cli):
    result = cli("ra", "run")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: give a CONFIG file or --example NAME (one of them)"


def test_unknown_example(cli):
    result = cli("ra", "run", "--example", "tohoku")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: unknown example 'tohoku'; examples: ridgecrest"


def test_unknown_config_key_names_key_file_and_suggestion(cli, tmp_path):
    config = tmp_path / "ra.toml"
    config.write_text('[download]\nradius = 100.0\n')
    result = cli("ra", "run", config)
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert message.startswith(f"error: {config} [download]: unknown key 'radius' "
                              "(did you mean 'radius_km'?)")


def test_a_partial_table_names_the_missing_keys(cli, tmp_path):
    config = tmp_path / "ra.toml"
    config.write_text('[simulate.medium]\nvp = 6000.0\n')
    result = cli("ra", "run", config)
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {config} [simulate.medium]: missing key(s) "
                                     "'vs', 'rho' (the table needs vp, vs, rho)")


def test_wrong_value_type_and_unknown_table(cli, tmp_path):
    config = tmp_path / "ra.toml"
    config.write_text('[pgm]\nperiods = "0.3"\n')
    result = cli("ra", "run", config)
    assert result.exit_code == 2
    assert "[pgm]: 'periods' must be an array" in result.stderr
    config.write_text('[preprocesing]\n')
    result = cli("ra", "run", config)
    assert result.exit_code == 2
    assert "unknown table [preprocesing] (did you mean 'preprocess'?)" in result.stderr


def test_unknown_mapping_and_stage(cli):
    result = cli("ra", "run", "--example", "ridgecrest", "--mapping", "preprocess=bogus")
    assert result.exit_code == 2
    assert "unknown mapping 'bogus'; available mappings: " in result.stderr
    result = cli("ra", "run", "--example", "ridgecrest", "--mapping", "prepro=multi")
    assert result.exit_code == 2
    assert "unknown stage 'prepro' (did you mean 'preprocess'?)" in result.stderr


def test_a_stage_alone_without_its_inputs_fails(cli, tmp_path):
    result = cli("ra", "pgm", "--example", "ridgecrest", "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert ("error: stage pgm failed: needs the output of stage(s) download, preprocess, "
            "norm, match: run them first") in result.stderr


def test_console_script_runs_stage_by_stage_then_whole(tmp_path):
    config = example_config(tmp_path, tmp_path / "run", ["CI.CCC", "CI.WBM"])
    dare = [sys.executable, "-m", "dare_cli"]
    for stage in ("download", "simulate"):
        done = subprocess.run([*dare, "-q", "ra", stage, str(config)], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    done = subprocess.run([*dare, "ra", "run", str(config), "--json"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"]
    statuses = {stage["name"]: stage["status"] for stage in report["stages"]}
    assert statuses["download"] == statuses["simulate"] == "skipped"
    assert statuses["preprocess"] == statuses["plot"] == "ran"
    assert sorted(report["stations"]) == ["CI.CCC", "CI.WBM"]
    assert (tmp_path / "run" / "pgm.csv").exists()
