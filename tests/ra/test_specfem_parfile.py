"""SPECFEM3D Par_file and Mesh_Par_file: reading, filling templates, the mesh, the checks.

Fixtures: tests/ra/data/specfem (SPECFEM3D's socal1D and analytic examples and the logs of
SPECFEM's own runs, see SOURCE.md). SPECFEM's printed estimates are the reference values of the
stability and resolution checks.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

from dare_cli.ra.simulate.specfem import (
    Material,
    MeshLayer,
    SpecfemConfigError,
    SpecfemFileError,
    StationLine,
    check_simulation,
    fortran_value,
    mesh_around,
    mesh_resolution,
    read_cmtsolution,
    read_mesh_spec,
    read_parfile,
    read_stations,
    render_interfaces,
    render_mesh_parfile,
    render_parfile,
    stations_in_mesh,
)
from dare_cli.ra.simulate.specfem.mesh import mesh_utm_box
from dare_cli.ra.simulate.specfem.parfile import format_fortran
from dare_cli.ra.simulate.specfem.resolution import gll_spacing_fraction
from dare_cli.ra.simulate.specfem.utm import utm_zone_of

DATA = Path(__file__).parent / "data" / "specfem"
SOCAL = DATA / "socal1D"
MESHFEM = SOCAL / "DATA" / "meshfem3D_files"
ANALYTIC = DATA / "analytic_solution_elastic"
PAR_FILES = [SOCAL / "DATA" / "Par_file", SOCAL / "example_utm" / "Par_file_utm",
             ANALYTIC / "DATA" / "Par_file"]
MESH_PAR_FILES = [MESHFEM / "Mesh_Par_file", MESHFEM / "Mesh_Par_file_042",
                  MESHFEM / "Mesh_Par_file_168", SOCAL / "example_utm" / "Mesh_Par_file_utm",
                  ANALYTIC / "DATA" / "meshfem3D_files" / "Mesh_Par_file"]


def log_number(path: Path, label: str, index: int = 0) -> float:
    """A number SPECFEM printed after ``label ... =``."""
    for line in path.read_text().splitlines():
        if label in line:
            return float(line.split("=")[-1].split()[index])
    raise AssertionError(f"{label!r} not in {path}")


@pytest.fixture(scope="module")
def socal():
    return (read_mesh_spec(MESHFEM / "Mesh_Par_file"), read_parfile(SOCAL / "DATA" / "Par_file"),
            read_cmtsolution(SOCAL / "DATA" / "CMTSOLUTION"),
            read_stations(SOCAL / "DATA" / "STATIONS"))


# --- Fortran values and KEY = value files ---

@pytest.mark.parametrize(("text", "value"), [
    (".true.", True), (".FALSE.", False), ("840", 840), ("-11", -11), ("0.012", 0.012),
    ("60.d0", 60.0), ("1.d23", 1e23), ("33.790d0", 33.79), ("9999.", 9999.0), ("1e-3", 1e-3),
    ("default", "default"), ("./DATA/tomo_files/", "./DATA/tomo_files/"), ("T", "T")])
def test_fortran_value(text, value):
    parsed = fortran_value(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(("value", "text"), [
    (True, ".true."), (False, ".false."), (np.bool_(True), ".true."), (840, "840"),
    (np.int64(7), "7"), (0.05, "0.05d0"), (60.0, "60.0d0"), (-118.728, "-118.728d0"),
    (1e-05, "1.0d-5"), (2.5e23, "2.5d23"), ("1d_socal", "1d_socal"), (Path("a/b"), "a/b")])
def test_format_fortran(value, text):
    assert format_fortran(value) == text
    if not isinstance(value, str | Path):
        assert fortran_value(text) == value


def test_read_par_file():
    par = read_parfile(SOCAL / "DATA" / "Par_file")
    assert len(par) == 97
    assert (par["NPROC"], par["NSTEP"], par["DT"], par["MODEL"]) == ("1", "840", "0.012",
                                                                     "default")
    assert par["SAVE_SEISMOGRAMS_PRESSURE"] == ".false."  # inline comment dropped
    assert par["TOMOGRAPHY_PATH"] == "./DATA/tomo_files/"
    assert par["f0_FOR_PML"] == "12.7"
    assert "ROTATE_PML_ACTIVATE" not in par  # commented out
    mesh = read_parfile(MESHFEM / "Mesh_Par_file")
    assert (mesh["LATITUDE_MIN"], mesh["NREGIONS"], mesh["NZ_DOUBLING_2"]) == ("33.790d0", "4",
                                                                              "9")


@pytest.mark.parametrize("path", PAR_FILES + MESH_PAR_FILES, ids=lambda p: p.name)
def test_render_with_the_same_values_gives_the_file_back(path):
    text = path.read_text()
    values = {key: fortran_value(value) for key, value in read_parfile(path).items()}
    assert render_parfile(text, values) == text  # typed values equal to the file's
    assert render_parfile(text, read_parfile(path)) == text  # the text values


def test_render_changes_only_the_given_values():
    path = SOCAL / "DATA" / "Par_file"
    text = path.read_text()
    out = render_parfile(text, {"NSTEP": 1000, "DT": 0.01, "SAVE_SEISMOGRAMS_VELOCITY": True,
                                "SAVE_SEISMOGRAMS_PRESSURE": True, "MODEL": "1d_socal",
                                "NPROC": 4.0})
    before, after = text.splitlines(), out.splitlines()
    changed = {a for a, b in zip(before, after, strict=True) if a != b}
    assert len(before) == len(after) and len(changed) == 6
    assert "NSTEP                           = 1000" in after
    assert "DT                              = 0.01d0" in after
    assert "NPROC                           = 4" in after
    assert "MODEL                           = 1d_socal" in after
    assert "SAVE_SEISMOGRAMS_VELOCITY       = .true." in after
    assert ("SAVE_SEISMOGRAMS_PRESSURE       = .true.   # currently implemented in acoustic "
            "(i.e. fluid) elements only") in after
    assert read_parfile_text(out)["DT"] == "0.01d0"


def read_parfile_text(text: str) -> dict[str, str]:
    from dare_cli.ra.simulate.specfem.parfile import parse_parfile
    return parse_parfile(text)


@pytest.mark.parametrize(("values", "message"), [
    ({"NSTEPS": 10}, r"unknown key\(s\) for template: NSTEPS; did you mean NSTEP\?"),
    ({"dt": 0.1}, r"dt; did you mean DT\?"),
    ({"NSTEP": 840.5}, r"NSTEP takes an integer \(its value in template is 840\), got 840.5"),
    ({"ATTENUATION": 1}, r"ATTENUATION is a logical in template \(.true.\): give True or"),
    ({"DT": True}, r"DT is not a logical in template \(its value there is '0.012'\)"),
    ({"DT": float("inf")}, r"DT: cannot write the non-finite number inf"),
    ({"MODEL": "a # b"}, r"cannot contain a line break or '#'"),
    ({"MODEL": [1]}, r"MODEL: cannot write a list"),
])
def test_render_errors(values, message):
    with pytest.raises((SpecfemConfigError, ValueError), match=message):
        render_parfile((SOCAL / "DATA" / "Par_file").read_text(), values)


def test_duplicate_key(tmp_path):
    path = tmp_path / "Par_file"
    path.write_text("# x\nNSTEP = 1\nDT = 0.1\nNSTEP = 2\n")
    with pytest.raises(SpecfemFileError, match=re.escape(str(path)) + r", line 4: NSTEP is set "
                                                                      r"twice \(also on line 2\)"):
        read_parfile(path)


# --- the internal mesher's mesh ---

def test_read_socal_mesh(socal):
    mesh = socal[0]
    assert (mesh.x_min, mesh.x_max, mesh.y_min, mesh.y_max) == (-118.728, -118.237, 33.79,
                                                                34.157)
    assert (mesh.depth_km, mesh.nex_xi, mesh.nex_eta, mesh.nproc) == (60.0, 24, 24, 1)
    assert (mesh.doublings, mesh.utm_zone, mesh.suppress_utm_projection) == ((6, 9), 11, False)
    assert [layer.top for layer in mesh.layers] == [-32000.0, -16000.0, -5500.0, 0.0]
    assert [layer.elements for layer in mesh.layers] == [3, 3, 3, 3]
    assert mesh.layers[0].material == Material(3000, 7800, 4500, 9999, 1000, 0, 2)
    assert mesh.layers[-1].material == Material(2400, 5500, 3180, 9999, 100, 0, 2)
    assert (mesh.nz, mesh.bottom, mesh.surface) == (12, -60000.0, 0.0)


def test_utm_box_as_specfem_computes_it(socal):
    # output_meshfem3D.txt: "UTM X min = 340022.00703886687" etc.
    log = SOCAL / "REF_SEIS.default" / "output_meshfem3D.txt"
    box = mesh_utm_box(socal[0])
    expected = [log_number(log, f"UTM {axis} {end} =") for axis in "XY" for end in
                ("min", "max")]
    np.testing.assert_allclose(box, expected, rtol=0, atol=1e-3)


def test_resolution_reproduces_specfems_estimates_socal1d(socal):
    # SPECFEM3D computes these element by element on the real mesh (check_mesh_resolution);
    # we estimate them from the mesh description before meshing.
    log = SOCAL / "REF_SEIS.default" / "output_solver.txt"
    resolution = mesh_resolution(socal[0], dt=0.012)
    assert resolution.min_period == pytest.approx(log_number(log, "Minimum period resolved"),
                                                  rel=1e-6)  # 2.59259343 s (single precision)
    assert resolution.dt_max == pytest.approx(log_number(log, "Maximum suggested time step"),
                                              rel=1e-3)  # 0.0228571426 s (ours 0.0228640)
    assert resolution.gll_spacing_min == pytest.approx(log_number(log, "Min GLL point distance"),
                                                       rel=1e-3)  # 288.000 m
    assert resolution.edge_max == pytest.approx(log_number(log, "Max element size"), rel=1e-6)
    assert resolution.edge_min == pytest.approx(log_number(log, "Min element size"), rel=1e-3)
    assert resolution.courant == pytest.approx(
        log_number(log, "Max stability for wave velocities"), rel=1e-3)  # 0.2625 for DT 0.012
    assert resolution.stability_layer.index == 3  # vp 6300 m/s under the finest elements
    assert resolution.resolution_layer.index == 1  # 9333 m tall elements, vs 4500 m/s


def test_resolution_reproduces_specfems_estimates_analytic():
    mesh = read_mesh_spec(ANALYTIC / "DATA" / "meshfem3D_files" / "Mesh_Par_file")
    assert (mesh.suppress_utm_projection, mesh.utm_zone, mesh.regular) == (True, None, True)
    assert (mesh.bottom, mesh.surface, mesh.nz, mesh.nproc) == (-16000.0, 16000.0, 16, 4)
    log = ANALYTIC / "REF_SEIS" / "output_solver.txt"
    resolution = mesh_resolution(mesh, dt=0.001)
    assert resolution.box == (-16000.0, 16000.0, -16000.0, 16000.0)
    assert resolution.min_period == pytest.approx(log_number(log, "Minimum period resolved"),
                                                  rel=1e-6)  # 1.66666675 s
    assert resolution.dt_max == pytest.approx(log_number(log, "Maximum suggested time step"),
                                              rel=1e-6)  # 0.0616689622 s
    assert resolution.gll_spacing_min == pytest.approx(
        log_number(log, "Min GLL point distance"), rel=1e-6)  # 345.346191 m
    assert resolution.courant == pytest.approx(
        log_number(log, "Max stability for wave velocities"), rel=1e-6)


def test_gll_spacing_fraction():
    # SPECFEM's check_mesh_quality.f90 table percent_GLL: 50, 27.639320225, 17.267316465 %
    assert gll_spacing_fraction(3) == pytest.approx(0.5)
    assert gll_spacing_fraction(4) == pytest.approx((1 - 1 / math.sqrt(5)) / 2)
    assert gll_spacing_fraction(5) == pytest.approx((1 - math.sqrt(3 / 7)) / 2)
    assert gll_spacing_fraction(5) == pytest.approx(0.17267316464601141, rel=1e-12)
    assert gll_spacing_fraction(6) == pytest.approx(0.11747233803526763, rel=1e-12)


@pytest.mark.parametrize("path", MESH_PAR_FILES, ids=lambda p: p.name)
def test_mesh_par_file_round_trip(path, tmp_path):
    interfaces = None
    if "utm" in path.name:  # example_utm's README: copy it over ../interfaces.dat
        for name in ("interface1.dat", "interface2.dat", "interface3.dat", "interface4.dat"):
            (tmp_path / name).write_text((MESHFEM / name).read_text())
        interfaces = tmp_path / "interfaces.dat"
        interfaces.write_text((SOCAL / "example_utm" / "interfaces_utm.dat").read_text())
    mesh = read_mesh_spec(path, interfaces=interfaces)
    text = path.read_text()
    assert render_mesh_parfile(text, mesh, interfaces_file=read_parfile(path)["INTERFACES_FILE"]
                               ) == text


def test_mesh_par_file_with_another_mesh(tmp_path, socal):
    template = (MESHFEM / "Mesh_Par_file").read_text()
    layers = (MeshLayer(-20000.0, 4, Material(2900, 7000, 4000)),
              MeshLayer(0.0, 8, Material(2500, 5000, 2900, q_mu=80.0)))
    mesh = dataclasses.replace(socal[0], nex_xi=64, nex_eta=32, nproc_xi=2, nproc_eta=2,
                               layers=layers, depth_km=40.0, doublings=(10,))
    for template_text in (template, template.replace("NZ_DOUBLING_1                   = 6\n",
                                                     "")):
        text = render_mesh_parfile(template_text, mesh)
        assert [line[:13] for line in text.splitlines()].count("NZ_DOUBLING_1") == 1
        (tmp_path / "Mesh_Par_file").write_text(text)
        for name, content in render_interfaces(mesh).items():
            (tmp_path / name).write_text(content)
        assert read_mesh_spec(tmp_path / "Mesh_Par_file") == mesh
    values = read_parfile(tmp_path / "Mesh_Par_file")
    assert (values["NDOUBLINGS"], values["NZ_DOUBLING_1"], values["NZ_DOUBLING_2"]) == (
        "1", "10", "9")  # the second line is left: SPECFEM reads only NDOUBLINGS of them
    assert values["CREATE_VTK_FILES"] == ".true."  # template values are kept
    regular = dataclasses.replace(mesh, doublings=())
    (tmp_path / "Mesh_Par_file").write_text(render_mesh_parfile(template, regular))
    assert read_mesh_spec(tmp_path / "Mesh_Par_file") == regular
    assert read_parfile(tmp_path / "Mesh_Par_file")["USE_REGULAR_MESH"] == ".true."


def test_read_mesh_spec_errors(tmp_path):
    text = (MESHFEM / "Mesh_Par_file").read_text()
    for name in ("interface1.dat", "interface2.dat", "interface3.dat", "interface4.dat"):
        (tmp_path / name).write_text((MESHFEM / name).read_text())
    (tmp_path / "interfaces.dat").write_text((MESHFEM / "interfaces.dat").read_text())
    path = tmp_path / "Mesh_Par_file"
    cases = [
        (text.replace("1              24            1               24             4          "
                      "6       2", "1 12 1 24 4 6 2"),
         r"line 105: only regions spanning the whole surface"),
        (text.replace("NEX_ETA                         = 24\n", ""), r"no NEX_ETA"),
        (text.replace("2  2800  6700  3870 9999. 500.0  0  2", "2  2800  6700  3870"),
         r"line 90: a material row needs 8 values"),
        (text.replace("1              24            1               24             10        "
                      "12       4", "1 24 1 24 10 12 7"), r"line 107: region uses material 7"),
        (text.replace("1              24            1               24             7          "
                      "9       3", "1 24 1 24 7 8 3"),
         r"layer 3 \(element layers 7..9\) must be covered by exactly one region"),
    ]
    for content, message in cases:
        path.write_text(content)
        with pytest.raises(SpecfemFileError, match=message):
            read_mesh_spec(path)
    path.write_text(text)
    (tmp_path / "interface2.dat").write_text("-16000\n-16000\n-15000\n-16000\n")
    with pytest.raises(SpecfemFileError, match=r"interface2.dat: only flat interfaces"):
        read_mesh_spec(path)


def test_mesh_spec_validation(socal):
    mesh = socal[0]
    for change, message in (({"x_max": -119.0}, "x_min < x_max"), ({"depth_km": 0.0},
                            "depth_km"), ({"nex_xi": 0}, "nex_xi"), ({"doublings": (1,)},
                            r"doublings must be distinct element layers in 2..12"),
                            ({"utm_zone": None}, "needs utm_zone"), ({"layers": ()},
                            "at least one layer"),
                            ({"layers": mesh.layers[::-1]}, "layer 2 .* must be above")):
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(mesh, **change)
    with pytest.raises(ValueError, match="Poisson's ratio below -1"):
        Material(2000, 1000, 900)
    with pytest.raises(ValueError, match="an acoustic material has vs = 0"):
        Material(1000, 1500, 100, domain=1)


# --- the checks ---

def spec_inside_stations() -> set[str]:
    """NET.STA of SPECFEM's reference seismograms: the stations it found inside its mesh."""
    with tarfile.open(SOCAL / "REF_SEIS.default" / "semd.tar.xz") as tar:
        return {".".join(name.split(".")[:2]) for name in tar.getnames()}


