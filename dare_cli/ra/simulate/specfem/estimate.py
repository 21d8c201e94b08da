"""Run time and memory of a SPECFEM3D run, estimated from its element count and time steps.

The element count is SPECFEM3D's own (``NSPEC``, as ``xmeshfem3D`` computes it in
``compute_parameters.f90``: ``NEX_XI * NEX_ETA * NZ`` for a regular mesh; with doublings, the
regular parts at their coarsened sizes plus 32 elements per doubling "superbrick"). The model,
for ``P`` ranks on ``C`` cores with ``L`` other runnable processes (the load average; 0 on an
idle machine), each process getting ``s = min(1, C / (L + P))`` of a core:

* solver work = :data:`SOLVER_CPU_S` x elements x NSTEP core-seconds (with attenuation; times
  :data:`NO_ATTENUATION_FACTOR` without);
* solver wall time = work / (P x s) + :data:`SOLVER_SETUP_S` (the ranks share the elements
  evenly; ranks beyond the cores share them);
* mesher and database wall time = :data:`SETUP_S` + :data:`SETUP_CPU_S_PER_ELEMENT` x elements
  / (P x s);
* memory = :data:`MEMORY_MB` + :data:`MEMORY_MB_PER_ELEMENT` x elements / P per rank (the
  largest resident set of a solver rank; times :data:`NO_ATTENUATION_MEMORY_FACTOR` for the
  per-element part without attenuation), times P in all.

The constants were measured on SPECFEM3D 4.1.0 built natively with gfortran (``-O3
-finline-functions``, configure's default) and Open MPI on a 2-core AMD EPYC virtual machine
shared with other work (load 1-7): SPECFEM's socal1D example at three mesh sizes, one and
two ranks, with and without attenuation, and dare's own regular meshes of the Ridgecrest
example at two sizes, one and two ranks, and a mesh sized by ``resolve_period`` from a model
file. The runs, the machine's load and the measured times are in
``tests/ra/data/specfem/calibration.csv`` (made with ``benchmarks/specfem_calibration.py``);
``tests/ra/test_specfem_estimate.py`` checks that the model reproduces each within a factor
of 2. The CPU time per element and step varied between 36 and 45 µs with attenuation (26 µs
without), more on a busier machine (the two virtual cores share caches); the constant is their
middle. Other machines differ (a faster core or a vectorising build can be several times
quicker per element and step: re-measure with the benchmark); the memory per element is a
property of the code and its build, and should travel better.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dare_cli.ra.simulate.specfem.mesh import MeshSpec
from dare_cli.ra.simulate.specfem.parfile import fortran_value

__all__ = [
    "MEMORY_MB",
    "MEMORY_MB_PER_ELEMENT",
    "NO_ATTENUATION_FACTOR",
    "NO_ATTENUATION_MEMORY_FACTOR",
    "SETUP_CPU_S_PER_ELEMENT",
    "SETUP_S",
    "SOLVER_CPU_S",
    "SOLVER_SETUP_S",
    "RunEstimate",
    "count_elements",
    "estimate_from_par",
    "estimate_run",
]

#: Solver CPU seconds per element and time step, with attenuation (3 SLS) and anisotropy on.
SOLVER_CPU_S = 40e-6
#: Solver CPU time without attenuation, relative to with it (measured: 0.57 and 0.74).
NO_ATTENUATION_FACTOR = 0.64
#: Solver start-up (MPI, reading the databases, locating sources and receivers), s.
SOLVER_SETUP_S = 1.0
#: Mesher + database generation: fixed part (two MPI start-ups), s, and CPU s per element.
SETUP_S = 1.0
SETUP_CPU_S_PER_ELEMENT = 5.2e-4
#: Resident memory of a solver rank: fixed part and per element of the rank, MB.
MEMORY_MB = 19.0
MEMORY_MB_PER_ELEMENT = 0.0387
#: Memory per element without attenuation, relative to with it (measured: 0.61).
NO_ATTENUATION_MEMORY_FACTOR = 0.61


def count_elements(mesh: MeshSpec) -> int:
    """Number of spectral elements of the internal mesher's mesh (SPECFEM's ``NSPEC``, all ranks).

    Parameters
    ----------
    mesh
        The mesh.

    Returns
    -------
    int
        ``NEX_XI * NEX_ETA * NZ`` for a regular mesh; with ``n`` doublings at element layers
        ``d_1 < ... < d_n``, the regular parts (below ``d_1 - 2``, between the doublings and
        above ``d_n``) with ``NEX / 2**m`` elements a side (``m`` the doublings above), plus 32
        elements per superbrick (``NEX_XI * NEX_ETA / (2 * 2**m)**2`` bricks per doubling).
    """
    if mesh.regular:
        return mesh.nex_xi * mesh.nex_eta * mesh.nz
    doublings = sorted(mesh.doublings)
    n = len(doublings)
    total = 0
    for j in range(n + 1):
        factor = 2 ** (n - j)
        bottom = 0 if j == 0 else doublings[j - 1]
        top = mesh.nz - 1 if j == n else doublings[j] - 3
        layers = max(0, top - bottom + 1)
        total += (mesh.nex_xi // factor) * (mesh.nex_eta // factor) * layers
        if j < n:
            total += 32 * (mesh.nex_xi // (2 * factor)) * (mesh.nex_eta // (2 * factor))
    return total


@dataclass(frozen=True)
class RunEstimate:
    """Estimated cost of one SPECFEM3D run (see the module notes for the model).

    Attributes
    ----------
    elements
        Spectral elements (all ranks).
    nstep
        Time steps.
    nproc
        MPI ranks.
    cores
        Cores the ranks run on.
    load
        Other runnable processes on those cores (load average) assumed.
    attenuation
        Whether the run has attenuation.
    solver_cpu_s
        Work of the solver, core-seconds (the CPU time of one rank doing it all; MPI ranks
        that wait for each other by polling add CPU time beyond it).
    solver_wall_s
        Wall time of the solver, s.
    setup_wall_s
        Wall time of the mesher and the database generation, s.
    memory_mb_per_rank
        Largest resident memory of a solver rank, MB.
    """

    elements: int
    nstep: int
    nproc: int
    cores: int
    load: float
    attenuation: bool
    solver_cpu_s: float
    solver_wall_s: float
    setup_wall_s: float
    memory_mb_per_rank: float

    @property
    def wall_s(self) -> float:
        """Wall time of the three programs, s."""
        return self.setup_wall_s + self.solver_wall_s

    @property
    def memory_mb(self) -> float:
        """Memory of all ranks, MB."""
        return self.memory_mb_per_rank * self.nproc

    @property
    def element_steps(self) -> int:
        """Elements x time steps."""
        return self.elements * self.nstep

    def describe(self) -> str:
        """One line: elements, steps, time and memory."""
        busy = f", load {self.load:.1f}" if self.load else ""
        return (f"{self.elements} elements x {self.nstep} steps on {self.nproc} rank(s), "
                f"{self.cores} core(s){busy}: about {_duration(self.wall_s)} wall "
                f"(solver {_duration(self.solver_wall_s)}, mesher and databases "
                f"{_duration(self.setup_wall_s)}), {self.memory_mb:.0f} MB "
                f"({self.memory_mb_per_rank:.0f} MB per rank)")

    def as_dict(self) -> dict[str, Any]:
        """The estimate as JSON-ready values (for report.json)."""
        return {"elements": self.elements, "nstep": self.nstep, "nproc": self.nproc,
                "cores": self.cores, "load": round(self.load, 2),
                "attenuation": self.attenuation,
                "solver_cpu_s": round(self.solver_cpu_s, 1),
                "solver_wall_s": round(self.solver_wall_s, 1),
                "setup_wall_s": round(self.setup_wall_s, 1), "wall_s": round(self.wall_s, 1),
                "memory_mb_per_rank": round(self.memory_mb_per_rank, 1),
                "memory_mb": round(self.memory_mb, 1)}


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_run(mesh: MeshSpec | None = None, nstep: int = 1, *, elements: int | None = None,
                 nproc: int | None = None, cores: int | None = None, load: float = 0.0,
                 attenuation: bool = True) -> RunEstimate:
    """Estimate the run time and memory of a SPECFEM3D run.

    Parameters
    ----------
    mesh
        The mesh (its element count and NPROC), or None with ``elements`` and ``nproc``.
    nstep
        Time steps.
    elements
        Element count (default: :func:`count_elements` of ``mesh``).
    nproc
        MPI ranks (default: the mesh's).
    cores
        Cores available (default: this machine's, ``os.cpu_count()``).
    load
        Other runnable processes on those cores (e.g. ``os.getloadavg()[0]`` before the run;
        default 0: an idle machine).
    attenuation
        The Par_file's ``ATTENUATION``.

    Returns
    -------
    RunEstimate
    """
    if elements is None:
        if mesh is None:
            raise ValueError("give a mesh or an element count")
        elements = count_elements(mesh)
    if nproc is None:
        nproc = mesh.nproc if mesh is not None else 1
    cores = cores or os.cpu_count() or 1
    if nstep < 0 or elements < 0 or nproc < 1 or cores < 1 or load < 0:
        raise ValueError("nstep, elements and load must be >= 0, nproc and cores >= 1")
    share = min(1.0, cores / (load + nproc))  # of a core, for each process
    speed = nproc * share  # cores' worth of work done per second
    per_step = SOLVER_CPU_S * (1.0 if attenuation else NO_ATTENUATION_FACTOR)
    work = per_step * elements * nstep
    per_element = MEMORY_MB_PER_ELEMENT * (1.0 if attenuation else NO_ATTENUATION_MEMORY_FACTOR)
    return RunEstimate(
        elements=elements, nstep=nstep, nproc=nproc, cores=cores, load=load,
        attenuation=attenuation, solver_cpu_s=work,
        solver_wall_s=work / speed + SOLVER_SETUP_S,
        setup_wall_s=SETUP_S + SETUP_CPU_S_PER_ELEMENT * elements / speed,
        memory_mb_per_rank=MEMORY_MB + per_element * elements / nproc)


def estimate_from_par(mesh: MeshSpec, par: Mapping[str, Any], *, cores: int | None = None,
                      load: float = 0.0) -> RunEstimate:
    """:func:`estimate_run` with NSTEP, NPROC and ATTENUATION of Par_file values."""
    def get(key: str, default: Any) -> Any:
        value = par.get(key, default)
        return fortran_value(value) if isinstance(value, str) else value

    return estimate_run(mesh, int(get("NSTEP", 1)), nproc=int(get("NPROC", mesh.nproc)),
                        cores=cores, load=load, attenuation=bool(get("ATTENUATION", True)))
