"""SPECFEM3D ASCII seismograms as ObsPy traces: every reference seismogram of both examples.

Fixtures: tests/ra/data/specfem/*/REF_SEIS*/semd.tar.xz (SPECFEM3D's own output, unchanged,
see SOURCE.md), extracted to a temporary folder once per module.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
from obspy import UTCDateTime

from dare_cli.ra.simulate.specfem import (
    SpecfemFileError,
    read_cmtsolution,
    read_seismogram,
    read_seismograms,
)
from dare_cli.ra.simulate.specfem.seismograms import band_code

DATA = Path(__file__).parent / "data" / "specfem"
SOCAL = DATA / "socal1D"
ANALYTIC = DATA / "analytic_solution_elastic"
VALUE_5001 = 2.18197564e-03  # line 5001 of analytic_solution_elastic DB.Z1.FXZ.semd


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, Path]:
    folders = {}
    for name, archive in (("socal1D", SOCAL / "REF_SEIS.default" / "semd.tar.xz"),
                          ("analytic", ANALYTIC / "REF_SEIS" / "semd.tar.xz")):
        folder = tmp_path_factory.mktemp(name)
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
        folders[name] = folder
    return folders


def plain_columns(path: Path) -> tuple[list[float], list[float]]:
    """The file's two columns, parsed without NumPy."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [float(r[0]) for r in rows], [float(r[1]) for r in rows]


def test_every_socal1d_seismogram(reference):
    # Origin time: the CMTSOLUTION header (time shift 0). SPECFEM starts the records at
    # -t0 = -2 * half duration = -0.6228 s, DT = 0.012 s (Par_file), NSTEP = 840.
    origin = read_cmtsolution(SOCAL / "DATA" / "CMTSOLUTION").origin_time
    files = sorted(reference["socal1D"].glob("*.semd"))
    assert len(files) == 84
    stream = read_seismograms(reference["socal1D"], origin)
    assert len(stream) == 84
    for path, trace in zip(files, stream, strict=True):
        network, station, channel, _ = path.name.split(".")
        assert (trace.stats.network, trace.stats.station, trace.stats.location,
                trace.stats.channel) == (network, station, "", channel)
        assert re.fullmatch("HX[ENZ]", channel)  # H: 0.004 < DT <= 0.0125 s; E/N/Z: UTM
        assert trace.stats.starttime == origin - 0.6228
        assert trace.stats.delta == 0.012
        assert trace.stats.npts == 840
        assert (trace.stats.units, trace.stats.quantity) == ("m", "DISP")
        times, values = plain_columns(path)
        assert abs(trace.stats.endtime - (origin + times[-1])) < 1e-6
        np.testing.assert_array_equal(trace.data, values)
        assert path.name in trace.stats.processing[0]
    wtt = stream.select(id="CI.WTT..HXZ")[0]
    assert wtt.data[-1] == -1.00308762e-05  # last line of CI.WTT.HXZ.semd: 9.44519997
    assert wtt.stats.endtime == UTCDateTime("2001-09-09T23:59:27.2252")
    # 28 stations, 3 components: SPECFEM left out CI.CAB and NP.5404 (outside its mesh)
    assert len({(tr.stats.network, tr.stats.station) for tr in stream}) == 28
    assert not stream.select(station="CAB") and not stream.select(station="5404")


def test_every_analytic_benchmark_seismogram(reference):
    # DT = 0.001 s -> band F; SUPPRESS_UTM_PROJECTION -> components X/Y/Z; t0 = 2 * 2.0 s
    origin = read_cmtsolution(ANALYTIC / "DATA" / "CMTSOLUTION").origin_time
    stream = read_seismograms(reference["analytic"], origin)
    assert [tr.id for tr in stream] == [f"DB.Z{i}..FX{c}" for i in range(1, 7) for c in "XYZ"]
    for trace in stream:
        assert trace.stats.starttime == UTCDateTime("2021-01-01T01:09:56")
        assert trace.stats.delta == 0.001
        assert trace.stats.npts == 14000
        times, values = plain_columns(reference["analytic"] / (trace.id.replace("..", ".")
                                                               + ".semd"))
        assert times[0] == -4.0
        np.testing.assert_array_equal(trace.data, values)
    z1 = stream.select(id="DB.Z1..FXZ")[0]
    assert z1.data[5000] == VALUE_5001  # line 5001 of DB.Z1.FXZ.semd, t = 1.0 s


@pytest.mark.parametrize(("dt", "code"), [(2.0, "LX"), (1.0, "LX"), (0.5, "MX"), (0.1, "BX"),
                                          (0.05, "BX"), (0.0125, "HX"), (0.012, "HX"),
                                          (0.004, "CX"), (0.002, "CX"), (0.001, "FX"),
                                          (1e-4, "FX")])
def test_band_codes(dt, code):
    assert band_code(dt) == code


