"""The SPECFEM3D simulate stage with the ``local`` backend, end to end, on TEST DOUBLES.

SPECFEM3D is not installed here. The programs are replaced by the test doubles of
``tests/ra/specfem_doubles/`` (they check their inputs and copy SPECFEM3D's real reference
seismograms of the socal1D example, see tests/ra/data/specfem/SOURCE.md), started by the
real ``mpiexec`` of the mpich wheel with ``-np NPROC``. What is tested is dare's side: the
inputs it writes, the command sequence and launcher, log streaming, failure handling, and the
per-station miniSEED it makes from SPECFEM3D's output files.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from obspy import read
from polling import poll_until
from socal1d_fixtures import ORIGIN_TIME, socal_stations, write_download_stage

from dare_cli.ra.config import RAConfig
from dare_cli.ra.errors import ConfigError
from dare_cli.ra.pipeline import build_pipeline
from dare_cli.ra.simulate.specfem.backends import (
    LocalBackend,
    SpecfemConfig,
    SpecfemRunError,
    launch_argv,
    specfem_steps,
)
from dare_cli.ra.simulate.specfem.parfile import read_parfile

HERE = Path(__file__).resolve().parent
DOUBLES = HERE / "specfem_doubles"
SOCAL = HERE / "data" / "specfem" / "socal1D"
ARCHIVE = SOCAL / "REF_SEIS.default" / "semd.tar.xz"
#: Stations of the socal1D example with reference seismograms, and one without (XX.NONE).
PICKED = ("CE.24851", "CI.BVH", "CI.DJJ", "CI.LAF", "CI.WTT")
MPIEXEC = shutil.which("mpiexec")


def _download_stage(run_dir: Path, stations: tuple[str, ...]) -> Path:
    """The download stage with these socal1D stations, or XX.NONE (no reference seismograms)."""
    coordinates = {**socal_stations(), "XX.NONE": (34.0, -118.4)}
    return write_download_stage(run_dir, {s: coordinates[s] for s in stations})


def _config(run_dir: Path, **specfem: object) -> RAConfig:
    values: dict[str, object] = dict(backend="local", bin_dir=str(DOUBLES),
                                     launcher="mpiexec", nproc_xi=2, nproc_eta=1,
                                     element_size_km=5.0, margin_km=10.0)
    values.update(specfem)
    config = RAConfig(out=run_dir, solver="specfem", specfem=SpecfemConfig(**values))  # type: ignore[arg-type]
    return dataclasses.replace(config, simulate=dataclasses.replace(config.simulate,
                                                                    duration=9.0))


def _run_simulate(config: RAConfig, monkeypatch: pytest.MonkeyPatch, lines: list[str]
                  ) -> object:
    monkeypatch.setenv("SPECFEM_DOUBLE_SEISMOGRAMS", str(ARCHIVE))
    return build_pipeline(config, log=lines.append).run(config.out, only=["simulate"])


def _reference(name: str) -> np.ndarray:
    with tarfile.open(ARCHIVE) as archive:
        member = archive.extractfile(name)
        assert member is not None
        return np.loadtxt(member)


needs_mpiexec = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec (pip install mpich) "
                                                           "is not on PATH")


@needs_mpiexec
def test_local_backend_runs_the_sequence_and_writes_station_mseed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    _download_stage(run_dir, (*PICKED, "XX.NONE"))
    lines: list[str] = []
    report = _run_simulate(_config(run_dir), monkeypatch, lines)
    stage = report.stages[0]  # type: ignore[attr-defined]
    assert stage.status == "ran", stage.error
    simulate = run_dir / "simulate"

    # the programs ran in order under `mpiexec -np 2` (resolved to its absolute path), their
    # SPECFEM logs streamed
    commands = [line for line in lines if line.startswith("$ ")]
    assert [c.split()[2:4] for c in commands] == [["-np", "2"]] * 3
    assert {c.split()[1] for c in commands} == {shutil.which("mpiexec")}
    assert [Path(c.split()[-1]).name for c in commands] == [
        "xmeshfem3D", "xgenerate_databases", "xspecfem3D"]
    assert "xspecfem3D: TEST DOUBLE of xspecfem3D (not SPECFEM3D)" in lines
    assert any(line.startswith("xspecfem3D:   Time step #") for line in lines)

    # the inputs: Par_file values as configured and derived
    par = read_parfile(simulate / "specfem" / "DATA" / "Par_file")
    dt = float(par["DT"].replace("d", "e"))
    assert int(par["NPROC"]) == 2
    assert int(par["NSTEP"]) == int(np.ceil(9.0 / dt))
    assert par["SAVE_SEISMOGRAMS_DISPLACEMENT"] == ".true."
    assert par["UTM_PROJECTION_ZONE"] == "11"
    assert f"xspecfem3D:   6 stations, NSTEP = {par['NSTEP']}, DT = {par['DT']}" in lines
    mesh = read_parfile(simulate / "specfem" / "DATA" / "meshfem3D_files" / "Mesh_Par_file")
    assert (int(mesh["NPROC_XI"]), int(mesh["NPROC_ETA"])) == (2, 1)
    stations = (simulate / "specfem" / "DATA" / "STATIONS").read_text().split("\n")
    assert len([s for s in stations if s.strip()]) == 6
    # databases dropped after success, SPECFEM's logs kept
    assert not (simulate / "specfem" / "OUTPUT_FILES" / "DATABASES_MPI").exists()
    assert (simulate / "specfem" / "OUTPUT_FILES" / "output_solver.txt").exists()

    # one miniSEED per station with seismograms; the station without them is rejected
    assert sorted(p.stem for p in simulate.glob("*.mseed")) == sorted(PICKED)
    assert stage.summary["processed"] == sorted(PICKED)
    assert [r["station"] for r in stage.summary["rejected"]] == ["XX.NONE"]
    for station_id in PICKED:
        stream = read(str(simulate / f"{station_id}.mseed"))
        assert sorted(tr.stats.channel for tr in stream) == ["HXE", "HXN", "HXZ"]
        for trace in stream:
            reference = _reference(f"{trace.id.replace('..', '.')}.semd")
            assert trace.id == f"{station_id}..{trace.stats.channel}"
            assert trace.stats.npts == len(reference) == 840
            # float32 text columns: start and step to within their rounding (1e-6 s)
            assert abs(trace.stats.starttime - (ORIGIN_TIME + reference[0, 0])) < 1e-5
            assert trace.stats.delta == pytest.approx(0.012, abs=1e-9)
            np.testing.assert_allclose(trace.data, reference[:, 1], rtol=0, atol=0)
            assert trace.data.dtype == np.float64


@needs_mpiexec
def test_failed_step_fails_the_stage_with_its_log_tail_and_no_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    _download_stage(run_dir, PICKED[:2])
    monkeypatch.setenv("SPECFEM_DOUBLE_FAIL", "xgenerate_databases")
    lines: list[str] = []
    report = _run_simulate(_config(run_dir), monkeypatch, lines)
    stage = report.stages[0]  # type: ignore[attr-defined]
    assert stage.status == "failed"
    assert isinstance(stage.exception, SpecfemRunError)
    assert stage.exception.step == "xgenerate_databases"
    message = stage.error
    assert "xgenerate_databases failed with exit status" in message
    assert "half-way through" in message  # tail of OUTPUT_FILES/output_generate_databases.txt
    assert "failed on purpose (SPECFEM_DOUBLE_FAIL)" in message  # error_message*.txt
    assert not any("xspecfem3D" in line for line in lines if line.startswith("$ "))
    assert not (run_dir / "simulate").exists()
    assert not (run_dir / ".simulate.partial").exists()


@needs_mpiexec
def test_nproc_not_matching_the_ranks_is_caught_by_the_programs(tmp_path: Path) -> None:
    """The doubles check `-np` against NPROC: a launcher given the wrong count fails."""
    work = tmp_path / "work"
    (work / "OUTPUT_FILES" / "DATABASES_MPI").mkdir(parents=True)
    (work / "DATA" / "meshfem3D_files").mkdir(parents=True)
    shutil.copy(SOCAL / "DATA" / "Par_file", work / "DATA" / "Par_file")  # NPROC = 1
    shutil.copy(SOCAL / "DATA" / "meshfem3D_files" / "Mesh_Par_file",
                work / "DATA" / "meshfem3D_files" / "Mesh_Par_file")
    backend = LocalBackend(DOUBLES, launcher="mpiexec")
    with pytest.raises(SpecfemRunError, match="NPROC = 1 in DATA/Par_file but the run has 2"):
        backend.run(work, 2)


def test_missing_programs_and_launcher_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no executable .*xmeshfem3D.*--specfem-bin"):
        LocalBackend(tmp_path).check()
    with pytest.raises(ConfigError, match="launcher 'mpirun' is not on PATH"):
        LocalBackend(DOUBLES, launcher="mpirun", env={"PATH": str(tmp_path)}).check()


def test_launch_commands() -> None:
    assert launch_argv("mpirun", 4, "/b/xspecfem3D") == ["mpirun", "-np", "4", "/b/xspecfem3D"]
    assert launch_argv("srun", 8, "x", ["--mpi=pmix"]) == ["srun", "-n", "8", "--mpi=pmix", "x"]
    steps = specfem_steps("/opt/sf/bin", 2)
    assert [s.argv[-1] for s in steps] == ["/opt/sf/bin/xmeshfem3D",
                                           "/opt/sf/bin/xgenerate_databases",
                                           "/opt/sf/bin/xspecfem3D"]
    assert [s.log_file for s in steps] == ["output_meshfem3D.txt",
                                           "output_generate_databases.txt",
                                           "output_solver.txt"]
    with pytest.raises(ConfigError, match=r"launcher 'mpirn' is not known.*did you mean 'mpirun'"):
        launch_argv("mpirn", 2, "x")


def test_specfem_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"backend 'dokcer' .*did you mean 'docker'"):
        SpecfemConfig(backend="dokcer")
    with pytest.raises(ConfigError, match="par sets NPROC, which dare derives"):
        SpecfemConfig(par={"NPROC": 4})
    assert SpecfemConfig(nproc_xi=2, nproc_eta=3).nproc == 6


# -- the command line: --dry-run, and the HPC workflow (--emit-batch slurm, then --collect) ---
def _toml(folder: Path, run_dir: Path) -> Path:
    config = folder / "ra.toml"
    config.write_text(f"""[run]
