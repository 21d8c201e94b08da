"""Running SPECFEM3D Cartesian for a Rapid Assessment: inputs, the MPI run, the seismograms.

One run covers every station: :func:`prepare_run` writes ``DATA/`` (``Par_file``,
``CMTSOLUTION``, ``STATIONS``, the internal mesher's ``Mesh_Par_file`` and interfaces) for a
mesh sized around the event and the stations, and checks the set-up (stations inside, time
step stable, NPROC matching the mesh split) before anything runs. A backend then runs the
sequence ``xmeshfem3D`` -> ``xgenerate_databases`` -> ``xspecfem3D``, each on NPROC MPI ranks:

``local``
    The programs of ``bin_dir`` under the local ``mpirun``/``mpiexec``/``srun``
    (:class:`LocalBackend`), for a laptop or an HPC node with SPECFEM3D built.
``docker``
    The image of ``containers/specfem/Dockerfile`` on the cluster of
    ``containers/specfem/docker-compose.yml`` (:class:`DockerBackend`): the ``docker`` SDK
    builds (:mod:`dare_cli.images`) or reuses the image, copies the inputs
    into the cluster's shared volume, runs the programs in the head container with
    ``mpirun --hostfile`` over the workers and copies the outputs back; ``docker compose``
    (the SDK has no compose API) brings the cluster up and, whatever happens, down.

SPECFEM3D writes its progress to ``OUTPUT_FILES/output_*.txt`` rather than to stdout: both
backends pass the program's output and that log, line by line, to a ``log`` callback (the
progress display). A program that fails (non-zero exit) raises :class:`SpecfemRunError` with
the tail of its log and of SPECFEM's ``error_message*.txt``. :func:`collect_seismograms` turns
the displacement seismograms (``NET.STA.BX?.semd``) into one miniSEED file per station, as the
embedded solver writes them.

A Slurm batch script for the same run comes from :mod:`.slurm`; Kubernetes manifests (the
``kubernetes`` backend, which runs nothing from dare) from :mod:`.kubernetes`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import math
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from obspy import Inventory, Stream, UTCDateTime
from obspy.core.event import Event

from dare_cli import __version__
from dare_cli.ra.errors import ConfigError, RAError
from dare_cli.ra.simulate.specfem.checks import (
    Finding,
    review_simulation,
    stations_in_mesh,
)
from dare_cli.ra.simulate.specfem.cmtsolution import (
    CMTSolution,
    cmtsolution_from_double_couple,
    cmtsolution_from_event,
    read_cmtsolutions,
)
from dare_cli.ra.simulate.specfem.errors import SpecfemFileError
from dare_cli.ra.simulate.specfem.estimate import RunEstimate, estimate_from_par
from dare_cli.ra.simulate.specfem.inputs import write_specfem_inputs
from dare_cli.ra.simulate.specfem.launcher import (
    LAUNCHER_NAMES,
    Launcher,
    launch_arguments,
    launch_environment,
    resolve_launcher,
)
from dare_cli.ra.simulate.specfem.mesh import (
    Material,
    MeshLayer,
    MeshSpec,
    read_mesh_spec,
)
from dare_cli.ra.simulate.specfem.parfile import fortran_value, read_parfile
from dare_cli.ra.simulate.specfem.resolution import MeshResolution, mesh_resolution
from dare_cli.ra.simulate.specfem.seismograms import read_seismograms
from dare_cli.ra.simulate.specfem.sizing import check_mesh_settings, mesh_fingerprint, size_mesh
from dare_cli.ra.simulate.specfem.stations import (
    StationLine,
    read_stations,
    stations_from_inventory,
)
from dare_cli.ra.simulate.specfem.velocity_model import read_velocity_model

__all__ = [
    "BACKENDS",
    "LAUNCHERS",
    "SOCAL_1D",
    "STEPS",
    "DockerBackend",
    "LayerConfig",
    "LocalBackend",
    "SpecfemConfig",
    "SpecfemRun",
    "SpecfemRunError",
    "SpecfemStep",
    "cluster",
    "collect_seismograms",
    "compose_argv",
    "compose_environment",
    "default_templates",
    "inputs_archive",
    "launch_argv",
    "parfile_nproc",
    "prepare_data_dir",
    "prepare_run",
    "specfem_steps",
]

#: Backends of ``[simulate.specfem] backend``.
BACKENDS = ("local", "docker", "kubernetes")
#: Launchers of the local backend (``srun`` on a Slurm allocation).
LAUNCHERS = LAUNCHER_NAMES
#: SPECFEM3D's programs of a run with the internal mesher and the log each writes.
STEPS = (("xmeshfem3D", "output_meshfem3D.txt"),
         ("xgenerate_databases", "output_generate_databases.txt"),
         ("xspecfem3D", "output_solver.txt"))
#: Where SPECFEM3D is in the image of containers/specfem/Dockerfile, and the shared volume.
IMAGE_BIN_DIR = "/opt/specfem3d/bin"
IMAGE_WORK_DIR = "/work"
#: Lines of log kept for the error message of a failed program.
TAIL_LINES = 25

Log = Callable[[str], None]


def _quiet(line: str) -> None:
    """Default log callback: drop the line."""


class SpecfemRunError(RAError):
    """A SPECFEM3D program (or the cluster around it) failed.

    Parameters
    ----------
    step
        The program (``xmeshfem3D``...) or the cluster action.
    reason
        What happened (exit status...).
    tail
        The last lines of its output and logs.
    """

    def __init__(self, step: str, reason: str, tail: Sequence[str] = ()) -> None:
        text = f"SPECFEM3D {step} {reason}"
        if tail:
            text += "; last lines of its log:\n  " + "\n  ".join(tail)
        super().__init__(text)
        self.step = step
        self.reason = reason
        self.tail = list(tail)

    def __reduce__(self) -> tuple[Any, ...]:
        return (SpecfemRunError, (self.step, self.reason, self.tail))


# -- configuration -----------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerConfig:
    """A flat layer of the mesh: its top (m, z up; 0 the free surface), element count, material.

    ``rho`` in kg/m³, ``vp``/``vs`` in m/s, ``q_kappa``/``q_mu`` quality factors (9999: none).
    """

    top: float
    elements: int
    rho: float
    vp: float
    vs: float
    q_kappa: float = 9999.0
    q_mu: float = 9999.0

    def layer(self) -> MeshLayer:
        """The parfile module's :class:`MeshLayer`."""
        return MeshLayer(top=self.top, elements=self.elements,
                         material=Material(rho=self.rho, vp=self.vp, vs=self.vs,
                                           q_kappa=self.q_kappa, q_mu=self.q_mu))


