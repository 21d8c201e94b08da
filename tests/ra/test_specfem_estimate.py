"""The run-time and memory estimate against real SPECFEM3D runs measured on this machine.

``data/specfem/calibration.csv``: SPECFEM3D 4.1.0 (native build, gfortran, Open MPI) on a
2-core virtual machine shared with other work, measured with benchmarks/specfem_calibration.py
(see its docstring and dare_cli/ra/simulate/specfem/estimate.py); ``load_before`` and
``load_after`` are the 1-minute load averages around each run, ``load_during`` the mean load of
the other processes while the solver ran (what the estimate takes as ``load``).
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

from dare_cli.ra.simulate.specfem import read_mesh_spec
from dare_cli.ra.simulate.specfem.estimate import count_elements, estimate_from_par, estimate_run
from dare_cli.ra.simulate.specfem.mesh import MeshSpec

DATA = Path(__file__).parent / "data" / "specfem"
SOCAL_MESH = DATA / "socal1D" / "DATA" / "meshfem3D_files" / "Mesh_Par_file"
ROWS = list(csv.DictReader((DATA / "calibration.csv").open()))


def _mesh(row: dict[str, str]) -> MeshSpec:
    """The mesh of a measured run: socal1D's (doublings at 6 and 9) or a regular one."""
    socal = read_mesh_spec(SOCAL_MESH)
    nz = int(row["nz"])
    layers = socal.layers if nz == socal.nz else (
        dataclasses.replace(socal.layers[0], elements=nz),)
    return dataclasses.replace(
        socal, nex_xi=int(row["nex_xi"]), nex_eta=int(row["nex_eta"]), layers=layers,
        nproc_xi=int(row["nproc"]), nproc_eta=1,
        doublings=socal.doublings if int(row["ndoublings"]) else ())


def test_the_table_covers_sizes_ranks_and_attenuation():
    assert len(ROWS) >= 6
    assert len({row["nspec"] for row in ROWS}) >= 4
    assert {row["nproc"] for row in ROWS} >= {"1", "2"}
    assert {row["attenuation"] for row in ROWS} == {"true", "false"}
    assert {row["ndoublings"] for row in ROWS} >= {"0", "2"}


@pytest.mark.parametrize("row", ROWS, ids=[row["name"] for row in ROWS])
def test_element_count_is_specfems(row):
    assert count_elements(_mesh(row)) == int(row["nspec"])


def test_element_count_of_the_socal_example():
    mesh = read_mesh_spec(SOCAL_MESH)
    assert count_elements(mesh) == 3456  # SPECFEM's log of this example: NSPEC_AB = 3456
    regular = dataclasses.replace(mesh, doublings=())
    assert count_elements(regular) == 24 * 24 * 12


def _estimate(row: dict[str, str]):
    load = float(row["load_during"])  # the other processes' load while the solver ran
    return estimate_run(elements=int(row["nspec"]), nstep=int(row["nstep"]),
                        nproc=int(row["nproc"]), cores=int(row["cores"]), load=load,
                        attenuation=row["attenuation"] == "true")


@pytest.mark.parametrize("row", ROWS, ids=[row["name"] for row in ROWS])
def test_the_estimate_is_within_a_factor_two_of_each_run(row):
    estimate = _estimate(row)
    checks = {
        "solver wall": (estimate.solver_wall_s, float(row["solver_wall_s"])),
        "mesher + databases wall": (estimate.setup_wall_s,
                                    float(row["mesher_wall_s"]) + float(row["databases_wall_s"])),
        "memory per rank": (estimate.memory_mb_per_rank, float(row["solver_max_rss_mb"])),
    }
    if row["nproc"] == "1":  # with more ranks, MPI's polling adds CPU time beyond the work
        checks["solver CPU"] = (estimate.solver_cpu_s, float(row["solver_cpu_s"]))
    for what, (estimated, measured) in checks.items():
        assert 0.5 <= estimated / measured <= 2.0, (what, estimated, measured)


def test_the_estimate_follows_the_par_file_and_the_machine():
    mesh = read_mesh_spec(SOCAL_MESH)
    par = {"NSTEP": "840", "NPROC": "1", "ATTENUATION": ".true."}
    idle = estimate_from_par(mesh, par, cores=2)
    assert (idle.elements, idle.nstep, idle.nproc, idle.attenuation) == (3456, 840, 1, True)
    assert idle.wall_s == pytest.approx(idle.solver_wall_s + idle.setup_wall_s)
    busy = estimate_from_par(mesh, par, cores=2, load=3.0)
    # 3 other processes and 1 rank on 2 cores: half a core each, twice the time
    assert busy.solver_wall_s - 1.0 == pytest.approx(2 * (idle.solver_wall_s - 1.0))
    no_q = estimate_from_par(mesh, {**par, "ATTENUATION": ".false."}, cores=2)
    assert no_q.solver_cpu_s < idle.solver_cpu_s and no_q.memory_mb < idle.memory_mb
    two = estimate_run(mesh, 840, nproc=2, cores=2)
    assert two.solver_wall_s < idle.solver_wall_s and two.memory_mb_per_rank < \
        idle.memory_mb_per_rank
    four = estimate_run(mesh, 840, nproc=4, cores=2)  # oversubscribed: no faster than two
    assert four.solver_wall_s == pytest.approx(two.solver_wall_s)
    assert "3456 elements x 840 steps on 1 rank(s), 2 core(s): about" in idle.describe()
    assert idle.as_dict()["elements"] == 3456