def test_stations_in_mesh_as_specfem_filters_them(socal):
    mesh, _, _, stations = socal
    inside, outside = stations_in_mesh(mesh, stations)
    assert {s.id for s in inside} == spec_inside_stations()
    # inside the longitude/latitude box, but north of the UTM rectangle SPECFEM meshes
    assert [(s.id, reason) for s, reason in outside] == [("CI.CAB", "384 m north"),
                                                        ("NP.5404", "304 m north")]


def test_check_passes_for_the_example_with_its_stations(socal):
    mesh, par, cmt, stations = socal
    inside, _ = stations_in_mesh(mesh, stations)
    resolution = check_simulation(mesh, par, cmt, inside, max_frequency=0.3)
    assert resolution.courant == pytest.approx(0.2624, abs=1e-4)
    assert resolution.dt_max == pytest.approx(0.022864, abs=1e-6)
    assert resolution.max_frequency == pytest.approx(0.3857, abs=1e-4)


def test_check_names_the_stations_outside(socal):
    mesh, par, cmt, stations = socal
    with pytest.raises(SpecfemConfigError, match=r"2 station\(s\) outside the mesh \(UTM "
                       r"rectangle x 340022..385973 m, y 3740214..3780255 m\): CI.CAB \(384 m "
                       r"north\), NP.5404 \(304 m north\): enlarge the mesh or leave them out"):
        check_simulation(mesh, par, cmt, stations)
    moved = [dataclasses.replace(stations[0], longitude=-118.74, station="WEST"),
             dataclasses.replace(stations[1], burial=70000.0, station="DEEP")]
    with pytest.raises(SpecfemConfigError, match=r"CE.WEST \(585 m west\), CE.DEEP \(burial "
                                                 r"70000 m is outside 0..60000 m\)"):
        check_simulation(mesh, par, cmt, moved)


