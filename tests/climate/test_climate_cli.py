"""``dare climate``: the written files equal icclim's own, on every mapping; bad input; WebDAV.

``dare`` runs in-process (typer's ``CliRunner``), and so does the reference ``icclim.index``
call, both with dask's synchronous scheduler (HDF5 is not thread-safe). The multi mapping's
workers start from a fork server (``dare_cli/climate/pipeline.py``), never forked from this
process, so they do not share its open netCDF files. One test runs the console script in a
process of its own, as users do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import icclim
import numpy as np
import pytest
import xarray as xr
from climate_helpers import CITIES, NRCAN, PR_GRID, TASMAX_GRID, normalised_attrs
from typer.testing import CliRunner, Result

from dare_cli.main import app

# multi's runs wait for worker processes (a fork server, its preload of icclim, the workers):
# seconds each alone, tens of seconds on a loaded machine, hence slow
MAPPINGS = [pytest.param(["--mapping", "simple"], id="simple"),
            pytest.param(["--mapping", "multi", "-n", "2"], id="multi-2",
                         marks=pytest.mark.slow)]
# icclim's reference for an index, by name and keyword arguments (a module fixture)
Reference = Callable[..., xr.Dataset]


def dare(*args: object) -> Result:
    """Run ``dare`` in-process; ``stdout`` and ``stderr`` come apart."""
    return CliRunner().invoke(app, [str(arg) for arg in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def icclim_file(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """icclim alone writing its own file from the same input, computed once per module."""
    folder = tmp_path_factory.mktemp("icclim")
    done: dict[str, xr.Dataset] = {}

    def reference(name: str, **kwargs: Any) -> xr.Dataset:
        key = json.dumps({"index_name": name, **kwargs}, sort_keys=True)
        if key not in done:
            out = folder / f"icclim_{len(done)}_{name}.nc"
            with dask.config.set(scheduler="synchronous"):
                icclim.index(index_name=name, out_file=str(out), logs_verbosity="SILENT",
                             **kwargs)
            with xr.open_dataset(out) as dataset:
                done[key] = dataset.load()
        return done[key]

    return reference


def assert_equal_to_icclim(ours: Path, reference: xr.Dataset) -> None:
    with xr.open_dataset(ours) as opened:
        mine = opened.load()
    history = mine.attrs["history"].rstrip().splitlines()
    assert "dare" in history[-1] and "icclim index" in history[-1]
    mine.attrs["history"] = "\n".join(history[:-1])
    # icclim's file writer also records its own command line, the git commit of the working
    # folder and its provenance file: attributes of that run, which ours does not copy.
    theirs = {k: v for k, v in reference.attrs.items()
              if k not in ("command", "git_commit", "provenance_file")}
    np.testing.assert_equal(normalised_attrs(mine.attrs), normalised_attrs(theirs))
    for name in reference.variables:
        assert mine[name].dims == reference[name].dims, name
        np.testing.assert_equal(mine[name].attrs, reference[name].attrs, err_msg=name)
        np.testing.assert_array_equal(mine[name].values, reference[name].values, err_msg=name)


@pytest.mark.parametrize("mapping", MAPPINGS)
def test_su_on_a_grid_equals_icclim(tmp_path, mapping, icclim_file):
    out = tmp_path / "su.nc"
    result = dare("climate", "index", "SU", "--input", TASMAX_GRID, "--output", out,
                  "--tile", "lat=5,lon=7", *mapping)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert_equal_to_icclim(out, icclim_file("SU", in_files=TASMAX_GRID))


@pytest.mark.parametrize("mapping", MAPPINGS)
def test_percentile_index_on_stations_equals_icclim(tmp_path, mapping, icclim_file):
    out = tmp_path / "tx90p.nc"
    result = dare("climate", "index", "TX90p", "--input", NRCAN, "--output", out,
                  "--base-period", "1961-01-01", "1970-12-31",  # 10 years: a third of the work
                  "--time-range", "1991-01-01", "1992-12-31", "--tile", "location=1", *mapping)
    assert result.exit_code == 0, result.stderr
    reference = icclim_file("TX90p", in_files=NRCAN,
                            base_period_time_range=["1961-01-01", "1970-12-31"],
                            time_range=["1991-01-01", "1992-12-31"])
    assert_equal_to_icclim(out, reference)


@pytest.mark.slow  # multi (see MAPPINGS)
def test_run_config_computes_several_indices_reading_tiles_once(tmp_path, icclim_file):
    config = tmp_path / "indices.toml"
    config.write_text(
        f'[run]\ninputs = ["{PR_GRID}"]\nmapping = "multi"\nworkers = 2\n'
        'tile = {lat = 6}\n'
        '[[index]]\nname = "CDD"\noutput = "cdd.nc"\n'
        '[[index]]\nname = "PRCPTOT"\noutput = "prcptot.nc"\n'
        '[[index]]\nname = "RR1"\noutput = "rr1.nc"\nslice_mode = "month"\n'
    )
    result = dare("climate", "run", config, "--json")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    assert [(Path(r["output"]).name, r["tiles"]) for r in records] == [
        ("cdd.nc", 2), ("prcptot.nc", 2), ("rr1.nc", 2)]
    assert_equal_to_icclim(tmp_path / "cdd.nc", icclim_file("CDD", in_files=PR_GRID))
    assert_equal_to_icclim(tmp_path / "prcptot.nc", icclim_file("PRCPTOT", in_files=PR_GRID))
    assert_equal_to_icclim(tmp_path / "rr1.nc",
                           icclim_file("RR1", in_files=PR_GRID, slice_mode="month"))


@pytest.mark.slow  # multi (see MAPPINGS): the threshold travels to worker processes
def test_generic_index_with_a_threshold(tmp_path, icclim_file):
    out = tmp_path / "hot.nc"
    result = dare("climate", "index", "count_occurrences", "--input", CITIES, "--var", "tasmax",
                  "--threshold", "> 25 degC", "--output", out, "--mapping", "multi", "-n", "2")
    assert result.exit_code == 0, result.stderr
    reference = icclim_file("count_occurrences", in_files=CITIES, var_name="tasmax",
                            threshold="> 25 degC")
    assert_equal_to_icclim(out, reference)


def test_dry_run_prints_the_plan(tmp_path):
    result = dare("climate", "index", "SU", "--input", TASMAX_GRID, "--output",
                  tmp_path / "su.nc", "--tile", "lat=6,lon=6", "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["tiles"] == 4 and plan["indices"] == ["SU"] and plan["mapping"] == "simple"
    assert plan["input_mb"] > 0 and 0 < plan["estimated_memory_per_worker_mb"] < plan["input_mb"]
    assert not (tmp_path / "su.nc").exists()


def test_list_reads_icclim_in_the_console_script():
    """The one run of ``dare`` in a process of its own, as users start it."""
    done = subprocess.run([sys.executable, "-m", "dare_cli", "climate", "list", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    names = {item["name"]: item for item in json.loads(done.stdout)}
    assert len(names) >= 80
    assert names["SU"]["group"] == "ECA&D" and "tasmax" in names["SU"]["variables"]
    assert "count_occurrences" in names


def test_unknown_index_lists_near_matches(tmp_path):
    result = dare("climate", "index", "TX9p", "--input", TASMAX_GRID, "--output",
                  tmp_path / "x.nc")
    assert result.exit_code == 2
    assert "unknown index 'TX9p'; did you mean: TX90p" in result.stderr
    assert not (tmp_path / "x.nc").exists()


def test_bad_inputs_leave_no_output(tmp_path):
    corrupt = tmp_path / "corrupt.nc"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    out = tmp_path / "out.nc"
    result = dare("climate", "index", "SU", "--input", corrupt, "--output", out)
    assert result.exit_code in (1, 2) and "corrupt.nc" in result.stderr
    result = dare("climate", "index", "SU", "--input", TASMAX_GRID, "--output", out,
                  "--time-range", "1990-01-01", "1991-12-31")
    assert result.exit_code == 2 and "outside the data" in result.stderr
    result = dare("climate", "index", "SU", "--input", TASMAX_GRID, "--var", "tas",
                  "--output", out)
    assert result.exit_code == 2 and "tas" in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.nc*"))


def test_plot_writes_a_png(tmp_path):
    out = tmp_path / "su.nc"
    assert dare("climate", "index", "SU", "--input", TASMAX_GRID, "--output", out).exit_code == 0
    png = tmp_path / "su.png"
    result = dare("climate", "plot", out, "--png", png)
    assert result.exit_code == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_webdav_input_and_stage_out(tmp_path, webdav, webdav_credentials, icclim_file):
    (webdav.root / "in").mkdir()
    (webdav.root / "in" / "tasmax.nc").write_bytes(Path(TASMAX_GRID).read_bytes())
    out = tmp_path / "su.nc"
    result = dare("climate", "index", "SU", "--input", webdav.ref("in/tasmax.nc"),
                  "--output", out, "--stage-out", webdav.ref("results/2095/su.nc"))
    assert result.exit_code == 0, result.stderr
    assert (webdav.root / "results" / "2095" / "su.nc").read_bytes() == out.read_bytes()
    assert_equal_to_icclim(out, icclim_file("SU", in_files=TASMAX_GRID))


def test_run_config_errors_name_the_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(f'[run]\ninputs = ["{TASMAX_GRID}"]\nworker = 2\n'
                      '[[index]]\nname = "SU"\noutput = "su.nc"\n')
    result = dare("climate", "run", config)
    assert result.exit_code == 2
    assert f"{config} [run]: unknown key 'worker'" in result.stderr
    config.write_text(f'[run]\ninputs = ["{TASMAX_GRID}"]\n[[index]]\nname = "SU"\n')
    result = dare("climate", "run", config)
    assert result.exit_code == 2 and "'name' and 'output' are required" in result.stderr
