"""Meshes sized for a period, model files in the configuration, the checks' levels, dry runs.

Reference values: SPECFEM3D's socal1D example (its model, source and stations) and SPECFEM's
own resolution rule as :func:`mesh_resolution` reproduces it (tests/ra/test_specfem_parfile.py
checks that against SPECFEM's printed values).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import pytest
from socal1d_fixtures import write_download_stage
from typer.testing import CliRunner

from dare_cli.main import app
from dare_cli.ra.config import RAConfig, load_config
from dare_cli.ra.errors import ConfigError
from dare_cli.ra.simulate.specfem import (
    SpecfemConfigError,
    check_simulation,
    mesh_resolution,
    read_cmtsolution,
    read_mesh_spec,
    read_parfile,
    read_stations,
    stations_in_mesh,
)
from dare_cli.ra.simulate.specfem.backends import SOCAL_1D, SpecfemConfig
from dare_cli.ra.simulate.specfem.checks import review_simulation
from dare_cli.ra.simulate.specfem.mesh import nex_multiple
from dare_cli.ra.simulate.specfem.sizing import element_size_for_period, size_mesh
from dare_cli.ra.simulate.specfem.velocity_model import parse_velocity_model
from dare_cli.ra.stages.specfem import plan_specfem, prepare_specfem

SOCAL = Path(__file__).parent / "data" / "specfem" / "socal1D"
MESH = SOCAL / "DATA" / "meshfem3D_files" / "Mesh_Par_file"
SOCAL_TABLE = """\
# depth  vp   vs    rho   qp    qs
  0.0    5.5  3.18  2.4   200   100
  5.5    6.3  3.64  2.67  600   300
  16.0   6.7  3.87  2.8   1000  500
  32.0   7.8  4.5   3.0   2000  1000