out = "{run_dir}"
[simulate]
solver = "specfem"
duration = 9.0
[simulate.specfem]
launcher = "mpiexec"
nproc_xi = 2
element_size_km = 5.0
margin_km = 10.0
""")
    return config


@needs_mpiexec
def test_sigterm_to_dare_stops_the_solver_and_its_ranks(tmp_path: Path) -> None:
    """A batch system's SIGTERM (or kill PID) to dare stops the MPI job it started.

    The launcher runs in a session of its own (so that a terminal's Ctrl-C reaches it only
    through dare): without dare's SIGTERM handling it kept running after dare was gone.
    """
    config = _toml(tmp_path, tmp_path / "run")
    _download_stage(tmp_path / "run", PICKED)
    process = subprocess.Popen(
        [sys.executable, "-m", "dare_cli", "ra", "simulate", str(config), "--backend",
         "local", "--specfem-bin", str(DOUBLES)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SPECFEM_DOUBLE_HANG": "xspecfem3D",
             "SPECFEM_DOUBLE_SEISMOGRAMS": str(ARCHIVE)})
    try:
        poll_until(lambda: process.poll() is not None
                   or len(list(tmp_path.rglob("hung.*"))) >= 2, 120)
        ranks = [int(path.read_text()) for path in tmp_path.rglob("hung.*")]
        assert len(ranks) == 2, f"the solver's ranks never started: {process.stderr}"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "error: terminated (SIGTERM)"
    poll_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in ranks), 10)
    alive = [pid for pid in ranks if Path(f"/proc/{pid}").exists()
             and "zombie" not in Path(f"/proc/{pid}/status").read_text()]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert alive == [], "the solver's ranks outlived dare"
    assert not (tmp_path / "run" / "simulate").exists()  # nothing half-written kept


def test_cli_dry_run_prints_the_commands(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dare_cli.main import app

    config = _toml(tmp_path, tmp_path / "run")
    runner = CliRunner()
    result = runner.invoke(app, ["ra", "simulate", str(config), "--backend", "local",
                                 "--specfem-bin", str(DOUBLES), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "backend: local; NPROC 2 (2 x 1)" in lines
    # the launcher as the run resolves it: an absolute path
    assert [line.split("&& ")[1].rstrip(")") for line in lines if "&& " in line] == [
        f"{shutil.which('mpiexec')} -np 2 {DOUBLES / p}"
        for p in ("xmeshfem3D", "xgenerate_databases", "xspecfem3D")]
    result = runner.invoke(app, ["ra", "simulate", str(config), "--backend", "docker",
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "up --detach --no-build --scale worker=1" in text
    assert "head: specfem-step OUTPUT_FILES/output_solver.txt -- mpirun -np 2 --hostfile " \
           "/work/hostfile /opt/specfem3d/bin/xspecfem3D" in text
    assert "down --volumes --remove-orphans" in text
    result = runner.invoke(app, ["ra", "simulate", str(config), "--backend", "dokcer"])
    assert result.exit_code == 2
    assert "backend 'dokcer' is not known (did you mean 'docker'?)" in result.output


@needs_mpiexec
def test_cli_slurm_workflow_emit_run_collect(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """--emit-batch writes inputs and script; the programs run (here: the doubles under
    mpiexec, standing in for the script's srun lines); the script's last line collects."""
    import shlex

    from typer.testing import CliRunner

    from dare_cli.main import app

    run_dir = tmp_path / "run"
    _download_stage(run_dir, PICKED[:3])
    config = _toml(tmp_path, run_dir)
    runner = CliRunner()
    result = runner.invoke(app, ["ra", "simulate", str(config), "--emit-batch", "slurm",
                                 "--specfem-bin", str(DOUBLES), "--nodes", "1",
                                 "--time", "00:30:00", "--module", "openmpi"])
    assert result.exit_code == 0, result.output
    script = Path(result.stdout.strip())
    work = run_dir / "specfem-batch"
    assert script == work / "specfem.slurm"
    text = script.read_text()
    assert "#SBATCH --ntasks=2" in text and "module load openmpi" in text
    assert (work / "DATA" / "Par_file").exists() and (work / "DATA" / "STATIONS").exists()

    monkeypatch.setenv("SPECFEM_DOUBLE_SEISMOGRAMS", str(ARCHIVE))
    LocalBackend(DOUBLES, launcher="mpiexec").run(work, 2)
    collect = shlex.split(text.strip().splitlines()[-2])
    assert collect[:3] == ["dare", "ra", "simulate"]
    result = runner.invoke(app, collect[1:])
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in (run_dir / "simulate").glob("*.mseed")) == sorted(PICKED[:3])
    stream = read(str(run_dir / "simulate" / "CI.BVH.mseed"))
    reference = _reference("CI.BVH.HXZ.semd")
    np.testing.assert_array_equal(stream.select(channel="HXZ")[0].data, reference[:, 1])


def test_toml_specfem_table_errors_name_the_key(tmp_path: Path) -> None:
    from dare_cli.ra.config import load_config

    config = tmp_path / "ra.toml"
    config.write_text('[simulate]\nsolver = "specfem"\n[simulate.specfem]\nnproc_xy = 2\n')
    with pytest.raises(ConfigError, match=r"\[simulate.specfem\]: unknown key 'nproc_xy' "
                                          r"\(did you mean 'nproc_xi'\?\)"):
        load_config(config)
    config.write_text('[simulate]\nsolver = "specfm"\n')
    with pytest.raises(ConfigError, match=r"solver 'specfm' is not known \(did you mean "
                                          r"'specfem'\?\)"):
        load_config(config)
    config.write_text('[simulate]\nspecfem_bin = "x"\n')
    with pytest.raises(ConfigError, match=r"\[simulate\]: unknown key 'specfem_bin' "
                                          r"\(did you mean 'specfem'\?\)"):
        load_config(config)
    config.write_text('[simulate]\nsolver = "specfem"\n[simulate.specfem]\nbin_dir = "bin"\n'
                      '[[simulate.specfem.layers]]\ntop = 0.0\nelements = 4\nrho = 2700.0\n'
                      'vp = 6000.0\nvs = 3464.0\n')
    loaded = load_config(config)
    assert loaded.solver == "specfem"
    assert loaded.specfem.bin_dir == str(tmp_path / "bin")
    assert [layer.vp for layer in loaded.specfem.layers] == [6000.0]


# -- the launcher that matches the build ---------------------------------------------------------
NATIVE_BIN = Path(os.environ.get("DARE_SPECFEM_BIN") or HERE.parents[1] / ".specfem" / "bin")


def _fake_launcher(folder: Path, name: str, version: str) -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{version}'\n")
    path.chmod(0o755)
    return path


def test_launcher_of_the_builds_mpi_is_chosen_over_the_first_on_path(tmp_path: Path) -> None:
    """An Open MPI build is not started by MPICH's mpiexec that comes first on PATH."""
    from dare_cli.ra.simulate.specfem.launcher import OPEN_MPI, program_flavour, resolve_launcher

    if program_flavour(NATIVE_BIN / "xspecfem3D") != OPEN_MPI:
        pytest.fail("the native SPECFEM3D build (make specfem) is needed, linked to Open MPI")
    first, second = tmp_path / "venv-bin", tmp_path / "usr-bin"
    first.mkdir()
    second.mkdir()
    _fake_launcher(first, "mpiexec", "HYDRA build details:\n    Version: 5.0.2")
    wanted = _fake_launcher(second, "mpirun.openmpi", "mpirun (Open MPI) 4.1.4")
    search = f"{first}{os.pathsep}{second}"
    programs = [NATIVE_BIN / "xmeshfem3D"]
    resolved = resolve_launcher("mpiexec", programs, search_path=search)
    assert (resolved.path, resolved.flavour) == (str(wanted), OPEN_MPI)
    # none of the build's MPI on PATH: a clear error naming both
    wanted.unlink()
    with pytest.raises(ConfigError, match=r"built with Open MPI, but no Open MPI launcher.*"
                                          r"mpiexec \(MPICH\)"):
        resolve_launcher("mpiexec", programs, search_path=search)


def test_launcher_given_as_a_path_and_open_mpi_run_as_root(tmp_path: Path) -> None:
    from dare_cli.ra.simulate.specfem.launcher import (
        OPEN_MPI,
        launch_arguments,
        launch_environment,
        resolve_launcher,
    )

    path = _fake_launcher(tmp_path, "mpirun", "mpirun (Open MPI) 4.1.4")
    resolved = resolve_launcher(str(path), [NATIVE_BIN / "xmeshfem3D"])
    assert (resolved.path, resolved.flavour) == (str(path), OPEN_MPI)
    config = SpecfemConfig(launcher=str(path))  # a path passes the configuration's check
    assert launch_argv(config.launcher, 4, "x") == [str(path), "-np", "4", "x"]
    assert launch_arguments(resolved, 4, (), cores=2) == ("--oversubscribe",)
    assert launch_arguments(resolved, 2, (), cores=2) == ()
    assert launch_arguments(resolved, 4, ("--map-by", "core"), cores=2) == ("--map-by", "core")
    env = launch_environment(resolved, {"PATH": "/bin"})
    assert env is not None
    if os.geteuid() == 0:
        assert env["OMPI_ALLOW_RUN_AS_ROOT"] == env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] == "1"
    else:
        assert "OMPI_ALLOW_RUN_AS_ROOT" not in env


