"""The Rapid Assessment with a mapping per stage: MPI stages under mpiexec beside multi/simple."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ra_helpers import example_config

from dare_cli.ra.config import load_config
from dare_cli.ra.pipeline import run_assessment

STATIONS = ["CI.CCC", "CI.CLC", "CI.SLA", "CI.WRV2"]
NO_PLOTS = "\n".join(["", "[plot]", "maps = false", "waveforms = false", ""])


def _dare() -> str:
    found = shutil.which("dare", path=str(Path(sys.executable).parent) + os.pathsep
                         + os.environ.get("PATH", ""))
    assert found, "the dare console script is not installed"
    return found


def _mpiexec() -> str:
    found = shutil.which("mpiexec", path=str(Path(sys.executable).parent) + os.pathsep
                         + os.environ.get("PATH", ""))
    assert found, "mpiexec is not installed (pip install mpich)"
    return found


def _without_mpi_env() -> dict[str, str]:
    """The environment without the variables of an enclosing MPI launcher."""
    prefixes = ("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL", "HYDRA_", "MPIR_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def _text(config: Path) -> str:
    text = config.read_text()
    # drop the example's [plot] table: no plots here, only the science outputs compared
    head, _, _ = text.partition("[plot]")
    return head + NO_PLOTS


@pytest.mark.mpi
@pytest.mark.slow
def test_mpi_stages_under_mpiexec_give_the_same_outputs(tmp_path: Path) -> None:
    simple_config = example_config(tmp_path / "s", tmp_path / "simple", STATIONS)
    simple_config.write_text(_text(simple_config))
    config = load_config(simple_config).with_overrides(
        mappings={s: ("simple", None) for s in ("simulate", "preprocess", "pgm", "plot")})
    assert run_assessment(config)["ok"]

    mixed_config = example_config(tmp_path / "m", tmp_path / "mixed", STATIONS)
    mixed_config.write_text(_text(mixed_config))
    command = [_mpiexec(), "-n", "2", _dare(), "-q", "ra", "run", str(mixed_config),
               "--mapping", "preprocess=mpi", "--mapping", "match=mpi",
               "--mapping", "pgm=multi:2", "--mapping", "simulate=simple", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240,
                          env=_without_mpi_env())
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    mappings = {s["name"]: (s["mapping"], s["workers"]) for s in report["stages"]}
    assert mappings["preprocess"] == ("mpi", 2) and mappings["match"] == ("mpi", 2)
    assert mappings["pgm"] == ("multi", 2) and mappings["norm"][0] == "simple"
    for name in ("pgm.csv", "stationlist.json", "match/pairs.json", "pgm/pgm.json"):
        mixed = (tmp_path / "mixed" / name).read_bytes()
        assert mixed == (tmp_path / "simple" / name).read_bytes(), name
    preprocessed = sorted((tmp_path / "simple" / "preprocess").rglob("*.mseed"))
    assert len(preprocessed) >= 2 * 3 * len(STATIONS) - 6  # observed + synthetic, 3 components
    for path in preprocessed:
        other = tmp_path / "mixed" / path.relative_to(tmp_path / "simple")
        assert other.read_bytes() == path.read_bytes(), path.name


@pytest.mark.mpi
def test_an_mpi_stage_without_mpiexec_runs_on_one_rank(tmp_path: Path) -> None:
    config_path = example_config(tmp_path, tmp_path / "run", ["CI.CCC"])
    config_path.write_text(_text(config_path))
    command = [_dare(), "-q", "ra", "run", str(config_path), "--mapping", "pgm=mpi", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180,
                          env=_without_mpi_env())
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    pgm = next(s for s in report["stages"] if s["name"] == "pgm")
    assert (pgm["mapping"], pgm["workers"], pgm["status"]) == ("mpi", 1, "ran")
