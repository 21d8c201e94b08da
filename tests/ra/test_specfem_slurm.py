"""The Slurm batch script of a SPECFEM3D run (checked with bash -n; Slurm is not here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dare_cli.ra.errors import ConfigError
from dare_cli.ra.simulate.specfem.slurm import SlurmOptions, slurm_script, write_slurm_script


def test_script_runs_the_sequence_with_srun_on_nproc_tasks(tmp_path: Path) -> None:
    options = SlurmOptions(nodes=2, time="02:30:00", partition="compute", account="geo42",
                           modules=("gcc/12", "openmpi/4.1"), extra=("--mem-per-cpu=2G",))
    path = write_slurm_script(tmp_path / "specfem.slurm", tmp_path / "work",
                              bin_dir="/opt/specfem3d/bin", nproc=8, options=options,
                              after=[["dare", "ra", "simulate", "ra.toml", "--collect",
                                      "work/OUTPUT_FILES"]])
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    sbatch = [line for line in lines if line.startswith("#SBATCH")]
    assert sbatch == ["#SBATCH --job-name=dare-specfem", "#SBATCH --nodes=2",
                      "#SBATCH --ntasks=8", "#SBATCH --time=02:30:00",
                      "#SBATCH --partition=compute", "#SBATCH --account=geo42",
                      f"#SBATCH --output={(tmp_path / 'work').resolve()}/slurm-%j.out",
                      "#SBATCH --mem-per-cpu=2G"]
    body = [line for line in lines if not line.startswith("#")]
    assert body.index("module load gcc/12") < body.index("module load openmpi/4.1") < \
        body.index(f"cd {(tmp_path / 'work').resolve()}")
    runs = [line for line in body if line.startswith("srun")]
    assert runs == [f"srun -n 8 /opt/specfem3d/bin/{p}"
                    for p in ("xmeshfem3D", "xgenerate_databases", "xspecfem3D")]
    assert "set -euo pipefail" in body  # stops at the first failure
    assert body.index(runs[-1]) < body.index(
        "dare ra simulate ra.toml --collect work/OUTPUT_FILES")
    assert path.stat().st_mode & 0o111
    assert subprocess.run(["bash", "-n", str(path)], check=False).returncode == 0


def test_tasks_must_equal_nproc_and_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--tasks 4 differs from the Par_file's NPROC = 8"):
        slurm_script(tmp_path, bin_dir="/b", nproc=8, options=SlurmOptions(tasks=4))
    with pytest.raises(ConfigError, match="--nodes 3 is more than the 2 task"):
        slurm_script(tmp_path, bin_dir="/b", nproc=2, options=SlurmOptions(nodes=3))
    with pytest.raises(ConfigError, match="not a Slurm time"):
        SlurmOptions(time="2 hours")
    with pytest.raises(ConfigError, match="partition 'a b' must be one word"):
        SlurmOptions(partition="a b")


def test_paths_with_spaces_are_quoted(tmp_path: Path) -> None:
    text = slurm_script(tmp_path / "my run", bin_dir="/opt/spec fem/bin", nproc=1)
    assert f"cd '{(tmp_path / 'my run').resolve()}'" in text
    assert "srun -n 1 '/opt/spec fem/bin/xspecfem3D'" in text