def test_a_solver_that_exits_0_without_ending_the_simulation_fails(tmp_path: Path) -> None:
    """SPECFEM3D can stop on a fatal error with status 0: its log decides."""
    from dare_cli.ra.simulate.specfem.backends import check_completed

    output = tmp_path / "OUTPUT_FILES"
    output.mkdir()
    (output / "output_solver.txt").write_text(" Time step #  400\n")
    with pytest.raises(SpecfemRunError, match="did not end normally"):
        check_completed(output)
    (output / "output_solver.txt").write_text(" Time step #  840\n End of the simulation\n")
    check_completed(output)
    (output / "error_message000001.txt").write_text("Error: element not found\n")
    with pytest.raises(SpecfemRunError, match=r"wrote error_message000001\.txt") as caught:
        check_completed(output)
    assert "[error_message000001.txt] Error: element not found" in str(caught.value)


# -- where SPECFEM ran is not part of what it computed ------------------------------------------
@needs_mpiexec
def test_synthetics_simulated_with_one_backend_are_current_for_a_run_with_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dare ra simulate --specfem-bin DIR`, then `dare ra run` without it, skips simulate."""
    run_dir = tmp_path / "run"
    _download_stage(run_dir, PICKED)
    lines: list[str] = []
    first = _run_simulate(_config(run_dir), monkeypatch, lines)
    assert first.stages[0].status == "ran"  # type: ignore[attr-defined]
    # what a later `dare ra run` reads from a configuration that names no bin_dir, another
    # backend, launcher or resource limits: the same synthetics
    later = _config(run_dir, bin_dir=None, backend="docker", launcher="mpirun", workers=3,
                    cpus="2", keep_databases=True)
    second = build_pipeline(later).run(run_dir, only=["simulate"])
    assert second.stages[0].status == "skipped"  # type: ignore[attr-defined]
    # while what changes the synthetics makes it run again (and, here, ask for bin_dir)
    changed = _config(run_dir, bin_dir=None, element_size_km=4.0)
    third = build_pipeline(changed).run(run_dir, only=["simulate"])
    assert third.stages[0].status == "failed"  # type: ignore[attr-defined]
    assert "bin_dir" in str(third.stages[0].error)  # type: ignore[attr-defined]


def test_execution_keys_are_fields_of_the_configuration() -> None:
    fields = {f.name for f in dataclasses.fields(SpecfemConfig)}
    known_later = {"build_args", "kubernetes"}  # set by the docker/kubernetes backends' keys
    assert SpecfemConfig.EXECUTION_KEYS - fields <= known_later
    assert "data_dir" not in SpecfemConfig.EXECUTION_KEYS  # its files are fingerprinted