"""


@pytest.fixture(scope="module")
def socal():
    mesh = read_mesh_spec(MESH)
    stations = read_stations(SOCAL / "DATA" / "STATIONS")
    inside, _ = stations_in_mesh(mesh, stations)
    return (mesh, read_parfile(SOCAL / "DATA" / "Par_file"),
            read_cmtsolution(SOCAL / "DATA" / "CMTSOLUTION"), inside)


def test_element_size_for_a_period():
    # SPECFEM's rule: L / (NGLL - 1) / v * 5 = T  ->  L = 0.8 T v
    assert element_size_for_period(2.0, 3180.0) == pytest.approx(5088.0)


@pytest.mark.parametrize("period", [1.0, 2.0, 4.0])
@pytest.mark.parametrize(("nproc_xi", "nproc_eta", "doublings"),
                         [(1, 1, ()), (2, 1, ()), (2, 3, ()), (1, 1, (6, 9)), (2, 1, (9,))])
def test_a_mesh_sized_for_a_period_resolves_it(socal, period, nproc_xi, nproc_eta, doublings):
    mesh0, par, cmt, stations = socal
    design = size_mesh(cmt, stations, depth_km=60.0, layers=mesh0.layers,
                       resolve_period=period, margin_km=5.0, nproc_xi=nproc_xi,
                       nproc_eta=nproc_eta, doublings=doublings)
    mesh = design.mesh
    resolution = mesh_resolution(mesh)
    assert resolution.min_period <= period
    assert resolution.min_period > 0.5 * period  # not refined far beyond the need
    # SPECFEM's NEX rules for the split and the doublings hold, and the set-up passes
    for nex, nproc in ((mesh.nex_xi, nproc_xi), (mesh.nex_eta, nproc_eta)):
        assert nex % nex_multiple(nproc, len(doublings)) == 0
    values = {**par, "NPROC": mesh.nproc, "DT": 0.9 * resolution.dt_max}
    check_simulation(mesh, values, cmt, stations, max_frequency=1.0 / period)
    # every layer's elements are short enough vertically
    assert all(layer.elements >= 3 for layer in mesh.layers)  # the example's counts are kept


def test_a_model_file_sized_for_two_seconds(socal):
    _, _, cmt, stations = socal
    model = parse_velocity_model(SOCAL_TABLE)
    design = size_mesh(cmt, stations, depth_km=40.0, model=model, resolve_period=2.0)
    mesh = design.mesh
    assert [layer.material.vs for layer in mesh.layers] == [4500.0, 3870.0, 3640.0, 3180.0]
    # heights 8 km (vs 4.5 km/s: 7.2 km elements -> 2), 16, 10.5, 5.5 km
    assert [layer.elements for layer in mesh.layers] == [2, 3, 2, 2]
    assert mesh_resolution(mesh).min_period <= 2.0
    assert design.resolve_period == 2.0
    assert "sized to resolve 2 s: elements <= 5088 m where the slowest speed is 3180 m/s" \
        in design.notes[0]


def test_without_a_period_the_model_gets_elements_of_the_size(socal):
    _, _, cmt, stations = socal
    design = size_mesh(cmt, stations, depth_km=60.0,
                       model=parse_velocity_model(SOCAL_TABLE), element_size_km=4.0)
    assert [layer.elements for layer in design.mesh.layers] == [7, 4, 3, 2]
    assert design.resolve_period is None


def test_sizing_conflicts(socal):
    mesh0, _, cmt, stations = socal
    with pytest.raises(SpecfemConfigError, match="both set the element size"):
        size_mesh(cmt, stations, depth_km=60.0, layers=mesh0.layers, element_size_km=2.0,
                  resolve_period=2.0)
    with pytest.raises(SpecfemConfigError, match="layers or a velocity model"):
        size_mesh(cmt, stations, depth_km=60.0, layers=mesh0.layers,
                  model=parse_velocity_model(SOCAL_TABLE))
    with pytest.raises(SpecfemConfigError, match="resolve_period must be > 0 s"):
        size_mesh(cmt, stations, depth_km=60.0, layers=mesh0.layers, resolve_period=0.0)


def test_config_conflicts_are_clear_errors(tmp_path):
    model = tmp_path / "model.txt"
    model.write_text(SOCAL_TABLE)
    with pytest.raises(ConfigError, match=r"element_size_km = 3 and resolve_period = 2 both set "
                                          r"the element size: give one of them"):
        SpecfemConfig(element_size_km=3.0, resolve_period=2.0)
    with pytest.raises(ConfigError, match="layers and model_file both give the velocity model"):
        SpecfemConfig(model_file=str(model), layers=SOCAL_1D)
    with pytest.raises(ConfigError, match=r"max_frequency = 1 Hz asks for periods down to 1 s "
                                          r"but resolve_period = 2 s"):
        SpecfemConfig(max_frequency=1.0, resolve_period=2.0)
    SpecfemConfig(max_frequency=0.5, resolve_period=2.0)  # consistent: fine
    bad = tmp_path / "bad.txt"
    bad.write_text("0 5.5 3.18 2.4\n5.5 6.3 4.6 2.67\n")
    with pytest.raises(ConfigError, match=rf"model_file {bad}, line 2: vs = 4600 m/s is above "
                                          r"vp/sqrt\(2\)"):
        SpecfemConfig(model_file=str(bad))
    # in a TOML file: the table is named, a relative model_file is relative to the file
    toml = tmp_path / "ra.toml"
    toml.write_text('[simulate.specfem]\nmodel_file = "bad.txt"\n')
    with pytest.raises(ConfigError, match=r"ra.toml \[simulate.specfem\]: model_file .*bad.txt,"
                                          r" line 2"):
        load_config(toml)
    toml.write_text('[simulate.specfem]\nmodel_file = "model.txt"\nresolve_period = 2.5\n')
    loaded = load_config(toml)
    assert loaded.specfem.model_file == str(model)
    assert loaded.specfem.resolve_period == 2.5


def test_the_fingerprint_of_unset_settings_is_unchanged(tmp_path):
    fingerprint = SpecfemConfig().fingerprinted()
    assert fingerprint["element_size_km"] == 2.0
    assert fingerprint["layers"] == [dataclasses.asdict(layer) for layer in SOCAL_1D]
    assert "resolve_period" not in fingerprint and "model_file" not in fingerprint
    assert SpecfemConfig(element_size_km=2.0).fingerprinted() == fingerprint
    model = tmp_path / "model.txt"
    model.write_text(SOCAL_TABLE)
    first = SpecfemConfig(model_file=str(model), resolve_period=2.0).fingerprinted()
    assert first["resolve_period"] == 2.0 and first["element_size_km"] is None
    assert first["model_file"] == {"sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    model.write_text(SOCAL_TABLE.replace("3.18", "3.2"))
    assert SpecfemConfig(model_file=str(model), resolve_period=2.0).fingerprinted() != first


# --- the checks' levels ---

def test_review_levels(socal):
    mesh, par, cmt, stations = socal
    review = review_simulation(mesh, par, cmt, stations, max_frequency=0.3)
    levels = [(finding.check, finding.level) for finding in review.findings]
    assert levels == [("nproc", "ok"), ("nex", "ok"), ("stability", "ok"), ("resolution", "ok"),
                      ("source", "ok"), ("stations", "warning"), ("stations", "ok")]
    (near,) = review.warnings
    assert near.message.startswith("1 station(s) closer than 2 surface elements (3829 m) to a "
                                   "side of the mesh, where the absorbing boundary reflects a "
                                   "little: CI.WTT (1986 m)")
    assert review.findings[-1].message == "28 station(s) inside the mesh"
    assert review.errors == []
    # a Courant number between SPECFEM's suggested 0.5 and its 0.55 limit: a warning
    dt = 0.0236  # Courant 0.516
    warned = review_simulation(mesh, {**par, "DT": dt}, cmt, stations)
    (stability,) = [f for f in warned.findings if f.check == "stability"]
    assert stability.level == "warning"
    assert "Courant number of 0.516, above SPECFEM's suggested 0.5" in stability.message
    check_simulation(mesh, {**par, "DT": dt}, cmt, stations)  # warnings do not raise
    failed = review_simulation(mesh, {**par, "DT": 0.03}, cmt, stations, max_frequency=1.0)
    assert [f.check for f in failed.errors] == ["stability", "resolution"]
    with pytest.raises(SpecfemConfigError, match=r"DT = 0\.03 s is above the stability limit"):
        failed.raise_for_errors()
    assert [f.as_dict()["level"] for f in failed.findings].count("error") == 2


# --- through the simulate stage's preparation and the command line ---

#: Three socal1D stations at rounded coordinates (not those of its DATA/STATIONS).
STATIONS = {"CI.BVH": (34.0, -118.3), "CI.DJJ": (34.1, -118.45), "CI.LAF": (33.9, -118.4)}


def test_prepare_with_a_model_file_and_a_period(tmp_path):
    write_download_stage(tmp_path / "run", STATIONS)
    model = tmp_path / "model.txt"
    model.write_text(SOCAL_TABLE)
    config = RAConfig(out=tmp_path / "run", solver="specfem",
                      specfem=SpecfemConfig(model_file=str(model), resolve_period=2.0,
                                            depth_km=40.0, nproc_xi=2, margin_km=10.0))
    run = prepare_specfem(tmp_path / "run" / "download", tmp_path / "work", config)
    assert run.resolution.min_period <= 2.0
    assert read_mesh_spec(tmp_path / "work" / "DATA" / "meshfem3D_files" / "Mesh_Par_file"
                          ).layers == run.mesh.layers
    assert {f.check for f in run.findings} >= {"stability", "resolution", "stations"}
    assert all(f.level != "error" for f in run.findings)
    assert run.estimate.nproc == 2 and run.estimate.elements > 0
    assert run.estimate.nstep == math.ceil(config.simulate.duration / run.par_values["DT"])
    assert any("sized to resolve 2 s" in note for note in run.notes)
    # the dry run's plan is the same, written nowhere in the run folder
    plan = plan_specfem(config)
    assert plan is not None and plan.mesh == run.mesh
    assert not (tmp_path / "run" / "simulate").exists()


def _toml(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "ra.toml"
    run_dir = tmp_path / "run"
    path.write_text(f'[run]\nout = "{run_dir}"\n[simulate]\nsolver = "specfem"\nduration = 20.0\n'
                    f'[simulate.specfem]\nmargin_km = 10.0\n{extra}')
    return path


def test_cli_dry_run_shows_the_mesh_checks_and_estimate(tmp_path):
    write_download_stage(tmp_path / "run", STATIONS)
    model = tmp_path / "model.txt"
    model.write_text(SOCAL_TABLE)
    result = CliRunner().invoke(app, ["ra", "simulate", str(_toml(tmp_path)), "--dry-run",
                                      "--resolve-period", "2", "--velocity-model", str(model)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "mesh: sized to resolve 2 s" in out
    assert "SPECFEM3D check resolution: ok: the mesh resolves periods >= " in out
    assert "SPECFEM3D check stability: ok" in out
    assert "SPECFEM3D estimate: " in out and " elements x " in out and " MB " in out
    # the run command takes the same options
    result = CliRunner().invoke(app, ["ra", "run", str(_toml(tmp_path)), "--dry-run",
                                      "--resolve-period", "2"])
    assert result.exit_code == 0, result.output
    assert "mesh: sized to resolve 2 s" in result.output


def test_cli_conflicts_and_bad_model_files_are_usage_errors(tmp_path):
    write_download_stage(tmp_path / "run", STATIONS)
    bad = tmp_path / "bad.txt"
    bad.write_text("0 5.5 3.18 2.4\n10 6.3 3.64 2.67\n8 6.7 3.87 2.8\n")
    result = CliRunner().invoke(app, ["ra", "simulate", str(_toml(tmp_path)), "--dry-run",
                                      "--velocity-model", str(bad)])
    assert result.exit_code == 2
    assert "line 3: depths must increase downwards: 8 km follows 10 km (line 2)" in \
        result.output
    toml = _toml(tmp_path, "max_frequency = 1.0\n")
    result = CliRunner().invoke(app, ["ra", "run", str(toml), "--dry-run",
                                      "--resolve-period", "2"])
    assert result.exit_code == 2
    assert "max_frequency = 1 Hz asks for periods down to 1 s" in result.output
    # a period the mesh sizing cannot meet with the configured max_frequency in a file
    toml = _toml(tmp_path, "element_size_km = 3.0\nresolve_period = 2.0\n")
    result = CliRunner().invoke(app, ["ra", "simulate", str(toml), "--dry-run"])
    assert result.exit_code == 2
    assert "element_size_km = 3 and resolve_period = 2 both set the element size" in \
        result.output


# --- SPECFEM3D itself agrees (the native build, `make specfem`) ---

@pytest.mark.specfem
@pytest.mark.slow
def test_specfem_confirms_a_mesh_sized_for_two_seconds(tmp_path):
    """dare sizes a mesh for 2 s from a model file; SPECFEM's own check prints <= 2 s."""
    import os
    import re
    import subprocess
    import sys

    bin_dir = Path(os.environ.get("DARE_SPECFEM_BIN")
                   or Path(__file__).resolve().parents[2] / ".specfem" / "bin")
    if not (bin_dir / "xspecfem3D").is_file():
        pytest.fail(f"SPECFEM3D's programs are not in {bin_dir}: build them with `make specfem`")
    write_download_stage(tmp_path / "run", STATIONS)
    model = tmp_path / "model.txt"
    model.write_text(SOCAL_TABLE)
    toml = _toml(tmp_path, f'model_file = "model.txt"\nresolve_period = 2.0\nnstep = 60\n'
                           f'depth_km = 30.0\nbin_dir = "{bin_dir}"\n')
    done = subprocess.run([sys.executable, "-m", "dare_cli", "ra", "simulate", str(toml),
                           "--json"], capture_output=True, text=True, check=False,
                          timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout)["stages"][0]["summary"]
    log = (tmp_path / "run" / "simulate" / "specfem" / "OUTPUT_FILES" /
           "output_generate_databases.txt").read_text()
    printed = float(re.search(r"Minimum period resolved\s*=\s*([0-9.eE+-]+)", log).group(1))
    assert printed <= 2.0
    assert summary["band_hz"][1] == pytest.approx(1 / printed, rel=1e-3)
    assert {c["check"] for c in summary["checks"]} >= {"stability", "resolution", "stations"}
    assert not [c for c in summary["checks"] if c["level"] == "error"]
    assert summary["estimate"]["nstep"] == 60 and summary["estimate"]["elements"] > 0
    assert "SPECFEM3D estimate: " in done.stderr  # shown without -v
    assert "SPECFEM3D check resolution: ok" not in done.stderr  # that one only with -v
