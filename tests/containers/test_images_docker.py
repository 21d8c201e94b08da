"""dare's images built and run for real (marker ``docker``; ``make test-docker``).

Each image is built from the current files (dare_cli/images.py; the layer cache keeps an
unchanged build short) and runs ``dare --version`` and a real stage: the ``dare`` image a whole
Rapid Assessment of the bundled Ridgecrest example, the ``specfem`` image a SPECFEM3D run of
SPECFEM's socal1D example (shortened, 32 elements) through dare's local backend, whose
seismograms are compared with the same run of the native build (``make specfem``:
``.specfem/bin``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from docker_engine import (
    assert_same_seismograms,
    built_image,
    docker_client,
    run,
    simulate_native,
    socal_data,
)

from dare_cli import images

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.docker, pytest.mark.slow]


# -- the dare image ---------------------------------------------------------------------------
def test_the_dare_image_runs_a_whole_rapid_assessment() -> None:
    client = docker_client()
    tag = built_image(client, "dare")
    status, output = run(client, tag, ["dare", "--version"])
    assert (status, output.strip()) == (0, f"dare {images.__version__}")
    status, output = run(client, tag, ["bash", "-c",
                                       "dare ra run --example ridgecrest --out /tmp/ra --json"
                                       " > /tmp/report.json && python3 -c 'import json; "
                                       "r = json.load(open(\"/tmp/report.json\")); "
                                       "print(json.dumps(r[\"stages\"]))' && ls /tmp/ra"])
    assert status == 0, output[-4000:]
    lines = output.strip().splitlines()
    stages = json.loads(next(line for line in lines if line.startswith("[")))
    assert [stage["status"] for stage in stages] == ["ran"] * len(stages), stages
    assert {"download", "simulate", "pgm", "stationlist.json",
            "report.html"} <= set(lines), lines


def test_the_dare_image_has_mpi_and_the_queue_workers() -> None:
    """MPICH from PyPI runs the engine's mpi mapping on 2 ranks; `dare worker` is there."""
    client = docker_client()
    tag = built_image(client, "dare")
    status, output = run(client, tag, ["bash", "-c",
                                       "mpiexec -n 2 dare run engine.examples.parallel_sum "
                                       "-i 5 --mapping mpi && dare worker --help"])
    assert status == 0, output[-4000:]
    assert "--mapping" not in output.splitlines()[0]


# -- the specfem image ------------------------------------------------------------------------
def test_the_specfem_image_runs_socal1d_like_the_native_build(tmp_path: Path) -> None:
    """Inside one container (local backend, the image's OpenMPI): 2 ranks, 100 steps.

    (On 32 surface elements: socal1D's 24, with two doublings, split over 1 or 3 ranks only.)
    """
    client = docker_client()
    tag = built_image(client, "specfem")
    status, output = run(client, tag, ["bash", "-c", "dare --version && id -un && "
                                       "ls /opt/specfem3d/bin /opt/specfem3d/LICENSE"])
    assert status == 0, output
    assert output.split()[:3] == ["dare", images.__version__, "specfem"]
    assert {"xmeshfem3D", "xgenerate_databases", "xspecfem3D"} <= set(output.split())

    native = tmp_path / "native"
    data = socal_data(native, nstep=100, nproc_xi=2, nproc_eta=1, nex=32)
    expected = simulate_native(native, data) / "simulate"

    shared = tmp_path / "in-docker"
    socal_data(shared, nstep=100, nproc_xi=2, nproc_eta=1, nex=32)
    (shared / "specfem.toml").write_text('[simulate]\nsolver = "specfem"\n')
    shared.chmod(0o777)
    status, output = run(client, tag, [
        "dare", "ra", "simulate", "/data/specfem.toml", "--out", "/data/run", "--backend",
        "local", "--specfem-bin", "/opt/specfem3d/bin", "--specfem-data", "/data/DATA"],
        volumes={str(shared): {"bind": "/data", "mode": "rw"}}, entrypoint=["/usr/bin/tini",
                                                                            "--"])
    assert status == 0, output[-4000:]
    assert assert_same_seismograms(shared / "run" / "simulate", expected) >= 10


def test_a_failed_build_says_why_and_leaves_no_container() -> None:
    client = docker_client()
    built_image(client, "specfem")  # its first layers are cached: the failure comes quickly
    before = {c.id for c in client.containers.list(all=True)}
    with pytest.raises(images.ImageBuildError) as caught:
        images.build(client, "specfem", tag="dare-specfem:broken-test",
                     build_args={"SPECFEM_SOURCE": "svn"})
    message = str(caught.value)
    assert "SPECFEM_SOURCE must be vendor or git, not 'svn'" in message
    assert caught.value.step is not None and caught.value.step.startswith("Step ")
    assert "returned a non-zero code: 2" in message
    assert {c.id for c in client.containers.list(all=True)} == before
    assert not client.images.list(name="dare-specfem:broken-test")
