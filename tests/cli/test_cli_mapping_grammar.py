"""One ``--mapping NAME[:N]`` grammar: ``dare run``, ``dare ra``, ``dare climate`` and the files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import error_line, workflow

from engine.pipeline import (
    MappingSpecError,
    parse_mapping,
    parse_stage_mappings,
    resolve_stage_mappings,
)

STAGES = ["download", "simulate", "preprocess", "pgm"]


# -- the parser --------------------------------------------------------------------------------
def test_parse_mapping_name_and_workers():
    assert parse_mapping("multi:2") == ("multi", 2)
    assert parse_mapping(" simple ") == ("simple", None)


@pytest.mark.parametrize(("text", "message"), [
    ("multi:x", "--mapping: the worker count of 'multi:x' must be an integer, not 'x'"),
    ("multi:0", "--mapping: the worker count of 'multi:0' must be >= 1"),
    (":2", "--mapping: expected NAME[:N], not ':2'"),
])
def test_parse_mapping_errors(text, message):
    with pytest.raises(MappingSpecError) as error:
        parse_mapping(text)
    assert str(error.value) == message


def test_stage_values_win_over_the_value_for_every_stage_in_any_order():
    for values in (["pgm=simple", "multi:2"], ["multi:2", "pgm=simple"]):
        assert resolve_stage_mappings(values, STAGES) == {
            "download": ("multi", 2), "simulate": ("multi", 2), "preprocess": ("multi", 2),
            "pgm": ("simple", None)}


def test_workers_alone_keep_the_configured_mapping_and_flags_win_over_the_file():
    base = {"simulate": ("multi", None), "pgm": ("multi", 4)}
    assert resolve_stage_mappings([], STAGES, base, workers=3) == {
        "download": ("simple", 3), "simulate": ("multi", 3), "preprocess": ("simple", 3),
        "pgm": ("multi", 3)}
    assert resolve_stage_mappings(["preprocess=dynamic:5"], STAGES, base) == {
        "simulate": ("multi", None), "pgm": ("multi", 4), "preprocess": ("dynamic", 5)}
    spec = parse_stage_mappings(["multi", "pgm=simple"], STAGES, workers=2)
    assert spec.every == ("multi", 2) and dict(spec.stages) == {"pgm": ("simple", None)}


@pytest.mark.parametrize(("values", "workers", "message"), [
    (["multi:2"], 3, "--mapping multi:2 and --workers 3 disagree: give the number of workers "
                     "once"),
    (["prepro=multi"], None, "--mapping: unknown stage 'prepro' (did you mean 'preprocess'?); "
                             "stages: download, simulate, preprocess, pgm"),
    (["pgm=multi", "pgm=simple"], None, "--mapping: stage 'pgm' is given twice"),
    (["multi", "simple"], None, "--mapping: 'simple' and multi both set every stage; give "
                                "STAGE=NAME[:N] for one stage"),
])
def test_stage_mapping_errors(values, workers, message):
    with pytest.raises(MappingSpecError) as error:
        parse_stage_mappings(values, STAGES, workers=workers)
    assert str(error.value) == message


# -- dare run ----------------------------------------------------------------------------------
def test_run_mapping_with_workers(run_json):
    data = run_json(workflow("wf_pipeline"), "--mapping", "multi:2")
    assert (data["summary"]["mapping"], data["summary"]["workers"]) == ("multi", 2)
    data = run_json(workflow("wf_pipeline"), "-m", "multi:2", "-n", "2")
    assert data["summary"]["workers"] == 2


def test_run_mapping_conflicts_and_unknown_names_are_usage_errors(cli):
    result = cli("run", workflow("wf_pipeline"), "--mapping", "multi:2", "-n", "3")
    assert result.exit_code == 2
    assert error_line(result) == ("error: --mapping multi:2 and --workers 3 disagree: give the "
                                  "number of workers once")
    result = cli("run", workflow("wf_pipeline"), "--mapping", "mult:2")
    assert result.exit_code == 2
    assert error_line(result).endswith("simple (did you mean 'multi'?)")


def test_run_config_mapping_takes_the_grammar(cli, tmp_path):
    config = tmp_path / "dare.toml"
    config.write_text('[run]\nmapping = "multi:2"\n')
    result = cli("--config", config, "run", workflow("wf_pipeline"), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["workers"] == 2
    result = cli("--config", config, "run", workflow("wf_pipeline"), "-n", "3", "--json")
    assert json.loads(result.stdout)["summary"]["workers"] == 3  # the flag wins
    config.write_text('[run]\nmapping = "multi:2"\nworkers = 3\n')
    result = cli("--config", config, "run", workflow("wf_pipeline"))
    assert result.exit_code == 2
    assert error_line(result) == (f"error: key 'run.mapping' in config file '{config}' "
                                  "multi:2 and --workers 3 disagree: give the number of "
                                  "workers once")


# -- dare ra -----------------------------------------------------------------------------------
def _plan(cli, *args):
    result = cli("ra", "run", "--example", "ridgecrest", "--dry-run", *args)
    assert result.exit_code == 0, result.stderr
    rows = {}
    for line in result.stderr.splitlines():
        cells = [c.strip() for c in line.strip("│ \n").split("│")]
        if len(cells) == 4 and cells[3] in ("to run", "current (skip)"):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_ra_mapping_for_every_stage_and_per_stage(cli, tmp_path):
    rows = _plan(cli, "--out", tmp_path / "r", "--mapping", "preprocess=simple",
                 "--mapping", "multi:2")
    assert rows == {"download": ("multi", "2"), "simulate": ("multi", "2"),
                    "preprocess": ("simple", "auto"), "norm": ("multi", "2"),
                    "match": ("multi", "2"), "pgm": ("multi", "2"),
                    "geojson": ("multi", "2"), "plot": ("multi", "2")}
    # -n alone: the example's own mappings (simulate, preprocess, pgm, plot on multi), 3 workers
    rows = _plan(cli, "--out", tmp_path / "r", "-n", "3")
    assert rows["preprocess"] == ("multi", "3") and rows["download"] == ("simple", "3")


def test_ra_mapping_errors(cli):
    result = cli("ra", "run", "--example", "ridgecrest", "--mapping", "multi:2", "-n", "3")
    assert result.exit_code == 2
    assert "disagree" in error_line(result)
    result = cli("ra", "run", "--example", "ridgecrest", "--mapping", "geo=multi")
    assert result.exit_code == 2
    assert error_line(result) == (
        "error: --mapping: unknown stage 'geo' (did you mean 'geojson'?); stages: download, "
        "simulate, preprocess, norm, match, pgm, geojson, plot")
    result = cli("ra", "pgm", "--example", "ridgecrest", "--mapping", "norm=multi")
    assert result.exit_code == 2
    assert error_line(result) == "error: --mapping: unknown stage 'norm'; stages: pgm"


def test_ra_config_mapping_for_every_stage(tmp_path):
    from dare_cli.ra.config import load_config
    from dare_cli.ra.errors import ConfigError

    config = tmp_path / "ra.toml"
    config.write_text('[run]\nmapping = "multi:2"\n[run.mappings]\npgm = "simple"\n')
    mappings = dict(load_config(config).mappings)
    assert mappings["download"] == ("multi", 2) and mappings["pgm"] == ("simple", None)
    assert len(mappings) == 8
    config.write_text('[run.mappings]\npgm = "multi:none"\n')
    with pytest.raises(ConfigError, match="worker count of 'multi:none' must be an integer"):
        load_config(config)


# -- dare climate (in its own process: netCDF state is per process) -------------------------
TASMAX_GRID = Path(__file__).parents[1] / "climate" / "data" / "tasmax_CanESM2_2095_12x12.nc"


def _dare(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dare_cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_climate_dry_run_takes_the_grammar(tmp_path):
    done = _dare("climate", "index", "SU", "-i", TASMAX_GRID, "-o", tmp_path / "su.nc",
                 "--mapping", "multi:2", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert (plan["mapping"], plan["workers"]) == ("multi", 2)
    done = _dare("climate", "index", "SU", "-i", TASMAX_GRID, "-o", tmp_path / "su.nc",
                 "--mapping", "multi:2", "-n", "4", "--dry-run")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --mapping multi:2 and --workers 4 disagree: give the number of workers once")