def write_columns(path: Path, times: np.ndarray, values: np.ndarray) -> Path:
    """A seismogram file as SPECFEM writes it: single-precision numbers, 9 digits."""
    path.write_text("".join(f"{float(np.float32(t)):16.9g}    {float(np.float32(v)):16.9g}\n"
                            for t, v in zip(times, values, strict=True)))
    return path


@pytest.mark.parametrize(("extension", "units", "quantity"), [
    ("semd", "m", "DISP"), ("semv", "m/s", "VEL"), ("sema", "m/s**2", "ACC"),
    ("semp", "Pa", "PRESSURE")])
def test_units_by_extension(tmp_path, extension, units, quantity):
    channel = "BXP" if extension == "semp" else "BXZ"
    path = write_columns(tmp_path / f"XX.ABC.{channel}.{extension}",
                         np.arange(-5, 95) * 0.05, np.sin(np.arange(100.0)))
    trace = read_seismogram(path, UTCDateTime(2020, 1, 1))
    assert (trace.stats.units, trace.stats.quantity) == (units, quantity)
    assert (trace.stats.starttime, trace.stats.delta) == (UTCDateTime(2020, 1, 1) - 0.25, 0.05)


def test_float32_times_far_from_zero(tmp_path):
    # at t ~ 500 s, float32 times are only good to 3e-5 s (3% of DT = 1 ms): still uniform
    times = 500.0 + np.arange(2000) * 0.001
    path = write_columns(tmp_path / "XX.ABC.FXZ.semv", times, np.zeros(2000))
    trace = read_seismogram(path, UTCDateTime(0))
    assert trace.stats.delta == 0.001
    assert abs(trace.stats.starttime - UTCDateTime(500)) < 1e-4


def test_codes_given_instead_of_the_file_name(tmp_path):
    path = write_columns(tmp_path / "synthetic.semd", np.arange(3) * 0.1, np.ones(3))
    with pytest.raises(SpecfemFileError, match=r"file name is not NET.STA.CHA.EXT: give network"):
        read_seismogram(path, UTCDateTime(0))
    trace = read_seismogram(path, UTCDateTime(0), network="NN", station="SSS", channel="HHZ")
    assert trace.id == "NN.SSS..HHZ"
    other = write_columns(tmp_path / "XX.ABC.BXZ.semd", np.arange(3) * 0.1, np.ones(3))
    assert read_seismogram(other, UTCDateTime(0), station="DEF").id == "XX.DEF..BXZ"


@pytest.mark.parametrize(("name", "text", "message"), [
    ("XX.ABC.HHZ.semd", "0 0\n1 0\n", r"channel 'HHZ' is not a SPECFEM3D code"),
    ("XX.ABC.BXZ.semq", "0 0\n1 0\n", r"unknown extension 'semq'"),
    ("XX.ABC.BXZ.semd", "0 0 0\n1 0 0\n", r"expected 2 columns \(time, value\), found 3"),
    ("XX.ABC.BXZ.semd", "", r"expected 2 columns \(time, value\), found 0"),
    ("XX.ABC.BXZ.semd", "0 0\n", r"1 sample\(s\): need at least 2"),
    ("XX.ABC.BXZ.semd", "0 0\nzero 1\n", r"not a two-column ASCII seismogram"),
    ("XX.ABC.BXZ.semd", "0 0\n0.1 0\n0.3 0\n0.4 0\n", r"the sampling is not uniform: step 0.2 s "
                                                      r"against 0.133333 s"),
    ("XX.ABC.BXZ.semd", "1 0\n0 0\n", r"times do not increase"),
    ("XX.ABC.BXZ.semd", "0 0\n0.1 1e-3\n0.2 NaN\n0.3 NaN\n",
     r"2 non-finite value\(s\) from t = 0.2 s \(line 3\): the simulation was probably "
     r"unstable \(check DT"),
])
def test_bad_files_are_named(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SpecfemFileError, match=re.escape(str(path)) + r"(, line \d+)?: "
                       + message):
        read_seismogram(path, UTCDateTime(0))


def test_folder_errors(tmp_path, reference):
    with pytest.raises(SpecfemFileError, match="no such folder"):
        read_seismograms(tmp_path / "missing", UTCDateTime(0))
    with pytest.raises(SpecfemFileError, match=r"no SPECFEM3D seismogram matches '\*.sem\?'"):
        read_seismograms(tmp_path, UTCDateTime(0))
    assert len(read_seismograms(reference["socal1D"], UTCDateTime(0), "CI.WTT.*")) == 3
    (tmp_path / "XX.BAD.BXZ.semd").write_text("0 0\n")
    with pytest.raises(SpecfemFileError, match=r"XX.BAD.BXZ.semd: 1 sample"):
        read_seismograms(tmp_path, UTCDateTime(0))