def test_check_fires_on_a_large_dt(socal):
    mesh, par, cmt, stations = socal
    inside, _ = stations_in_mesh(mesh, stations)
    with pytest.raises(SpecfemConfigError, match=(
            r"DT = 0.03 s is above the stability limit 0.02286 s \(Courant number 0.656 > 0.5 "
            r"for vp 6300 m/s in layer 3 \(z -16..-5.5 km\), elements of 1668 m, GLL spacing "
            r"288.1 m\): set DT <= 0.02286 s \(and NSTEP >= 1103 to keep the 25.2 s record\)")):
        check_simulation(mesh, {**par, "DT": "0.03"}, cmt, inside)
    check_simulation(mesh, {**par, "DT": 0.0228}, cmt, inside)  # just below the limit


def test_check_fires_on_nproc_and_nex(socal):
    mesh, par, cmt, stations = socal
    inside, _ = stations_in_mesh(mesh, stations)
    with pytest.raises(SpecfemConfigError, match=r"Par_file NPROC = 4 but the mesh is split into "
                       r"NPROC_XI x NPROC_ETA = 1 x 1 = 1 slices: set NPROC = 1"):
        check_simulation(mesh, {**par, "NPROC": "4"}, cmt, inside)
    split = dataclasses.replace(mesh, nproc_xi=2, nproc_eta=3, nex_xi=40, nex_eta=48)
    with pytest.raises(SpecfemConfigError) as failure:
        check_simulation(split, {**par, "NPROC": 6}, cmt, inside)
    message = str(failure.value)
    assert ("NEX_XI = 40 must be a multiple of 16 (NPROC_XI = 2 times 8: with 2 doubling(s) "
            "SPECFEM needs NEX_XI/NPROC_XI to be a multiple of 8 and of 2*2**NDOUBLINGS): use "
            "NEX_XI = 48 or change NPROC_XI") in message
    assert "NEX_ETA" not in message  # 48 / 3 = 16: fine
    regular = dataclasses.replace(split, doublings=(), nex_xi=41)
    with pytest.raises(SpecfemConfigError, match=r"NEX_XI = 41 must be a multiple of NPROC_XI "
                                                 r"= 2: use NEX_XI = 42 or change NPROC_XI"):
        check_simulation(regular, {**par, "NPROC": 6}, cmt, inside)
    for path in (MESHFEM / "Mesh_Par_file_042", MESHFEM / "Mesh_Par_file_168"):
        big = read_mesh_spec(path)  # SPECFEM's own 42- and 168-process splits pass
        check_simulation(big, {**par, "NPROC": big.nproc}, cmt, stations)


