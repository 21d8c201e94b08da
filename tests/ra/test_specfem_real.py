"""SPECFEM3D for real: SPECFEM's own examples through ``dare ra simulate --backend local``.

The programs are the native build of the vendored source (``make specfem`` builds them into
``.specfem/bin``; ``DARE_SPECFEM_BIN`` points elsewhere). Each example's hand-made ``DATA``
folder runs as it is (``[simulate.specfem] data_dir``), through the real CLI, and dare's
miniSEED synthetics are compared with:

* socal1D: SPECFEM3D's reference seismograms (``REF_SEIS.default``, made upstream by
  SPECFEM's developers on another machine and compiler): relative L2 misfit below 1e-4 per
  trace (measured here: at most 8e-6, median 2.4e-6) and the same time axis;
* the analytic half-space benchmark: SPECFEM's own reference run to 1e-4 (measured 1.2e-5) and
  the Aki & Richards solution (``REF_ANALYTIC``) to 1 % relative L2 per component (measured
  0.16-0.52 %, the same as SPECFEM's reference run has against it), over the first 10 s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from obspy import UTCDateTime, read

from dare_cli.ra.simulate.specfem.cmtsolution import read_cmtsolution, simulation_origin_time

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DATA = HERE / "data" / "specfem"
SOCAL = DATA / "socal1D"
ANALYTIC = DATA / "analytic_solution_elastic"

pytestmark = [pytest.mark.specfem, pytest.mark.slow]


@pytest.fixture(scope="module")
def specfem_bin() -> Path:
    """The folder of the native SPECFEM3D programs (a clear failure when they are missing)."""
    folder = Path(os.environ.get("DARE_SPECFEM_BIN") or ROOT / ".specfem" / "bin")
    missing = [name for name in ("xmeshfem3D", "xgenerate_databases", "xspecfem3D")
               if not (folder / name).is_file()]
    if missing:
        pytest.fail(f"SPECFEM3D's {', '.join(missing)} not in {folder}: build them with "
                    "`make specfem` (or point DARE_SPECFEM_BIN at a build)")
    return folder


def _extract(archive: Path, destination: Path) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    return destination


def _simulate(tmp: Path, data_dir: Path, bin_dir: Path, *extra: str) -> dict:
    """``dare ra simulate --solver specfem --backend local --specfem-data DIR``, for real."""
    config = tmp / "specfem.toml"
    config.write_text("[simulate]\nsolver = \"specfem\"\n")
    run = tmp / "run"
    done = subprocess.run(
        [sys.executable, "-m", "dare_cli", "ra", "simulate", str(config), "--out", str(run),
         "--backend", "local", "--specfem-bin", str(bin_dir), "--specfem-data", str(data_dir),
         "--json", *extra],
        capture_output=True, text=True, check=False, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def _misfit(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(ours - reference) / np.linalg.norm(reference))


def test_socal1d_through_dare_matches_specfems_reference_seismograms(
        tmp_path: Path, specfem_bin: Path) -> None:
    report = _simulate(tmp_path, SOCAL / "DATA", specfem_bin)
    stations = report["stations"]
    # SPECFEM itself drops CI.CAB and NP.5404 (outside the mesh): dare says so, before running
    assert stations["CI.CAB"]["status"] == stations["NP.5404"]["status"] == "rejected"
    assert "outside the SPECFEM3D mesh" in stations["NP.5404"]["reason"]
    reference = _extract(SOCAL / "REF_SEIS.default" / "semd.tar.xz", tmp_path / "ref")
    files = sorted(reference.glob("*.semd"))
    assert len(files) == 84
    origin = simulation_origin_time(read_cmtsolution(SOCAL / "DATA" / "CMTSOLUTION"))
    assert origin == UTCDateTime("2001-09-09T23:59:17.780000")  # + time shift 0
    misfits = []
    for path in files:
        network, station, channel, _ = path.name.split(".")
        columns = np.loadtxt(path)
        stream = read(tmp_path / "run" / "simulate" / f"{network}.{station}.mseed")
        trace = stream.select(channel=channel)[0]
        assert trace.stats.npts == len(columns)
        assert abs(trace.stats.delta - 0.012) < 1e-9
        assert abs((trace.stats.starttime - origin) - columns[0, 0]) < 1e-4
        misfits.append(_misfit(trace.data, columns[:, 1]))
    assert max(misfits) < 1e-4, max(misfits)
    summary = report["stages"][0]["summary"]
    # the band SPECFEM printed for this mesh (its log: "Minimum period resolved = 2.59...")
    assert summary["band_hz"][1] == pytest.approx(1 / 2.5926, rel=2e-3)


def _shortened(data: Path, destination: Path, *, nstep: int, nproc_xi: int, nproc_eta: int
               ) -> Path:
    """A copy of a DATA folder with fewer time steps and another split over the ranks."""
    copy = destination / "DATA"
    shutil.copytree(data, copy)
    par, mesh = copy / "Par_file", copy / "meshfem3D_files" / "Mesh_Par_file"
    par.write_text(re.sub(r"(?m)^(NSTEP\s*=\s*)\d+", rf"\g<1>{nstep}", par.read_text()))
    par.write_text(re.sub(r"(?m)^(NPROC\s*=\s*)\d+", rf"\g<1>{nproc_xi * nproc_eta}",
                          par.read_text()))
    text = re.sub(r"(?m)^(NPROC_XI\s*=\s*)\d+", rf"\g<1>{nproc_xi}", mesh.read_text())
    mesh.write_text(re.sub(r"(?m)^(NPROC_ETA\s*=\s*)\d+", rf"\g<1>{nproc_eta}", text))
    return copy


def test_analytic_half_space_matches_aki_richards(tmp_path: Path, specfem_bin: Path) -> None:
    """SPECFEM's analytic benchmark, its first 10 s (of 14) on 2 ranks (not 4) for CI's time."""
    data = _shortened(ANALYTIC / "DATA", tmp_path, nstep=10000, nproc_xi=2, nproc_eta=1)
    _simulate(tmp_path, data, specfem_bin)
    analytic = _extract(ANALYTIC / "REF_ANALYTIC" / "semd.tar.xz", tmp_path / "analytic")
    upstream = _extract(ANALYTIC / "REF_SEIS" / "semd.tar.xz", tmp_path / "upstream")
    origin = simulation_origin_time(read_cmtsolution(ANALYTIC / "DATA" / "CMTSOLUTION"))
    for station in ("Z1", "Z2"):
        stream = read(tmp_path / "run" / "simulate" / f"DB.{station}.mseed")
        for component in "XYZ":
            trace = stream.select(channel=f"FX{component}")[0]
            times = (trace.stats.starttime - origin) + trace.times()
            exact = np.loadtxt(analytic / f"DB.{station}.FX{component}.semd")
            exact = exact[exact[:, 0] <= times[-1]]
            ours = np.interp(exact[:, 0], times, trace.data)
            theirs_columns = np.loadtxt(upstream / f"DB.{station}.FX{component}.semd")
            theirs = np.interp(exact[:, 0], theirs_columns[:, 0], theirs_columns[:, 1])
            # dare's run is SPECFEM's own reference run, to 1e-4 ...
            assert _misfit(ours, theirs) < 1e-4, (station, component, _misfit(ours, theirs))
            # ... and within 1 % (relative L2) of the exact solution
            assert _misfit(ours, exact[:, 1]) < 0.01, (station, component)
