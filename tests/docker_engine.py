"""The Docker engine, dare's images and SPECFEM3D runs to compare, for the ``docker`` tests.

``make test-docker`` sets ``DARE_REQUIRE_DOCKER=1``: there, a missing engine (or docker SDK)
fails the tests instead of skipping them. Each image is built once per session with
:func:`dare_cli.images.build` (Docker's layer cache makes a build of unchanged files quick),
so the tests always run the images of the current files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from obspy import read

from dare_cli import images

ROOT = Path(__file__).resolve().parents[1]
SOCAL = ROOT / "tests" / "ra" / "data" / "specfem" / "socal1D"
#: Build times of this session, seconds per image (printed by the tests that build).
BUILD_SECONDS: dict[str, float] = {}
_BUILT: dict[str, str] = {}


def docker_client() -> Any:
    """A docker SDK client of a running engine; fail (make test-docker) or skip without."""
    required = os.environ.get("DARE_REQUIRE_DOCKER") == "1"
    try:
        import docker

        client = docker.from_env(timeout=300)
        client.ping()
    except Exception as error:  # ImportError, DockerException, connection errors
        message = (f"no Docker engine ({type(error).__name__}: {error}); make test-docker "
                   "starts one (containers/with-dockerd.sh)")
        if required:
            pytest.fail(message)
        pytest.skip(message)
    return client


def built_image(client: Any, name: str) -> str:
    """Build image ``name`` of :data:`dare_cli.images.IMAGES` once per session; its tag."""
    if name not in _BUILT:
        start = time.monotonic()
        lines: list[str] = []
        _BUILT[name] = images.build(client, name, log=lines.append)
        BUILD_SECONDS[name] = time.monotonic() - start
        print(f"image {_BUILT[name]} built in {BUILD_SECONDS[name]:.0f} s "
              f"({sum(line.startswith('Step ') for line in lines)} steps, "
              f"{sum('Using cache' in line for line in lines)} from the cache)")
    return _BUILT[name]


def run(client: Any, image: str, command: list[str], **kwargs: Any) -> tuple[int, str]:
    """Run ``command`` in a new container of ``image``; its exit status and output.

    The container is removed afterwards, whatever happened.
    """
    container = client.containers.run(image, command, detach=True, **kwargs)
    try:
        status = container.wait(timeout=3600)["StatusCode"]
        output = container.logs(stdout=True, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    return int(status), output


# -- SPECFEM3D runs to compare -----------------------------------------------------------------
def native_bin() -> Path:
    """The native SPECFEM3D programs (``make specfem``), or fail."""
    folder = Path(os.environ.get("DARE_SPECFEM_BIN") or ROOT / ".specfem" / "bin")
    if not (folder / "xspecfem3D").is_file():
        pytest.fail(f"no native SPECFEM3D in {folder}: make specfem (or DARE_SPECFEM_BIN)")
    return folder


def socal_data(destination: Path, *, nstep: int, nproc_xi: int, nproc_eta: int,
               nex: int | None = None) -> Path:
    """A copy of socal1D's DATA: ``nstep`` steps on nproc_xi x nproc_eta ranks.

    ``nex``: another number of surface elements (NEX_XI = NEX_ETA, and the regions' extent).
    SPECFEM's mesher needs NEX/NPROC to be a multiple of 8 with socal1D's two doublings, so
    its own 24 elements split over 1 or 3 ranks per direction only; 32 split over 1, 2 or 4.
    """
    data = destination / "DATA"
    shutil.copytree(SOCAL / "DATA", data)
    par, mesh = data / "Par_file", data / "meshfem3D_files" / "Mesh_Par_file"
    text = re.sub(r"(?m)^(NSTEP\s*=\s*)\d+", rf"\g<1>{nstep}", par.read_text())
    par.write_text(re.sub(r"(?m)^(NPROC\s*=\s*)\d+", rf"\g<1>{nproc_xi * nproc_eta}", text))
    text = re.sub(r"(?m)^(NPROC_XI\s*=\s*)\d+", rf"\g<1>{nproc_xi}", mesh.read_text())
    text = re.sub(r"(?m)^(NPROC_ETA\s*=\s*)\d+", rf"\g<1>{nproc_eta}", text)
    if nex is not None:
        text = re.sub(r"(?m)^(NEX_(?:XI|ETA)\s*=\s*)\d+", rf"\g<1>{nex}", text)
        text = re.sub(r"(?m)^1(\s+)24(\s+)1(\s+)24(\s)", rf"1\g<1>{nex}\g<2>1\g<3>{nex}\g<4>",
                      text)
    mesh.write_text(text)
    return data


def simulate_native(folder: Path, data: Path) -> Path:
    """``dare ra simulate --backend local`` of ``data`` with the native build; its run folder."""
    config = folder / "specfem.toml"
    config.write_text('[simulate]\nsolver = "specfem"\n')
    out = folder / "run"
    done = subprocess.run(
        [sys.executable, "-m", "dare_cli", "ra", "simulate", str(config), "--out", str(out),
         "--backend", "local", "--specfem-bin", str(native_bin()), "--specfem-data",
         str(data)], capture_output=True, text=True, check=False, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def assert_same_seismograms(ours: Path, theirs: Path) -> int:
    """Every station's miniSEED of two simulate stages holds the same samples; the count."""
    files = sorted(p.name for p in theirs.glob("*.mseed"))
    assert files and files == sorted(p.name for p in ours.glob("*.mseed"))
    for name in files:
        a, b = read(ours / name), read(theirs / name)
        assert [tr.id for tr in a] == [tr.id for tr in b], name
        for x, y in zip(a, b, strict=True):
            assert x.stats.starttime == y.stats.starttime and x.stats.delta == y.stats.delta
            np.testing.assert_array_equal(x.data, y.data, err_msg=f"{name} {x.id}")
    return len(files)