#: The 1D Southern California model of SPECFEM3D's socal1D example (Kanamori & Hadley 1975,
#: Dreger & Helmberger 1990, Wald, Hutton & Given 1995): layers from the bottom up.
SOCAL_1D = (
    LayerConfig(top=-32000.0, elements=3, rho=3000.0, vp=7800.0, vs=4500.0, q_mu=1000.0),
    LayerConfig(top=-16000.0, elements=3, rho=2800.0, vp=6700.0, vs=3870.0, q_mu=500.0),
    LayerConfig(top=-5500.0, elements=3, rho=2670.0, vp=6300.0, vs=3640.0, q_mu=300.0),
    LayerConfig(top=0.0, elements=3, rho=2400.0, vp=5500.0, vs=3180.0, q_mu=100.0),
)


def _choice(name: str, value: str, known: Sequence[str]) -> None:
    if value not in known:
        import difflib

        close = difflib.get_close_matches(value, list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{name} {value!r} is not known{hint}; known: {', '.join(known)}")


@dataclass(frozen=True)
class SpecfemConfig:
    """``[simulate.specfem]``: how to run SPECFEM3D for the synthetics.

    Attributes
    ----------
    backend
        ``"local"``, ``"docker"`` or ``"kubernetes"`` (:data:`BACKENDS`; ``kubernetes`` only
        writes manifests, ``--emit-manifests``, see :mod:`.kubernetes`).
    bin_dir
        Folder of ``xmeshfem3D``, ``xgenerate_databases``, ``xspecfem3D`` (local backend and
        Slurm scripts; the docker backend uses the image's).
    launcher, launcher_args
        MPI launcher of the local backend (a name of :data:`LAUNCHERS`, resolved to the
        launcher of the MPI the programs are built with, or a path) and extra arguments placed
        before the program (e.g. ``["--oversubscribe"]``).
    nproc_xi, nproc_eta
        Mesh slices along x and y; NPROC = their product MPI ranks.
    dt, nstep
        Time step (s) and number of steps; ``None``: DT 90% of the mesh's stability limit
        (rounded down to two significant digits), NSTEP to cover ``[simulate] duration``.
    par
        Further ``Par_file`` values (``KEY = value``), e.g. ``{ATTENUATION = false}``.
    par_template, mesh_par_template
        ``Par_file`` and ``Mesh_Par_file`` of the SPECFEM3D version that runs; ``None``: the
        templates shipped in ``dare_cli/ra/simulate/specfem/templates/`` (SPECFEM3D 4.1's socal1D
        example).
    margin_km, element_size_km, depth_km, layers, doublings
        The mesh: a box ``margin_km`` wider than the event and stations on every side, surface
        elements of at most ``element_size_km`` (default 2 km), ``depth_km`` deep, flat
        ``layers`` from the bottom up (default :data:`SOCAL_1D`), mesh doublings (element
        layers; none: regular).
    max_frequency
        If given (Hz), the mesh must resolve it (5 GLL points per shortest S wavelength).
    resolve_period
        If given (s), the elements are sized so that the mesh resolves this period (see
        :mod:`.sizing`); excludes ``element_size_km``.
    model_file
        A 1D velocity model table (see :mod:`.velocity_model`) instead of ``layers``; its
        layers get elements no taller than the element size (or than ``resolve_period``
        allows).
    image, compose_file, project, workers, slots_per_worker, build, build_args
        Docker backend: image tag, compose file (default ``containers/specfem/
        docker-compose.yml`` as installed with dare), compose project name (default: a new
        one per run), worker containers, MPI slots per worker (default: NPROC spread over the
        workers), build the image when it is missing, and the build's arguments (the
        Dockerfile's ``ARG``: ``BASE_IMAGE``, ``SPECFEM_SOURCE`` = ``vendor``/``git``,
        ``SPECFEM_VERSION``, ``MAKE_JOBS``...).
    cpus, memory, shm_size
        Resource limits per container (compose variables ``SPECFEM_CPUS``...).
    keep_databases
        Keep ``OUTPUT_FILES/DATABASES_MPI`` (large) after a successful run.
    collect_from
        Folder of an ``OUTPUT_FILES`` of a run made elsewhere (e.g. a Slurm job): run nothing,
        only collect its seismograms.
    data_dir
        A SPECFEM3D ``DATA`` folder prepared by hand (``Par_file``, ``CMTSOLUTION``,
        ``STATIONS``, ``meshfem3D_files/``, e.g. one of SPECFEM's examples or a 3D set-up): run
        as it is (dare checks it, runs the three programs, collects the seismograms of its
        STATIONS); the mesh, source and time settings above are then not used.
    """

    #: Where and how SPECFEM3D runs, not what it computes: left out of the simulate stage's
    #: fingerprint (:meth:`fingerprinted`), so that synthetics made with one backend, or
    #: collected from a batch job, are current for a later ``dare ra run`` configured with
    #: another backend or none.
    EXECUTION_KEYS: ClassVar[frozenset[str]] = frozenset({
        "backend", "bin_dir", "launcher", "launcher_args", "image", "compose_file", "project",
        "workers", "slots_per_worker", "build", "build_args", "cpus", "memory", "shm_size",
        "keep_databases", "collect_from", "kubernetes"})

    backend: str = "local"
    bin_dir: str | None = None
    launcher: str = "mpirun"
    launcher_args: tuple[str, ...] = ()
    nproc_xi: int = 1
    nproc_eta: int = 1
    dt: float | None = None
    nstep: int | None = None
    par: Mapping[str, Any] = field(default_factory=dict)
    par_template: str | None = None
    mesh_par_template: str | None = None
    margin_km: float = 20.0
    element_size_km: float | None = None
    depth_km: float = 60.0
    layers: tuple[LayerConfig, ...] | None = None
    doublings: tuple[int, ...] = ()
    max_frequency: float | None = None
    resolve_period: float | None = None
    model_file: str | None = None
    image: str = "dare-specfem:v4.1.0"
    compose_file: str | None = None
    project: str | None = None
    workers: int = 1
    slots_per_worker: int | None = None
    build: bool = True
    build_args: Mapping[str, str] = field(default_factory=dict)
    cpus: str | None = None
    memory: str | None = None
    shm_size: str | None = None
    keep_databases: bool = False
    collect_from: str | None = None
    data_dir: str | None = None

    def __post_init__(self) -> None:
        _choice("backend", self.backend, BACKENDS)
        if os.sep not in self.launcher:
            _choice("launcher", self.launcher, LAUNCHERS)
        for name in ("nproc_xi", "nproc_eta"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, not {getattr(self, name)}")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0, not {self.workers}")
        if self.slots_per_worker is not None and self.slots_per_worker < 1:
            raise ConfigError(f"slots_per_worker must be >= 1, not {self.slots_per_worker}")
        if self.dt is not None and not (math.isfinite(self.dt) and self.dt > 0):
            raise ConfigError(f"dt must be > 0 s, not {self.dt}")
        if self.nstep is not None and self.nstep < 1:
            raise ConfigError(f"nstep must be >= 1, not {self.nstep}")
        for name in ("margin_km", "element_size_km", "depth_km"):
            value = getattr(self, name)
            if value is None:
                continue
            if not (math.isfinite(value) and value >= (0 if name == "margin_km" else 1e-9)):
                raise ConfigError(f"{name} must be {'>= 0' if name == 'margin_km' else '> 0'}"
                                  f" km, not {value}")
        if self.layers is not None and not self.layers:
            raise ConfigError("layers must hold at least one layer")
        check_mesh_settings(layers_given=self.layers is not None, model_file=self.model_file,
                            element_size_km=self.element_size_km,
                            resolve_period=self.resolve_period, max_frequency=self.max_frequency)
        if self.data_dir and self.collect_from:
            raise ConfigError("data_dir (run a DATA folder) and collect_from (collect a run "
                              "made elsewhere) exclude each other: give one")
        reserved = {"NPROC", "NSTEP", "DT", "UTM_PROJECTION_ZONE", "SUPPRESS_UTM_PROJECTION"}
        clash = sorted(reserved & set(self.par))
        if clash:
            raise ConfigError(f"par sets {', '.join(clash)}, which dare derives: use nproc_xi/"
                              "nproc_eta, nstep, dt (the UTM zone follows the event)")

    @property
    def nproc(self) -> int:
        """MPI ranks of the run."""
        return self.nproc_xi * self.nproc_eta

    def fingerprinted(self) -> dict[str, Any]:
        """The settings that change the synthetics (all but :attr:`EXECUTION_KEYS`).

        Unset mesh settings count as their defaults (so a configuration written before they
        existed keeps its fingerprint); a model file counts by its content.
        """
        values = {key: value for key, value in dataclasses.asdict(self).items()
                  if key not in self.EXECUTION_KEYS}
        return mesh_fingerprint(values, default_layers=[dataclasses.asdict(layer)
                                                        for layer in SOCAL_1D])

    def mesh_layers(self) -> tuple[MeshLayer, ...] | None:
        """The configured flat layers (default :data:`SOCAL_1D`), or None with a model file."""
        if self.model_file is not None:
            return None
        return tuple(layer.layer() for layer in (self.layers or SOCAL_1D))


def default_templates() -> tuple[Path, Path]:
    """``Par_file`` and ``Mesh_Par_file`` templates: ``$DARE_SPECFEM_TEMPLATES``, else shipped."""
    folder = Path(os.environ.get("DARE_SPECFEM_TEMPLATES") or Path(__file__).parent / "templates")
    return folder / "Par_file.template", folder / "Mesh_Par_file.template"


# -- inputs ------------------------------------------------------------------------------------
@dataclass
class SpecfemRun:
    """A prepared SPECFEM3D run: its folder, inputs and the mesh's estimates.

    ``mesh`` and ``resolution`` are ``None`` for a hand-made ``DATA`` folder whose mesh
    :func:`~.mesh.read_mesh_spec` cannot describe (topography, tomographic models); ``outside``
    lists the stations of its ``STATIONS`` outside the mesh (SPECFEM3D drops them too).
    """

    work_dir: Path
    nproc: int
    cmt: CMTSolution
    stations: list[StationLine]
    mesh: MeshSpec | None
    par_values: dict[str, Any]
    resolution: MeshResolution | None
    files: dict[str, Path]
    outside: list[tuple[StationLine, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    estimate: RunEstimate | None = None

    @property
    def output_dir(self) -> Path:
        """SPECFEM3D's ``OUTPUT_FILES``."""
        return self.work_dir / "OUTPUT_FILES"


def _round_down(value: float, digits: int = 2) -> float:
    exponent = math.floor(math.log10(value)) - digits + 1
    return math.floor(value / 10.0**exponent) * 10.0**exponent


def source_solution(event: Event, *, strike: float | None = None, dip: float | None = None,
                    rake: float | None = None, magnitude: float | None = None,
                    use_event_tensor: bool = True, event_name: str | None = None
                    ) -> CMTSolution:
    """The CMTSOLUTION of the event: its moment tensor, or the given double couple.

    Raises
    ------
    RAError
        No usable moment tensor and no complete double couple, or no magnitude.
    """
    from dare_cli.ra.source import tensor_from_event

    if use_event_tensor and tensor_from_event(event) is not None:
        return cmtsolution_from_event(event, event_name=event_name)
    if strike is None or dip is None or rake is None:
        raise RAError("the event has no moment tensor: give strike, dip and rake in [source]")
    origin = event.preferred_origin() or event.origins[0]
    if magnitude is None:
        preferred = event.preferred_magnitude() or (event.magnitudes[0] if event.magnitudes
                                                    else None)
        if preferred is None:
            raise RAError("the event has no magnitude: give [source] magnitude")
        magnitude = float(preferred.mag)
    return cmtsolution_from_double_couple(origin, strike, dip, rake, magnitude)


def prepare_run(
    work_dir: str | os.PathLike[str],
    *,
    cmt: CMTSolution,
    inventory: Inventory,
    config: SpecfemConfig,
    duration: float,
) -> SpecfemRun:
    """Write and check the inputs of one SPECFEM3D run for all stations of ``inventory``.

    Parameters
    ----------
    work_dir
        Folder of the run: ``DATA/`` is written there, SPECFEM3D writes ``OUTPUT_FILES/``.
    cmt
        The source.
    inventory
        The stations (every station of every network becomes a receiver).
    config
        ``[simulate.specfem]``.
    duration
        Length of the seismograms after the origin time, s (sets NSTEP unless configured).

    Returns
    -------
    SpecfemRun

    Raises
    ------
    SpecfemConfigError
        The set-up check failed (stations or source outside the mesh, DT above the stability
        limit, NPROC not the mesh split...): the message names each value to change.
    """
    work = Path(work_dir)
    par_template, mesh_template = _templates(config)
    stations = stations_from_inventory(inventory)
    if not stations:
        raise RAError("no station to simulate")
    design = size_mesh(cmt, stations, depth_km=config.depth_km, layers=config.mesh_layers(),
                       model=(read_velocity_model(config.model_file) if config.model_file
                              else None),
                       element_size_km=config.element_size_km,
                       resolve_period=config.resolve_period, margin_km=config.margin_km,
                       nproc_xi=config.nproc_xi, nproc_eta=config.nproc_eta,
                       doublings=config.doublings)
    mesh = design.mesh
    dt = config.dt or _round_down(0.9 * mesh_resolution(mesh).dt_max)
    nstep = config.nstep or math.ceil(duration / dt)
    values = _run_par_values(config, read_parfile(par_template), mesh, nstep, dt)
    review = review_simulation(mesh, values, cmt, stations, max_frequency=config.max_frequency)
    review.raise_for_errors()
    resolution = review.resolution
    if work.exists():
        shutil.rmtree(work)
    (work / "OUTPUT_FILES" / "DATABASES_MPI").mkdir(parents=True)
    files = write_specfem_inputs(work / "DATA", cmt=cmt, stations=stations,
                                 par_template=par_template.read_text(), par_values=values,
                                 mesh=mesh, mesh_par_template=mesh_template.read_text(),
                                 max_frequency=config.max_frequency)
    return SpecfemRun(work, config.nproc, cmt, list(stations), mesh, values, resolution,
                      dict(files), notes=list(design.notes), findings=list(review.findings),
                      estimate=estimate_from_par(mesh, values))


def _templates(config: SpecfemConfig) -> tuple[Path, Path]:
    """The Par_file and Mesh_Par_file templates: the configured ones, else the shipped ones."""
    par_template, mesh_template = default_templates()
    par_template = Path(config.par_template) if config.par_template else par_template
    mesh_template = Path(config.mesh_par_template) if config.mesh_par_template else mesh_template
    for path, key in ((par_template, "par_template"), (mesh_template, "mesh_par_template")):
        if not path.is_file():
            raise ConfigError(f"[simulate.specfem] {key}: no file {path}")
    return par_template, mesh_template


def _run_par_values(config: SpecfemConfig, template_values: Mapping[str, Any], mesh: MeshSpec,
                    nstep: int, dt: float) -> dict[str, Any]:
    """The Par_file values of a run (those the template has), ``[simulate.specfem] par`` last."""
    values: dict[str, Any] = {
        "NPROC": config.nproc, "NSTEP": nstep, "DT": dt,
        "UTM_PROJECTION_ZONE": mesh.utm_zone, "SUPPRESS_UTM_PROJECTION": False,
        "MODEL": "default",
        # flat layers, no topography: with these on, xgenerate_databases reads its compiled-in
        # topography file DATA/meshfem3D_files/interface4.dat, which is some other interface
        # (or missing) unless the mesh has exactly 4 layers
        "APPROXIMATE_OCEAN_LOAD": False, "TOPOGRAPHY": False,
        "SAVE_SEISMOGRAMS_DISPLACEMENT": True, "SAVE_SEISMOGRAMS_VELOCITY": False,
        "SAVE_SEISMOGRAMS_ACCELERATION": False, "SAVE_SEISMOGRAMS_PRESSURE": False,
        "USE_BINARY_FOR_SEISMOGRAMS": False, "SU_FORMAT": False, "ASDF_FORMAT": False,
        "NTSTEP_BETWEEN_OUTPUT_SEISMOS": nstep,
        "LOCAL_PATH": "./OUTPUT_FILES/DATABASES_MPI",
    }
    values = {k: v for k, v in values.items() if k in template_values}
    values.update(config.par)
    return values


def parfile_nproc(par: Mapping[str, str], source: str | os.PathLike[str]) -> int:
    """The MPI ranks a ``Par_file`` asks for (``par`` as :func:`~.parfile.read_parfile` reads it).

    Raises
    ------
    ConfigError
        No ``NPROC``, or not an integer (the message names ``source``).
    """
    try:
        return int(fortran_value(par["NPROC"]))
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{os.fspath(source)}: no integer NPROC") from None


def prepare_data_dir(work_dir: str | os.PathLike[str], data_dir: str | os.PathLike[str],
                     config: SpecfemConfig) -> SpecfemRun:
    """Copy and check a hand-made SPECFEM3D ``DATA`` folder for a run in ``work_dir``.

    The folder is used as it is: its ``Par_file`` (NPROC, NSTEP, DT...), ``CMTSOLUTION``,
    ``STATIONS`` and the internal mesher's ``meshfem3D_files/``. When the mesh is one
    :func:`~.mesh.read_mesh_spec` describes (flat layers), the set-up is checked as for
    dare's own meshes (NPROC and the split, NEX rules, DT against the stability limit, the
    source inside the mesh, ``max_frequency`` if configured); stations outside the mesh are
    listed in ``outside`` (SPECFEM3D drops them into ``STATIONS_FILTERED``), not an error,
    unless none is inside.

    Raises
    ------
    ConfigError
        A missing folder or file, a force source, or a failed check (the message says which).
    """
    data = Path(data_dir)
    if not data.is_dir():
        raise ConfigError(f"[simulate.specfem] data_dir: no folder {data}")
    for name in ("Par_file", "CMTSOLUTION", "STATIONS", "meshfem3D_files/Mesh_Par_file"):
        if not (data / name).is_file():
            raise ConfigError(f"[simulate.specfem] data_dir: no {name} in {data} (dare runs "
                              "SPECFEM3D's internal mesher, with a CMTSOLUTION source)")
    par = read_parfile(data / "Par_file")
    if fortran_value(par.get("USE_FORCE_POINT_SOURCE", ".false.")) is True:
        raise ConfigError(f"{data / 'Par_file'}: USE_FORCE_POINT_SOURCE = .true.: dare runs "
                          "CMTSOLUTION sources only")
    nproc = parfile_nproc(par, data / "Par_file")
    cmts = read_cmtsolutions(data / "CMTSOLUTION")
    stations = read_stations(data / "STATIONS")
    if not stations:
        raise ConfigError(f"{data / 'STATIONS'}: no station")
    notes: list[str] = []
    mesh: MeshSpec | None
    resolution: MeshResolution | None = None
    findings: list[Finding] = []
    estimate: RunEstimate | None = None
    outside: list[tuple[StationLine, str]] = []
    try:
        mesh = read_mesh_spec(data / "meshfem3D_files" / "Mesh_Par_file")
    except SpecfemFileError as error:
        mesh = None
        notes.append(f"mesh not checked before the run: {error}")
    if mesh is not None:
        z_flag = fortran_value(par.get("USE_SOURCES_RECEIVERS_Z", ".false.")) is True
        inside, outside = stations_in_mesh(mesh, stations, sources_receivers_z=z_flag)
        if not inside:
            raise ConfigError(f"{data / 'STATIONS'}: no station inside the mesh (e.g. "
                              f"{outside[0][0].network}.{outside[0][0].station}: "
                              f"{outside[0][1]})")
        review = review_simulation(mesh, par, cmts, inside, max_frequency=config.max_frequency)
        review.raise_for_errors()
        resolution, findings = review.resolution, list(review.findings)
        estimate = estimate_from_par(mesh, par)
    work = Path(work_dir)
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(data, work / "DATA", symlinks=False)
    local_path = str(fortran_value(par.get("LOCAL_PATH", "./OUTPUT_FILES/DATABASES_MPI")))
    (work / "OUTPUT_FILES").mkdir(parents=True, exist_ok=True)
    target = (work / local_path).resolve()
    if not target.is_relative_to(work.resolve()):
        raise ConfigError(f"{data / 'Par_file'}: LOCAL_PATH {local_path!r} leaves the run's "
                          "folder; give a relative path such as ./OUTPUT_FILES/DATABASES_MPI")
    target.mkdir(parents=True, exist_ok=True)
    files = {path.name: path for path in sorted((work / "DATA").rglob("*")) if path.is_file()}
    return SpecfemRun(work, nproc, cmts[0], stations, mesh, dict(par), resolution, files,
                      outside, notes, findings, estimate)


# -- commands ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpecfemStep:
    """One program of the run: its name, command line and log file (in OUTPUT_FILES)."""

    name: str
    argv: tuple[str, ...]
    log_file: str


def launch_argv(launcher: str, nproc: int, program: str, args: Sequence[str] = ()) -> list[str]:
    """``mpirun -np N [args] program`` (``srun -n N``); ``launcher`` a name or a path."""
    if os.sep not in launcher:
        _choice("launcher", launcher, LAUNCHERS)
    flag = "-n" if Path(launcher).name == "srun" else "-np"
    return [launcher, flag, str(nproc), *args, program]


def specfem_steps(bin_dir: str | os.PathLike[str], nproc: int, *, launcher: str = "mpirun",
                  launcher_args: Sequence[str] = ()) -> list[SpecfemStep]:
    """The three programs of a run, as launched on ``nproc`` ranks."""
    return [SpecfemStep(name, tuple(launch_argv(launcher, nproc,
                                                os.fspath(Path(bin_dir) / name),
                                                launcher_args)), log)
            for name, log in STEPS]


def _tail(lines: Sequence[str], output_dir: Path, log_file: str) -> list[str]:
    """Last lines of a program's output, its SPECFEM log and error messages."""
    tail = [line for line in lines if line.strip()][-TAIL_LINES:]
    log = output_dir / log_file
    if log_file and log.is_file():
        logged = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        tail += [f"[{log_file}] {line}" for line in logged[-TAIL_LINES:]]
    for message in sorted(output_dir.glob("error_message*.txt")):
        text = [line for line in message.read_text(errors="replace").splitlines()
                if line.strip()]
        tail += [f"[{message.name}] {line}" for line in text[-TAIL_LINES:]]
    return tail


class _LogFollower:
    """Read new complete lines of a growing file (SPECFEM's output_*.txt)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def lines(self, final: bool = False) -> list[str]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        parts = data.split(b"\n")
        self.partial = b"" if final else parts.pop()
        return [p.decode(errors="replace").rstrip("\r") for p in parts if p or final]


def check_completed(output_dir: Path) -> None:
    """Raise :class:`SpecfemRunError` unless SPECFEM3D's solver says the run ended normally.

    SPECFEM3D's programs can stop on a fatal error with exit status 0 (without an MPI launcher,
    or when one rank calls ``exit_MPI``): the solver's log must end its time loop with "End of
    the simulation", and no ``error_message*.txt`` may exist.
    """
    errors = sorted(output_dir.glob("error_message*.txt"))
    log = output_dir / "output_solver.txt"
    text = log.read_text(errors="replace") if log.is_file() else ""
    if errors or "End of the simulation" not in text:
        reason = (f"wrote {errors[0].name}" if errors else
                  "did not end normally (no 'End of the simulation' in output_solver.txt)")
        raise SpecfemRunError("xspecfem3D", reason, _tail([], output_dir, "output_solver.txt"))


# -- local backend -----------------------------------------------------------------------------
class LocalBackend:
    """Run the programs on this machine with the local MPI launcher.

    Parameters
    ----------
    bin_dir
        Folder of SPECFEM3D's programs.
    launcher, launcher_args
        ``mpirun``/``mpiexec``/``srun`` or a launcher's path, and extra arguments. A name is
        resolved to the launcher of the MPI implementation the programs are built with
        (:func:`~.launcher.resolve_launcher`), so that MPICH's ``mpiexec`` from a Python
        environment does not start an Open MPI build.
    env
        Environment of the programs (default: this process's; as root with Open MPI, plus
        Open MPI's permission to run as root).
    poll
        Seconds between looks at SPECFEM's log files.
    """

    name = "local"

    def __init__(self, bin_dir: str | os.PathLike[str], *, launcher: str = "mpirun",
                 launcher_args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 poll: float = 0.2) -> None:
        self.bin_dir = Path(bin_dir)
        self.launcher = launcher
        self.launcher_args = tuple(launcher_args)
        self._env = dict(env) if env is not None else None
        self.poll = poll

    @functools.cached_property
    def resolved(self) -> Launcher:
        """The launcher found for the programs (see :func:`~.launcher.resolve_launcher`)."""
        path = self._env.get("PATH") if self._env else None
        return resolve_launcher(self.launcher, [self.bin_dir / name for name, _ in STEPS],
                                search_path=path)

    @property
    def env(self) -> dict[str, str] | None:
        """The programs' environment."""
        return launch_environment(self.resolved, self._env)

    def steps(self, nproc: int) -> list[SpecfemStep]:
        """The commands this backend runs."""
        return specfem_steps(self.bin_dir, nproc, launcher=self.resolved.path,
                             launcher_args=launch_arguments(self.resolved, nproc,
                                                            self.launcher_args))

    def check(self) -> None:
        """Fail early when a program or the launcher is missing."""
        for name, _ in STEPS:
            program = self.bin_dir / name
            if not (program.is_file() and os.access(program, os.X_OK)):
                raise ConfigError(f"[simulate.specfem] bin_dir: no executable {program} "
                                  "(build SPECFEM3D, or give --specfem-bin DIR)")
        launcher = self.resolved.path
        if not (os.path.isfile(launcher) and os.access(launcher, os.X_OK)):
            raise ConfigError(f"[simulate.specfem] launcher {self.launcher!r} is not on PATH"
                              if os.sep not in self.launcher else
                              f"[simulate.specfem] launcher: no executable {launcher}")

    def run(self, work_dir: Path, nproc: int, log: Log = _quiet) -> None:
        """Run the three programs in ``work_dir``; raise :class:`SpecfemRunError` on failure."""
        self.check()
        log(f"MPI launcher: {self.resolved.path} ({self.resolved.flavour or 'unknown MPI'})")
        for step in self.steps(nproc):
            self._run_step(step, Path(work_dir), log)
        check_completed(Path(work_dir) / "OUTPUT_FILES")

    def _run_step(self, step: SpecfemStep, work_dir: Path, log: Log) -> None:
        output_dir = work_dir / "OUTPUT_FILES"
        follower = _LogFollower(output_dir / step.log_file)
        log(f"$ {shlex.join(step.argv)}")
        seen: deque[str] = deque(maxlen=TAIL_LINES)
        process = subprocess.Popen(step.argv, cwd=work_dir, env=self.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        assert process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        pending = b""
        try:
            open_ = True
            while open_:
                for _ in selector.select(timeout=self.poll):
                    chunk = os.read(process.stdout.fileno(), 65536)
                    if not chunk:
                        open_ = False
                        break
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for raw in complete:
                        line = raw.decode(errors="replace").rstrip("\r")
                        seen.append(line)
                        log(f"{step.name}: {line}")
                for line in follower.lines():
                    log(f"{step.name}: {line}")
            status = process.wait()
        except BaseException:
            _stop(process)
            raise
        finally:
            selector.close()
            process.stdout.close()
        if pending:
            seen.append(pending.decode(errors="replace"))
            log(f"{step.name}: {seen[-1]}")
        for line in follower.lines(final=True):
            log(f"{step.name}: {line}")
        if status != 0:
            raise SpecfemRunError(step.name, f"failed with exit status {status} "
                                             f"({shlex.join(step.argv)})",
                                  _tail(list(seen), output_dir, step.log_file))


def _stop(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop a program and its MPI ranks (its process group): SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# -- docker backend ----------------------------------------------------------------------------
def default_compose_file() -> Path:
    """``containers/specfem/docker-compose.yml`` as installed with dare."""
    from dare_cli.images import containers_dir

    return containers_dir() / "specfem" / "docker-compose.yml"


def compose_environment(config: SpecfemConfig, nproc: int | None = None) -> dict[str, str]:
    """The compose file's variables for ``config`` (image, resources, MPI slots).

    ``nproc``: the run's MPI ranks when they are not ``config``'s (a ``data_dir`` run takes
    NPROC from its Par_file); the slots per worker spread them over the workers.
    """
    ranks = config.nproc if nproc is None else nproc
    slots = config.slots_per_worker or max(1, math.ceil(ranks / max(config.workers, 1)))
    env = {"SPECFEM_IMAGE": config.image, "SPECFEM_SLOTS_PER_WORKER": str(slots)}
    for key, value in (("SPECFEM_CPUS", config.cpus), ("SPECFEM_MEMORY", config.memory),
                       ("SPECFEM_SHM", config.shm_size)):
        if value is not None:
            env[key] = str(value)
    return env


def compose_cli() -> list[str]:
    """``docker compose`` (the v2 plugin) if it answers, else ``docker-compose``."""
    if shutil.which("docker"):
        done = subprocess.run(["docker", "compose", "version"], capture_output=True,
                              check=False)
        if done.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise ConfigError("the docker backend needs Docker Compose ('docker compose' or "
                      "'docker-compose') on PATH")


def compose_argv(cli: Sequence[str], compose_file: str | os.PathLike[str], project: str,
                 action: str, *, workers: int = 0) -> list[str]:
    """Command line of ``up`` (detached, no build, ``--scale worker=N``) or ``down``.

    ``down`` removes the project's containers, network and volume (``--volumes``).
    """
    base = [*cli, "-f", os.fspath(compose_file), "-p", project]
    if action == "up":
        return [*base, "up", "--detach", "--no-build", "--scale", f"worker={workers}"]
    if action == "down":
        return [*base, "down", "--volumes", "--remove-orphans", "--timeout", "10"]
    raise ValueError(f"compose action must be 'up' or 'down', not {action!r}")


@contextlib.contextmanager
def cluster(cli: Sequence[str], compose_file: str | os.PathLike[str], project: str, *,
            workers: int, env: Mapping[str, str], log: Log = _quiet) -> Iterator[None]:
    """Bring the compose cluster up; bring it down on leaving, whatever happened.

    ``down`` also runs when ``up`` itself failed half-way (some containers may have started),
    on any exception and on Ctrl-C (``KeyboardInterrupt``).
    """
    full_env = {**os.environ, **env}

    def compose(action: str) -> subprocess.CompletedProcess[str]:
        argv = compose_argv(cli, compose_file, project, action, workers=workers)
        log(f"$ {shlex.join(argv)}")
        return subprocess.run(argv, env=full_env, capture_output=True, text=True, check=False)

    try:
        done = compose("up")
        if done.returncode != 0:
            raise SpecfemRunError("cluster", f"'compose up' failed (exit {done.returncode})",
                                  (done.stdout + done.stderr).splitlines()[-TAIL_LINES:])
        yield
    finally:
        down = compose("down")
        if down.returncode != 0:
            log(f"compose down failed (exit {down.returncode}): "
                f"{(down.stdout + down.stderr).strip()}")


def inputs_archive(work_dir: str | os.PathLike[str], *, uid: int = 1000, gid: int = 1000
                   ) -> bytes:
    """A tar of ``DATA/`` and ``OUTPUT_FILES/`` (empty but for DATABASES_MPI/) of a run.

    Entries belong to ``uid:gid`` (the image's ``specfem`` user) so that the programs in the
    containers can write next to them.
    """
    work = Path(work_dir)
    buffer = io.BytesIO()

    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid, info.gid, info.uname, info.gname = uid, gid, "specfem", "specfem"
        return info

    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(work / "DATA", arcname="DATA", filter=owned)
        for folder in ("OUTPUT_FILES", "OUTPUT_FILES/DATABASES_MPI"):
            info = owned(tarfile.TarInfo(folder))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            archive.addfile(info)
    return buffer.getvalue()


def extract_outputs(chunks: Iterator[bytes] | bytes, destination: str | os.PathLike[str]
                    ) -> list[Path]:
    """Unpack the tar stream of ``get_archive`` (of OUTPUT_FILES) into ``destination``.

    The archive's top folder (``OUTPUT_FILES``) is dropped; only regular files under it are
    written (no links, no absolute or parent paths). Returns the files written.
    """
    data = chunks if isinstance(chunks, bytes) else b"".join(chunks)
    target = Path(destination)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for member in archive.getmembers():
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 2 or ".." in parts or parts[0] == "/":
                continue
            path = target.joinpath(*parts[1:])
            path.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            path.write_bytes(source.read())
            written.append(path)
    return written


class DockerBackend:
    """Run the programs on the docker-compose MPI cluster of ``containers/specfem/``.

    Parameters
    ----------
    config
        ``[simulate.specfem]`` (image, compose file, workers, resources).
    client
        A ``docker.DockerClient``; default ``docker.from_env()``.
    """

    name = "docker"

    def __init__(self, config: SpecfemConfig, client: Any = None) -> None:
        self.config = config
        self._client = client
        self.compose_file = Path(config.compose_file or default_compose_file())
        self.project = config.project or f"dare-specfem-{uuid.uuid4().hex[:8]}"

    @property
    def client(self) -> Any:
        """The docker SDK client (``pip install 'dare[specfem]'``)."""
        if self._client is None:
            try:
                import docker
            except ImportError as error:
                raise ConfigError("the docker backend needs the docker SDK: pip install "
                                  "'dare[specfem]'") from error
            try:
                self._client = docker.from_env()
            except docker.errors.DockerException as error:
                raise SpecfemRunError("cluster", f"cannot reach the Docker engine: {error}"
                                      ) from error
        return self._client

    def hostfile_argv(self, nproc: int | None = None) -> list[str]:
        """Command writing the MPI hostfile of the workers for ``nproc`` ranks (in the head)."""
        slots = compose_environment(self.config, nproc)["SPECFEM_SLOTS_PER_WORKER"]
        return ["specfem-hostfile", "--expect", str(self.config.workers), "--slots", slots,
                f"{IMAGE_WORK_DIR}/hostfile"]

    def steps(self, nproc: int) -> list[SpecfemStep]:
        """The commands run in the head container (each wrapped by ``specfem-step``)."""
        steps = []
        for step in specfem_steps(IMAGE_BIN_DIR, nproc, launcher="mpirun",
                                  launcher_args=("--hostfile", f"{IMAGE_WORK_DIR}/hostfile")):
            argv = ("specfem-step", f"OUTPUT_FILES/{step.log_file}", "--", *step.argv)
            steps.append(SpecfemStep(step.name, argv, step.log_file))
        return steps

    def ensure_image(self, log: Log = _quiet) -> None:
        """Reuse the image, or build it (if ``build``) with ``build_args``.

        The build (:func:`dare_cli.images.build`) sends a context assembled for the image
        (its folder, dare, SPECFEM3D's source archive when there is one), leaves no container
        behind, and a failure names the step with the last lines of its output.
        """
        import docker

        from dare_cli.images import ImageBuildError, build

        try:
            self.client.images.get(self.config.image)
            log(f"image {self.config.image}: present")
            return
        except docker.errors.ImageNotFound:
            if not self.config.build:
                raise ConfigError(f"[simulate.specfem] image {self.config.image!r} is missing "
                                  "and build = false") from None
        try:
            build(self.client, "specfem", tag=self.config.image,
                  build_args=self.config.build_args, log=lambda line: log(f"build: {line}"))
        except ImageBuildError as error:
            where = f" at {error.step}" if error.step else ""
            raise SpecfemRunError("image build", f"of {self.config.image} failed{where}: "
                                  f"{error.reason}", error.tail) from None

    def head(self) -> Any:
        """The head container of the running cluster."""
        found = self.client.containers.list(filters={"label": [
            f"com.docker.compose.project={self.project}", "com.docker.compose.service=head"]})
        if not found:
            raise SpecfemRunError("cluster", f"no head container in project {self.project}")
        return found[0]

    def exec(self, container: Any, argv: Sequence[str], name: str, log: Log
             ) -> tuple[int, list[str]]:
        """Run a command in a container, streaming its output to ``log``; its exit status."""
        api = self.client.api
        exec_id = api.exec_create(container.id, list(argv), workdir=IMAGE_WORK_DIR)["Id"]
        log(f"$ {shlex.join(argv)}")
        seen: deque[str] = deque(maxlen=TAIL_LINES)
        pending = b""
        for chunk in api.exec_start(exec_id, stream=True):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                line = raw.decode(errors="replace").rstrip("\r")
                seen.append(line)
                log(f"{name}: {line}")
        if pending:
            seen.append(pending.decode(errors="replace"))
        return int(api.exec_inspect(exec_id)["ExitCode"]), list(seen)

    def run(self, work_dir: Path, nproc: int, log: Log = _quiet) -> None:
        """Build/reuse the image, run the cluster, the programs, copy OUTPUT_FILES back."""
        work = Path(work_dir)
        if not self.compose_file.is_file():
            raise ConfigError(f"[simulate.specfem] compose_file: no file {self.compose_file}")
        cli = compose_cli()
        self.ensure_image(log)
        with cluster(cli, self.compose_file, self.project, workers=self.config.workers,
                     env=compose_environment(self.config, nproc), log=log):
            head = self.head()
            head.put_archive(IMAGE_WORK_DIR, inputs_archive(work))
            status, lines = self.exec(head, self.hostfile_argv(nproc), "hostfile", log)
            if status != 0:
                raise SpecfemRunError("cluster", f"workers not reachable (exit {status})",
                                      lines)
            failure: SpecfemRunError | None = None
            for step in self.steps(nproc):
                status, lines = self.exec(head, step.argv, step.name, log)
                if status != 0:
                    failure = SpecfemRunError(step.name, f"failed with exit status {status}",
                                              lines)
                    break
            stream, _ = head.get_archive(f"{IMAGE_WORK_DIR}/OUTPUT_FILES")
            kept = [p for p in extract_outputs(stream, work / "OUTPUT_FILES")
                    if "DATABASES_MPI" not in p.parts or self.config.keep_databases]
            log(f"copied {len(kept)} files of OUTPUT_FILES back")
            if failure is not None:
                failure.tail += _tail([], work / "OUTPUT_FILES", "")[-TAIL_LINES:]
                raise failure


# -- outputs -----------------------------------------------------------------------------------
def collect_seismograms(
    output_dir: str | os.PathLike[str],
    origin_time: UTCDateTime,
    station_ids: Sequence[str],
    *,
    processing: Sequence[str] = (),
) -> tuple[dict[str, Stream], list[str]]:
    """Displacement seismograms of a run, grouped per station.

    Parameters
    ----------
    output_dir
        SPECFEM3D's ``OUTPUT_FILES``.
    origin_time
        The event's origin time (SPECFEM's time 0).
    station_ids
        ``NET.STA`` of the stations simulated.
    processing
        Notes added to each trace's ``stats.processing``.

    Returns
    -------
    dict, list
        ``{"NET.STA": Stream}`` (displacement in m, SPECFEM's channel codes, starting at the
        origin time plus SPECFEM's first time) and the stations without seismograms.
    """
    stream = read_seismograms(output_dir, origin_time, pattern="*.semd")
    grouped: dict[str, Stream] = {}
    for trace in stream:
        trace.stats.processing = [*trace.stats.get("processing", []), *processing]
        grouped.setdefault(f"{trace.stats.network}.{trace.stats.station}",
                           Stream()).append(trace)
    wanted = set(station_ids)
    missing = sorted(wanted - set(grouped))
    return {k: v for k, v in sorted(grouped.items()) if k in wanted}, missing


def provenance(run: SpecfemRun, backend: str) -> list[str]:
    """``stats.processing`` notes of a run's seismograms."""
    version = f"dare {__version__}"
    notes = [f"{version}: SPECFEM3D Cartesian synthetics ({backend} backend, NPROC "
             f"{run.nproc}), displacement in m"]
    mesh = run.mesh
    timing = f"DT {run.par_values.get('DT')} s, NSTEP {run.par_values.get('NSTEP')}"
    if mesh is None:
        return [*notes, f"{version}: hand-made DATA folder, mesh not described; {timing}"]
    resolved = (f"; shortest period resolved {run.resolution.min_period:.3g} s"
                if run.resolution is not None else "")
    return [*notes,
            f"{version}: mesh NEX {mesh.nex_xi}x{mesh.nex_eta}, depth {mesh.depth_km:g} km, "
            f"{len(mesh.layers)} layers, UTM zone {mesh.utm_zone}; {timing}{resolved}"]
