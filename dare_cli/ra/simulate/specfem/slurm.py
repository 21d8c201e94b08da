"""A Slurm batch script for a SPECFEM3D run, for sites where jobs go through the scheduler.

The script runs the same sequence as the ``local`` backend (:mod:`.backends`): from the run's
working folder (the one holding ``DATA/``), ``xmeshfem3D``, ``xgenerate_databases`` and
``xspecfem3D``, each as ``srun -n NPROC``, stopping at the first failure. SPECFEM3D needs
exactly ``NPROC`` MPI ranks (the mesh's ``NPROC_XI x NPROC_ETA`` slices), so the job asks for
``--ntasks=NPROC``; nodes, time limit, partition, account, modules and further ``#SBATCH`` lines
are options. Commands given as ``after`` (e.g. the ``dare`` command that collects the
seismograms into the Rapid Assessment) run once the solver has succeeded.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dare_cli.ra.errors import ConfigError
from engine.files import write_atomic

__all__ = ["SlurmOptions", "slurm_script", "write_slurm_script"]

#: Slurm's accepted time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
#: The programs of a run with the internal mesher, in order.
PROGRAMS = ("xmeshfem3D", "xgenerate_databases", "xspecfem3D")


@dataclass(frozen=True)
class SlurmOptions:
    """Resources and environment of the batch job.

    Attributes
    ----------
    nodes
        ``--nodes``.
    tasks
        ``--ntasks``; ``None``: NPROC. Any other value than NPROC is refused (SPECFEM3D runs
        on exactly NPROC ranks).
    tasks_per_node
        ``--ntasks-per-node`` (optional).
    time
        ``--time`` limit, e.g. ``"02:00:00"`` or ``"1-00:00:00"``.
    partition, account
        ``--partition`` and ``--account`` (optional).
    job_name
        ``--job-name``.
    modules
        Environment modules loaded before the run (``module load NAME``), e.g. the site's
        compiler and MPI the binaries were built with.
    extra
        Further ``#SBATCH`` options, written as given (e.g. ``"--mem-per-cpu=2G"``).
    """

    nodes: int = 1
    tasks: int | None = None
    tasks_per_node: int | None = None
    time: str = "01:00:00"
    partition: str | None = None
    account: str | None = None
    job_name: str = "dare-specfem"
    modules: tuple[str, ...] = field(default=())
    extra: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ConfigError(f"Slurm --nodes must be >= 1, not {self.nodes}")
        if self.tasks is not None and self.tasks < 1:
            raise ConfigError(f"Slurm --tasks must be >= 1, not {self.tasks}")
        if self.tasks_per_node is not None and self.tasks_per_node < 1:
            raise ConfigError(f"Slurm --ntasks-per-node must be >= 1, not {self.tasks_per_node}")
        if not _TIME.match(self.time):
            raise ConfigError(f"Slurm --time {self.time!r} is not a Slurm time (MM, HH:MM:SS or "
                              "D-HH:MM:SS)")
        for name in ("partition", "account", "job_name"):
            value = getattr(self, name)
            if value is not None and (not value or any(c.isspace() for c in value)):
                raise ConfigError(f"Slurm {name} {value!r} must be one word")
        for option in self.extra:
            if not option.startswith("-") or "\n" in option:
                raise ConfigError(f"extra #SBATCH option {option!r} must be one option such as "
                                  "'--mem-per-cpu=2G'")


def slurm_script(
    work_dir: str | os.PathLike[str],
    *,
    bin_dir: str | os.PathLike[str],
    nproc: int,
    options: SlurmOptions | None = None,
    after: Sequence[Sequence[str]] = (),
) -> str:
    """Text of a Slurm batch script running SPECFEM3D in ``work_dir``.

    Parameters
    ----------
    work_dir
        Folder with ``DATA/`` (Par_file, CMTSOLUTION, STATIONS, meshfem3D_files/); SPECFEM3D
        writes ``OUTPUT_FILES/`` there. Written as an absolute path.
    bin_dir
        Folder of ``xmeshfem3D``, ``xgenerate_databases`` and ``xspecfem3D`` on the cluster.
    nproc
        MPI ranks: the Par_file's NPROC.
    options
        Job resources (defaults: :class:`SlurmOptions`).
    after
        Commands (argument lists) to run after the solver succeeded.

    Returns
    -------
    str

    Raises
    ------
    ConfigError
        ``options.tasks`` differs from ``nproc``, or more nodes than tasks.
    """
    options = options or SlurmOptions()
    if nproc < 1:
        raise ConfigError(f"NPROC must be >= 1, not {nproc}")
    tasks = options.tasks if options.tasks is not None else nproc
    if tasks != nproc:
        raise ConfigError(f"Slurm --tasks {tasks} differs from the Par_file's NPROC = {nproc}: "
                          "SPECFEM3D runs on exactly NPROC MPI ranks (set "
                          "[simulate.specfem] nproc_xi/nproc_eta instead)")
    if options.nodes > tasks:
        raise ConfigError(f"Slurm --nodes {options.nodes} is more than the {tasks} task(s)")
    work = Path(work_dir).resolve()
    binaries = Path(bin_dir)
    lines = ["#!/bin/bash", f"#SBATCH --job-name={options.job_name}",
             f"#SBATCH --nodes={options.nodes}", f"#SBATCH --ntasks={tasks}"]
    if options.tasks_per_node is not None:
        lines.append(f"#SBATCH --ntasks-per-node={options.tasks_per_node}")
    lines.append(f"#SBATCH --time={options.time}")
    if options.partition:
        lines.append(f"#SBATCH --partition={options.partition}")
    if options.account:
        lines.append(f"#SBATCH --account={options.account}")
    lines.append(f"#SBATCH --output={work / 'slurm-%j.out'}")
    lines.extend(f"#SBATCH {option}" for option in options.extra)
    lines += [
        "#",
        "# SPECFEM3D Cartesian run written by `dare ra simulate --emit-batch slurm`:",
        "# mesher, databases, solver, each on NPROC ranks; stops at the first failure.",
        "set -euo pipefail",
    ]
    lines.extend(f"module load {shlex.quote(module)}" for module in options.modules)
    lines += [f"cd {shlex.quote(str(work))}", "mkdir -p OUTPUT_FILES/DATABASES_MPI"]
    for program in PROGRAMS:
        lines += [f'echo "$(date -u +%FT%TZ) {program}"',
                  shlex.join(["srun", "-n", str(tasks), str(binaries / program)])]
    for command in after:
        lines.append(shlex.join(list(command)))
    lines.append('echo "$(date -u +%FT%TZ) done"')
    return "\n".join(lines) + "\n"


def write_slurm_script(path: str | os.PathLike[str], work_dir: str | os.PathLike[str], *,
                       bin_dir: str | os.PathLike[str], nproc: int,
                       options: SlurmOptions | None = None,
                       after: Sequence[Sequence[str]] = ()) -> Path:
    """Write :func:`slurm_script` to ``path`` (atomically, executable); return the path."""
    text = slurm_script(work_dir, bin_dir=bin_dir, nproc=nproc, options=options, after=after)
    target = Path(path)
    write_atomic(target, text.encode())
    target.chmod(0o755)
    return target
