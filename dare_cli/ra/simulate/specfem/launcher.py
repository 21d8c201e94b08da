"""The MPI launcher that matches a SPECFEM3D build.

A SPECFEM3D build is linked against one MPI implementation, and only that implementation's
launcher starts its ranks as one job: MPICH's ``mpiexec`` (which a Python environment with
``mpich`` from PyPI puts first on ``PATH``) starts an Open MPI build as NPROC separate
one-rank jobs, and SPECFEM stops with "wrong number of MPI processes". So the launcher is
resolved, not taken from ``PATH`` blindly:

* the implementation is read from the programs' dynamic libraries (``ldd``: ``libmpi.so.40``
  is Open MPI, ``libmpich``/``libmpi.so.12`` MPICH or a derivative such as Intel MPI);
* the launcher is the first candidate on ``PATH`` whose ``--version`` names that
  implementation, among the configured name and the implementation's own names
  (``mpirun.openmpi``, ``mpiexec.mpich``, ``mpiexec.hydra``...), as an absolute path;
* a launcher given as a path is used as it is; ``srun`` (Slurm starts the ranks for any
  implementation built with PMI support) is only looked up.

Open MPI refuses to run as root and to start more ranks than there are cores: as root,
:func:`launch_environment` sets Open MPI's documented ``OMPI_ALLOW_RUN_AS_ROOT`` pair, and
:func:`launch_arguments` adds ``--oversubscribe`` when NPROC exceeds the cores (what a laptop
run of a 4-slice mesh needs; on a cluster the scheduler's allocation decides).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dare_cli.ra.errors import ConfigError

#: MPI implementations told apart.
OPEN_MPI = "Open MPI"
MPICH = "MPICH"
#: Launcher names tried per implementation, after the configured one.
FLAVOUR_LAUNCHERS = {
    OPEN_MPI: ("mpirun.openmpi", "mpiexec.openmpi", "mpirun", "mpiexec"),
    MPICH: ("mpiexec.mpich", "mpirun.mpich", "mpiexec.hydra", "mpiexec", "mpirun"),
}
#: Bare launcher names accepted in ``[simulate.specfem] launcher`` (any path is accepted too).
LAUNCHER_NAMES = ("mpirun", "mpiexec", "srun")


@dataclass(frozen=True)
class Launcher:
    """A resolved launcher.

    Attributes
    ----------
    path
        Absolute path of the executable (or the bare name when it was not found: the run fails
        with a clear error at :meth:`~.backends.LocalBackend.check`).
    flavour
        :data:`OPEN_MPI`, :data:`MPICH` or ``None`` (unknown, or srun).
    """

    path: str
    flavour: str | None

    @property
    def is_srun(self) -> bool:
        """Whether this is Slurm's ``srun`` (``-n`` instead of ``-np``)."""
        return Path(self.path).name == "srun"


def _library_flavour(text: str) -> str | None:
    if re.search(r"libmpi\.so\.40|libopen-pal|libopen-rte", text):
        return OPEN_MPI
    if re.search(r"libmpich|libmpi\.so\.12|libmpifort", text):
        return MPICH
    return None


def program_flavour(program: str | os.PathLike[str]) -> str | None:
    """The MPI implementation a program is linked against (``None``: unknown, e.g. a script).

    Read from ``ldd``'s list of libraries; programs that are not ELF executables, or machines
    without ``ldd``, give ``None``.
    """
    ldd = shutil.which("ldd")
    path = Path(program)
    if ldd is None or not path.is_file():
        return None
    with path.open("rb") as handle:
        if handle.read(4) != b"\x7fELF":
            return None
    done = subprocess.run([ldd, os.fspath(path)], capture_output=True, text=True, check=False,
                          timeout=30)
    return _library_flavour(done.stdout)


@functools.lru_cache(maxsize=64)
def launcher_flavour(path: str) -> str | None:
    """The MPI implementation of a launcher, from its ``--version`` output."""
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False,
                              timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout + done.stderr
    if "Open MPI" in text or "OpenRTE" in text:
        return OPEN_MPI
    if re.search(r"HYDRA|MPICH|Intel\(R\) MPI", text):
        return MPICH
    return None


def _candidates(name: str, flavour: str | None, search_path: str | None) -> list[str]:
    names = [name, *(FLAVOUR_LAUNCHERS.get(flavour or "", ()))]
    found: list[str] = []
    folders = (search_path if search_path is not None
               else os.environ.get("PATH", os.defpath)).split(os.pathsep)
    for candidate in dict.fromkeys(names):
        for folder in folders:
            if not folder:
                continue
            path = os.path.abspath(os.path.join(folder, candidate))
            if os.path.isfile(path) and os.access(path, os.X_OK) and path not in found:
                found.append(path)
    return found


def resolve_launcher(launcher: str, programs: Sequence[str | os.PathLike[str]], *,
                     search_path: str | None = None) -> Launcher:
    """The launcher that starts ``programs`` as one MPI job.

    Parameters
    ----------
    launcher
        A name of :data:`LAUNCHER_NAMES`, or a path to an executable (used as it is).
    programs
        SPECFEM3D's programs (their MPI implementation is read from the first one that is an
        ELF executable).
    search_path
        ``PATH`` to search (default: this process's).

    Raises
    ------
    ConfigError
        When the programs are built with one MPI implementation and no launcher of it is on
        ``PATH`` (the message names the implementation and what was found instead).
    """
    if os.sep in launcher:
        path = os.path.abspath(launcher)
        return Launcher(path, launcher_flavour(path) if os.access(path, os.X_OK) else None)
    if launcher not in LAUNCHER_NAMES:
        raise ConfigError(f"[simulate.specfem] launcher must be one of "
                          f"{', '.join(LAUNCHER_NAMES)} or a path, not {launcher!r}")
    if launcher == "srun":
        found = shutil.which("srun", path=search_path)
        return Launcher(os.path.abspath(found) if found else "srun", None)
    wanted = next((f for f in map(program_flavour, programs) if f is not None), None)
    candidates = _candidates(launcher, wanted, search_path)
    if wanted is None:
        return Launcher(candidates[0] if candidates else launcher,
                        launcher_flavour(candidates[0]) if candidates else None)
    for path in candidates:
        if launcher_flavour(path) == wanted:
            return Launcher(path, wanted)
    seen = ", ".join(f"{p} ({launcher_flavour(p) or 'unknown'})" for p in candidates) or "none"
    raise ConfigError(
        f"SPECFEM3D's programs are built with {wanted}, but no {wanted} launcher is on PATH "
        f"(found: {seen}); install it, or set [simulate.specfem] launcher to its path")


def launch_environment(launcher: Launcher, env: Mapping[str, str] | None = None
                       ) -> dict[str, str] | None:
    """The programs' environment: Open MPI allowed to run as root when dare runs as root."""
    if launcher.flavour != OPEN_MPI or os.geteuid() != 0:
        return dict(env) if env is not None else None
    merged = dict(os.environ if env is None else env)
    merged.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    merged.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return merged


def launch_arguments(launcher: Launcher, nproc: int, extra: Sequence[str] = (),
                     cores: int | None = None) -> tuple[str, ...]:
    """``extra``, plus ``--oversubscribe`` for Open MPI when ``nproc`` exceeds the cores."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    if (launcher.flavour == OPEN_MPI and nproc > cores
            and not any(a in ("--oversubscribe", "-oversubscribe") or a.startswith("--map-by")
                        for a in extra)):
        return (*extra, "--oversubscribe")
    return tuple(extra)
