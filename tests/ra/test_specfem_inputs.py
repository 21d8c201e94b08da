"""Every input file of a SPECFEM3D run, checked then written (write_specfem_inputs).

Fixtures: tests/ra/data/specfem (SPECFEM3D's socal1D and analytic examples, see SOURCE.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from obspy import UTCDateTime
from obspy.core.event import Origin

from dare_cli.ra.simulate.specfem import (
    MESH_PAR_TEMPLATE,
    SpecfemConfigError,
    cmtsolution_from_double_couple,
    mesh_around,
    read_cmtsolution,
    read_mesh_spec,
    read_parfile,
    read_stations,
    stations_in_mesh,
    write_specfem_inputs,
)

DATA = Path(__file__).parent / "data" / "specfem"
SOCAL = DATA / "socal1D" / "DATA"
ANALYTIC = DATA / "analytic_solution_elastic" / "DATA"


@pytest.fixture(scope="module")
def socal():
    mesh = read_mesh_spec(SOCAL / "meshfem3D_files" / "Mesh_Par_file")
    stations = read_stations(SOCAL / "STATIONS")
    return (read_cmtsolution(SOCAL / "CMTSOLUTION"), stations,
            stations_in_mesh(mesh, stations)[0], mesh)


def test_socal_example_written_again(tmp_path, socal):
    cmt, _, inside, mesh = socal
    written = write_specfem_inputs(
        tmp_path / "DATA", cmt=cmt, stations=inside,
        par_template=(SOCAL / "Par_file").read_text(), par_values={"NSTEP": 840, "DT": 0.012},
        mesh=mesh, mesh_par_template=(SOCAL / "meshfem3D_files" / "Mesh_Par_file").read_text())
    assert sorted(written) == sorted(["CMTSOLUTION", "STATIONS", "Par_file", "Mesh_Par_file",
                                      "interfaces.dat", "interface1.dat", "interface2.dat",
                                      "interface3.dat", "interface4.dat"])
    assert written["Mesh_Par_file"] == tmp_path / "DATA" / "meshfem3D_files" / "Mesh_Par_file"
    # identical to SPECFEM's example files
    for name, original in (("CMTSOLUTION", SOCAL / "CMTSOLUTION"), ("Par_file",
                           SOCAL / "Par_file"), ("Mesh_Par_file", SOCAL / "meshfem3D_files" /
                                                 "Mesh_Par_file")):
        assert written[name].read_text() == original.read_text(), name
    for number in range(1, 5):
        name = f"interface{number}.dat"
        assert [float(v) for v in written[name].read_text().split()] == [
            float(v) for v in (SOCAL / "meshfem3D_files" / name).read_text().split()]
    # STATIONS: the example's lines without the two SPECFEM leaves out (outside the mesh)
    expected = [line for line in (SOCAL / "STATIONS").read_text().splitlines(keepends=True)
                if not line.startswith(("CAB ", "5404 "))]
    assert written["STATIONS"].read_text() == "".join(expected)
    # everything parses back to what went in
    assert read_mesh_spec(written["Mesh_Par_file"]) == mesh
    assert read_cmtsolution(written["CMTSOLUTION"]) == cmt
    assert read_stations(written["STATIONS"]) == inside


def test_analytic_benchmark_written_again(tmp_path):
    mesh = read_mesh_spec(ANALYTIC / "meshfem3D_files" / "Mesh_Par_file")
    written = write_specfem_inputs(
        tmp_path, cmt=read_cmtsolution(ANALYTIC / "CMTSOLUTION"),
        stations=read_stations(ANALYTIC / "STATIONS"),
        par_template=(ANALYTIC / "Par_file").read_text(), par_values={}, mesh=mesh,
        mesh_par_template=(ANALYTIC / "meshfem3D_files" / "Mesh_Par_file").read_text())
    assert written["Par_file"].read_text() == (ANALYTIC / "Par_file").read_text()
    assert written["Mesh_Par_file"].read_text() == (
        ANALYTIC / "meshfem3D_files" / "Mesh_Par_file").read_text()
    assert read_mesh_spec(written["Mesh_Par_file"]) == mesh


def test_default_mesh_template_and_derived_par_values(tmp_path, socal):
    cmt, stations, _, mesh = socal
    split = dataclasses.replace(mesh, nproc_xi=3, nproc_eta=1, nex_xi=48, x_min=-118.8,
                                y_max=34.2)
    written = write_specfem_inputs(tmp_path, cmt=cmt, stations=stations,
                                   par_template=(SOCAL / "Par_file").read_text(),
                                   par_values={"DT": 0.005, "NSTEP": 2000}, mesh=split)
    par = read_parfile(written["Par_file"])
    assert (par["NPROC"], par["UTM_PROJECTION_ZONE"], par["DT"]) == ("3", "11", "0.005d0")
    assert read_mesh_spec(written["Mesh_Par_file"]) == split
    assert written["Mesh_Par_file"].read_text().startswith(MESH_PAR_TEMPLATE.splitlines()[0])


def test_nothing_is_written_when_a_check_fails(tmp_path, socal):
    cmt, stations, inside, mesh = socal
    template = (SOCAL / "Par_file").read_text()
    folder = tmp_path / "DATA"
    with pytest.raises(SpecfemConfigError, match=r"DT = 0.05 s is above the stability limit"):
        write_specfem_inputs(folder, cmt=cmt, stations=inside, par_template=template,
                             par_values={"DT": 0.05}, mesh=mesh)
    with pytest.raises(SpecfemConfigError, match=r"CI.CAB \(384 m north\), NP.5404"):
        write_specfem_inputs(folder, cmt=cmt, stations=stations, par_template=template,
                             par_values={}, mesh=mesh)
    with pytest.raises(SpecfemConfigError, match=r"Par_file NPROC = 2 but .* set NPROC = 1"):
        write_specfem_inputs(folder, cmt=cmt, stations=inside, par_template=template,
                             par_values={"NPROC": 2}, mesh=mesh)
    with pytest.raises(SpecfemConfigError, match=r"unknown key\(s\) for Par_file template: "
                                                 r"NSTEPS; did you mean NSTEP\?"):
        write_specfem_inputs(folder, cmt=cmt, stations=inside, par_template=template,
                             par_values={"NSTEPS": 2}, mesh=mesh)
    with pytest.raises(SpecfemConfigError, match="no station"):
        write_specfem_inputs(folder, cmt=cmt, stations=[], par_template=template,
                             par_values={}, mesh=mesh)
    assert not folder.exists()


def test_without_a_mesh_only_the_three_files(tmp_path, socal):
    cmt, stations, _, _ = socal
    written = write_specfem_inputs(tmp_path, cmt=cmt, stations=stations,
                                   par_template=(SOCAL / "Par_file").read_text(),
                                   par_values={"NPROC": 8}, mesh=None)
    assert sorted(written) == ["CMTSOLUTION", "Par_file", "STATIONS"]
    assert read_parfile(written["Par_file"])["NPROC"] == "8"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CMTSOLUTION", "Par_file", "STATIONS"]


def test_a_double_couple_in_a_mesh_around_its_stations(tmp_path, socal):
    _, stations, _, mesh0 = socal
    origin = Origin(time=UTCDateTime("2001-09-09T23:59:17.78"), latitude=34.0745,
                    longitude=-118.3792, depth=5400.0)
    cmt = cmtsolution_from_double_couple(origin, 171.19, 65.99, -177.14, 4.2)
    mesh = mesh_around(cmt, stations, layers=mesh0.layers, depth_km=60.0, element_size_km=2.0,
                       margin_km=10.0, nproc_xi=2, nproc_eta=2, doublings=(6, 9))
    written = write_specfem_inputs(tmp_path, cmt=cmt, stations=stations,
                                   par_template=(SOCAL / "Par_file").read_text(),
                                   par_values={"DT": 0.01, "NSTEP": 3000}, mesh=mesh,
                                   max_frequency=0.3)
    assert read_parfile(written["Par_file"])["NPROC"] == "4"
    assert read_mesh_spec(written["Mesh_Par_file"]) == mesh
    assert len(read_stations(written["STATIONS"])) == 30