def test_check_fires_on_resolution_utm_and_source(socal):
    mesh, par, cmt, stations = socal
    inside, _ = stations_in_mesh(mesh, stations)
    with pytest.raises(SpecfemConfigError, match=(
            r"the mesh resolves periods down to 2.59 s \(0.386 Hz\), not max_frequency = 1 Hz: "
            r"in layer 1 \(z -60..-32 km\) \(v_min 4500 m/s\) elements of up to 9333 m give 5 "
            r"GLL points per wavelength only down to 2.59 s; make its elements <= 3600 m")):
        check_simulation(mesh, par, cmt, inside, max_frequency=1.0)
    with pytest.raises(SpecfemConfigError, match=r"Par_file UTM_PROJECTION_ZONE = 10 but the "
                                                 r"Mesh_Par_file has 11: make them equal"):
        check_simulation(mesh, {**par, "UTM_PROJECTION_ZONE": "10"}, cmt, inside)
    with pytest.raises(SpecfemConfigError, match=r"SUPPRESS_UTM_PROJECTION = .true. but the "
                                                 r"Mesh_Par_file has .false."):
        check_simulation(mesh, {**par, "SUPPRESS_UTM_PROJECTION": True}, cmt, inside)
    deep = dataclasses.replace(cmt, depth=75.0, longorUTM=-119.0)
    with pytest.raises(SpecfemConfigError) as failure:
        check_simulation(mesh, par, deep, inside)
    assert re.search(r"source 1 \(9703873\) is outside the mesh, 24570 m west of its UTM "
                     r"rectangle", str(failure.value))
    assert "source 1 (9703873) depth 75 km is outside the mesh (0..60 km below the surface)" \
        in str(failure.value)
    with pytest.raises(SpecfemConfigError, match="the Par_file has no NSTEP"):
        check_simulation(mesh, {k: v for k, v in par.items() if k != "NSTEP"}, cmt, inside)
    with pytest.raises(SpecfemConfigError, match=r"Par_file DT = 'x' is not a float"):
        check_simulation(mesh, {**par, "DT": "x"}, cmt, inside)


def test_check_analytic_benchmark_with_z_coordinates():
    mesh = read_mesh_spec(ANALYTIC / "DATA" / "meshfem3D_files" / "Mesh_Par_file")
    par = read_parfile(ANALYTIC / "DATA" / "Par_file")
    assert par["USE_SOURCES_RECEIVERS_Z"] == ".true."
    cmt = read_cmtsolution(ANALYTIC / "DATA" / "CMTSOLUTION")
    stations = read_stations(ANALYTIC / "DATA" / "STATIONS")
    resolution = check_simulation(mesh, par, cmt, stations)
    assert resolution.courant == pytest.approx(0.0081078, rel=1e-4)
    high = [dataclasses.replace(stations[0], burial=17000.0)]
    with pytest.raises(SpecfemConfigError, match=r"DB.Z1 \(z = 17000 m is outside "
                                                 r"-16000..16000 m\)"):
        check_simulation(mesh, par, cmt, high)


def test_mesh_around_the_example_source_and_stations(socal):
    mesh0, par, cmt, stations = socal
    mesh = mesh_around(cmt, stations, layers=mesh0.layers, depth_km=60.0, element_size_km=2.0,
                       margin_km=5.0, nproc_xi=2, nproc_eta=2, doublings=(6, 9))
    assert mesh.utm_zone == utm_zone_of(-118.3792, 34.0745) == 11
    x0, x1, y0, y1 = mesh_utm_box(mesh)
    assert (mesh.nex_xi % 16, mesh.nex_eta % 16) == (0, 0)  # 2 procs x 8
    assert (x1 - x0) / mesh.nex_xi <= 2000.0 and (y1 - y0) / mesh.nex_eta <= 2000.0
    assert (mesh.nex_xi, mesh.nex_eta) == (32, 32)  # 50.9 x 50.1 km at <= 2 km
    inside, outside = stations_in_mesh(mesh, stations)
    assert outside == [] and len(inside) == 30
    # the outermost station (CI.CAB, north-west) is 5 km from the edges
    cab = next(s for s in stations if s.station == "CAB")
    from dare_cli.ra.simulate.specfem.utm import utm_from_geographic
    x, y = utm_from_geographic(cab.longitude, cab.latitude, 11)
    assert min(x - x0, y1 - y) == pytest.approx(5000.0, abs=1e-3)
    resolution = check_simulation(mesh, {**par, "NPROC": 4}, cmt, stations)
    assert resolution.dt_max > 0.012
    south = mesh_around(dataclasses.replace(cmt, latorUTM=-33.0, longorUTM=-71.0),
                        [StationLine("A", "XX", -33.5, -71.2)], layers=mesh0.layers,
                        depth_km=60.0, element_size_km=5.0)
    assert south.utm_zone == -19 and south.regular and south.nex_xi >= 1
    check_simulation(south, {**par, "UTM_PROJECTION_ZONE": -19},
                     dataclasses.replace(cmt, latorUTM=-33.0, longorUTM=-71.0),
                     [StationLine("A", "XX", -33.5, -71.2)])


def test_utm_zone_of():
    assert [utm_zone_of(lon, lat) for lon, lat in ((-118.4, 34.1), (13.6, 41.7), (-71.0, -33.0),
                                                    (179.99, 0.0), (-180.0, 10.0))] == [
        11, 33, -19, 60, 1]
