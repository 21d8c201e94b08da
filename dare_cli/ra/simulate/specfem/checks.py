"""Checks of a SPECFEM3D set-up before it runs (:func:`check_simulation`).

Sources and stations inside the mesh (in the mesh's UTM rectangle, as SPECFEM locates them),
NPROC and the mesh split, SPECFEM's divisibility rules for NEX, and the time step and resolution
estimates of :mod:`.resolution`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dare_cli.ra.simulate.specfem.errors import SpecfemConfigError
from dare_cli.ra.simulate.specfem.mesh import MeshSpec, mesh_utm_box, nex_multiple
from dare_cli.ra.simulate.specfem.parfile import format_fortran, fortran_value
from dare_cli.ra.simulate.specfem.resolution import (
    COURANT_SUGGESTED,
    POINTS_PER_WAVELENGTH,
    MeshResolution,
    mesh_resolution,
)
from dare_cli.ra.simulate.specfem.utm import utm_from_geographic

if TYPE_CHECKING:
    from dare_cli.ra.simulate.specfem.cmtsolution import CMTSolution
    from dare_cli.ra.simulate.specfem.stations import StationLine

__all__ = [
    "COURANT_UNSTABLE",
    "EDGE_ELEMENTS",
    "Finding",
    "SetupReview",
    "check_simulation",
    "review_simulation",
    "stations_in_mesh",
]


def _nex_problems(mesh: MeshSpec) -> list[str]:
    """SPECFEM's rules for NEX and NPROC (meshfem3D.F90), with the fix."""
    problems = []
    per_proc_step = nex_multiple(1, len(mesh.doublings))
    for axis, nex, nproc in (("XI", mesh.nex_xi, mesh.nproc_xi),
                             ("ETA", mesh.nex_eta, mesh.nproc_eta)):
        step = nex_multiple(nproc, len(mesh.doublings))
        if nex % step == 0:
            continue
        suggestion = step * math.ceil(nex / step)
        if mesh.regular:
            rule = f"a multiple of NPROC_{axis} = {nproc}"
        else:
            rule = (f"a multiple of {step} (NPROC_{axis} = {nproc} times {per_proc_step}: "
                    f"with {len(mesh.doublings)} doubling(s) SPECFEM needs NEX_{axis}/NPROC_"
                    f"{axis} to be a multiple of 8 and of 2*2**NDOUBLINGS)")
        problems.append(f"NEX_{axis} = {nex} must be {rule}: use NEX_{axis} = {suggestion} "
                        f"or change NPROC_{axis}")
    return problems


def _par_get(par: Mapping[str, Any], key: str, kind: type, default: Any = None) -> Any:
    if key not in par:
        if default is not None:
            return default
        raise SpecfemConfigError(f"the Par_file has no {key}")
    value = par[key]
    if isinstance(value, str):
        value = fortran_value(value)
    if kind is bool:
        ok = isinstance(value, bool | np.bool_)
    elif kind is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    else:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok:
        raise SpecfemConfigError(f"Par_file {key} = {par[key]!r} is not a {kind.__name__}")
    return kind(value)


def _positions(mesh: MeshSpec, longitude: Sequence[float], latitude: Sequence[float],
               ellipsoid: str) -> tuple[np.ndarray, np.ndarray]:
    lon = np.asarray(longitude, dtype=float)
    lat = np.asarray(latitude, dtype=float)
    if mesh.suppress_utm_projection:
        return lon, lat
    assert mesh.utm_zone is not None
    x, y = utm_from_geographic(lon, lat, mesh.utm_zone, ellipsoid=ellipsoid)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def _outside(box: tuple[float, float, float, float], x: float, y: float) -> str:
    x0, x1, y0, y1 = box
    parts = []
    if x < x0:
        parts.append(f"{x0 - x:.0f} m west")
    if x > x1:
        parts.append(f"{x - x1:.0f} m east")
    if y < y0:
        parts.append(f"{y0 - y:.0f} m south")
    if y > y1:
        parts.append(f"{y - y1:.0f} m north")
    return " and ".join(parts)


def stations_in_mesh(mesh: MeshSpec, stations: Sequence[StationLine], *,
                     sources_receivers_z: bool = False, ellipsoid: str = "WGS84"
                     ) -> tuple[list[StationLine], list[tuple[StationLine, str]]]:
    """Split stations into those inside the mesh and those outside (with the reason).

    Horizontally a station is inside if its UTM (or Cartesian) position lies in the mesh's
    rectangle (:func:`mesh_utm_box`), which is how SPECFEM3D filters its ``STATIONS``; its
    burial must lie between the surface and the bottom (with ``USE_SOURCES_RECEIVERS_Z`` the
    burial column is the height z, m).

    Parameters
    ----------
    mesh
        The mesh.
    stations
        ``STATIONS`` lines (degrees, or metres for a mesh with ``suppress_utm_projection``).
    sources_receivers_z
        The Par_file's ``USE_SOURCES_RECEIVERS_Z``.
    ellipsoid
        For the UTM projection.

    Returns
    -------
    inside : list of StationLine
    outside : list of (StationLine, str)
        Each with where it is, e.g. ``"384 m north"``.
    """
    box = mesh_utm_box(mesh, ellipsoid=ellipsoid)
    if not stations:
        return [], []
    x, y = _positions(mesh, [s.longitude for s in stations], [s.latitude for s in stations],
                      ellipsoid)
    inside, outside = [], []
    thickness = mesh.surface - mesh.bottom
    for station, xs, ys in zip(stations, x, y, strict=True):
        reason = _outside(box, float(xs), float(ys))
        if sources_receivers_z:
            if not mesh.bottom <= station.burial <= mesh.surface:
                reason = reason or (f"z = {station.burial:g} m is outside "
                                    f"{mesh.bottom:g}..{mesh.surface:g} m")
        elif not 0.0 <= station.burial < thickness:
            reason = reason or (f"burial {station.burial:g} m is outside 0..{thickness:g} m")
        if reason:
            outside.append((station, reason))
        else:
            inside.append(station)
    return inside, outside


#: Courant number above which SPECFEM3D's mesher says a run "should be unstable"
#: (``max_CFL_stability_limit`` of ``check_mesh_quality.f90``): an error; between
#: :data:`~.resolution.COURANT_SUGGESTED` and this, a warning.
COURANT_UNSTABLE = 0.55
#: Stations or sources closer than this many surface elements to a side of the mesh get a
#: warning: the absorbing (Stacey) boundaries reflect part of the waves that reach them.
EDGE_ELEMENTS = 2

#: Levels of a finding, from the least severe.
LEVELS = ("ok", "warning", "error")


@dataclass(frozen=True)
class Finding:
    """One check of a set-up and its outcome.

    Attributes
    ----------
    check
        What was checked: ``nproc``, ``nex``, ``utm``, ``nstep``, ``stability``,
        ``resolution``, ``source``, ``stations``.
    level
        ``"ok"``, ``"warning"`` (the run may go on) or ``"error"`` (it must not).
    message
        What was found and, for a warning or an error, what to change.
    """

    check: str
    level: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """``{"check", "level", "message"}`` (for report.json)."""
        return {"check": self.check, "level": self.level, "message": self.message}


@dataclass(frozen=True)
class SetupReview:
    """Every finding of :func:`review_simulation` and the mesh's estimates."""

    resolution: MeshResolution
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> list[Finding]:
        """The findings that stop the run."""
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings to report that do not stop the run."""
        return [f for f in self.findings if f.level == "warning"]

    def raise_for_errors(self) -> None:
        """Raise :class:`~.errors.SpecfemConfigError` listing every error, if there is one."""
        if self.errors:
            raise SpecfemConfigError("SPECFEM3D set-up check failed:\n  - "
                                     + "\n  - ".join(f.message for f in self.errors))


def review_simulation(
    mesh: MeshSpec,
    par: Mapping[str, Any],
    cmt: CMTSolution | Sequence[CMTSolution],
    stations: Sequence[StationLine],
    *,
    max_frequency: float | None = None,
    courant_max: float = COURANT_SUGGESTED,
    courant_unstable: float = COURANT_UNSTABLE,
    points_per_wavelength: float = POINTS_PER_WAVELENGTH,
    ellipsoid: str = "WGS84",
) -> SetupReview:
    """Check a SPECFEM3D set-up before running it: every finding, as ok, warning or error.

    The checks of :func:`check_simulation`, with their levels:

    * ``nproc``, ``nex``, ``utm``, ``nstep``: an error when wrong;
    * ``stability``: the Courant number of DT (SPECFEM's definition, see
      :func:`~.resolution.mesh_resolution`): ok up to ``courant_max`` (0.5, SPECFEM's
      suggested), a warning up to ``courant_unstable`` (0.55, where SPECFEM's mesher says
      the run "should be unstable"), an error above;
    * ``resolution``: an error if ``max_frequency`` is given and not resolved, else ok (the
      message says the shortest period resolved);
    * ``source``, ``stations``: an error for one outside the mesh, a warning for one closer
      than :data:`EDGE_ELEMENTS` surface elements to a side (absorbing boundaries reflect a
      little).

    Parameters
    ----------
    mesh, par, cmt, stations, max_frequency, courant_max, points_per_wavelength, ellipsoid
        As for :func:`check_simulation`.
    courant_unstable
        Courant number above which DT is an error.

    Returns
    -------
    SetupReview

    Raises
    ------
    SpecfemConfigError
        A Par_file value the checks need is missing or of the wrong kind.
    """
    nproc = _par_get(par, "NPROC", int)
    nstep = _par_get(par, "NSTEP", int)
    dt = _par_get(par, "DT", float)
    zone = _par_get(par, "UTM_PROJECTION_ZONE", int)
    suppress = _par_get(par, "SUPPRESS_UTM_PROJECTION", bool)
    z_mode = _par_get(par, "USE_SOURCES_RECEIVERS_Z", bool, default=False)
    findings = _split_findings(mesh, nproc, zone, suppress)
    if nstep <= 0:
        findings.append(Finding("nstep", "error", f"NSTEP = {nstep}: it must be > 0"))
    resolution = mesh_resolution(mesh, dt if dt > 0 else None, courant_max=courant_max,
                                 points_per_wavelength=points_per_wavelength,
                                 ellipsoid=ellipsoid)
    findings.append(_stability_finding(dt, nstep, resolution, courant_max, courant_unstable))
    findings.append(_resolution_finding(resolution, max_frequency, points_per_wavelength))
    box = resolution.box
    edge = EDGE_ELEMENTS * max((box[1] - box[0]) / mesh.nex_xi, (box[3] - box[2]) / mesh.nex_eta)
    sources = [cmt] if not isinstance(cmt, Sequence) else list(cmt)
    findings += _source_findings(mesh, sources, box, edge, z_mode, ellipsoid)
    findings += _station_findings(mesh, stations, box, edge, z_mode, ellipsoid)
    return SetupReview(resolution, tuple(findings))


def _split_findings(mesh: MeshSpec, nproc: int, zone: int, suppress: bool) -> list[Finding]:
    """``nproc``, ``nex`` and ``utm``: the Par_file agrees with the mesh and its split."""
    findings: list[Finding] = []
    if nproc != mesh.nproc:
        findings.append(Finding(
            "nproc", "error", f"Par_file NPROC = {nproc} but the mesh is split into NPROC_XI x "
                              f"NPROC_ETA = {mesh.nproc_xi} x {mesh.nproc_eta} = {mesh.nproc} "
                              f"slices: set NPROC = {mesh.nproc}"))
    else:
        findings.append(Finding("nproc", "ok", f"NPROC = {nproc} = NPROC_XI x NPROC_ETA = "
                                               f"{mesh.nproc_xi} x {mesh.nproc_eta}"))
    nex = _nex_problems(mesh)
    findings += [Finding("nex", "error", problem) for problem in nex]
    if not nex:
        findings.append(Finding(
            "nex", "ok", f"NEX_XI = {mesh.nex_xi}, NEX_ETA = {mesh.nex_eta} follow SPECFEM's "
                         f"rules for this split and {len(mesh.doublings)} doubling(s)"))
    if suppress != mesh.suppress_utm_projection:
        findings.append(Finding(
            "utm", "error", f"Par_file SUPPRESS_UTM_PROJECTION = {format_fortran(suppress)} but "
                            f"the Mesh_Par_file has "
                            f"{format_fortran(mesh.suppress_utm_projection)}: make them equal"))
    elif not suppress and zone != mesh.utm_zone:
        findings.append(Finding(
            "utm", "error", f"Par_file UTM_PROJECTION_ZONE = {zone} but the Mesh_Par_file has "
                            f"{mesh.utm_zone}: make them equal"))
    return findings


def _stability_finding(dt: float, nstep: int, resolution: MeshResolution, courant_max: float,
                       courant_unstable: float) -> Finding:
    """``stability``: the Courant number of DT against SPECFEM's suggested and unstable ones."""
    if not dt > 0:
        return Finding("stability", "error", f"DT = {dt!r}: it must be > 0")
    worst = resolution.stability_layer
    courant = resolution.courant
    assert courant is not None
    duration = nstep * dt
    advice = (f"set DT <= {resolution.dt_max:.4g} s (and NSTEP >= "
              f"{math.ceil(duration / resolution.dt_max)} to keep the {duration:g} s "
              "record) or use larger elements there")
    if courant > courant_unstable:
        return Finding(
            "stability", "error",
            f"DT = {dt:g} s is above the stability limit {resolution.dt_max:.4g} s "
            f"(Courant number {courant:.3f} > {courant_max:g} for vp {worst.vp:g} m/s in "
            f"{worst.describe()}, elements of {worst.edge_min:.0f} m, GLL spacing "
            f"{resolution.gll_fraction * worst.edge_min:.1f} m): {advice}")
    if courant > courant_max * (1 + 1e-9):
        return Finding(
            "stability", "warning",
            f"DT = {dt:g} s gives a Courant number of {courant:.3f}, above SPECFEM's "
            f"suggested {courant_max:g} (time step {resolution.dt_max:.4g} s) though below "
            f"the {courant_unstable:g} its mesher calls unstable, for vp {worst.vp:g} m/s "
            f"in {worst.describe()}: {advice}")
    return Finding("stability", "ok",
                   f"DT = {dt:g} s: Courant number {courant:.3f} <= {courant_max:g} (SPECFEM's "
                   f"suggested time step {resolution.dt_max:.4g} s)")


def _resolution_finding(resolution: MeshResolution, max_frequency: float | None,
                        points_per_wavelength: float) -> Finding:
    """``resolution``: the mesh resolves ``max_frequency`` (when given)."""
    if max_frequency is not None and not max_frequency > 0:
        return Finding("resolution", "error",
                       f"max_frequency = {max_frequency!r} Hz: it must be > 0")
    if max_frequency is not None and max_frequency > resolution.max_frequency:
        worst = resolution.resolution_layer
        return Finding(
            "resolution", "error",
            f"the mesh resolves periods down to {resolution.min_period:.3g} s "
            f"({resolution.max_frequency:.3g} Hz), not max_frequency = {max_frequency:g} "
            f"Hz: in {worst.describe()} (v_min {worst.min_velocity:g} m/s) elements of up "
            f"to {worst.edge_max:.0f} m give {points_per_wavelength:g} GLL points per "
            f"wavelength only down to {worst.min_period:.3g} s; make its elements <= "
            f"{worst.edge_max / (worst.min_period * max_frequency):.0f} m (more NEX_XI/"
            f"NEX_ETA, more elements in the layer or fewer doublings above it) or lower "
            f"max_frequency to {resolution.max_frequency:.3g} Hz")
    return Finding("resolution", "ok",
                   f"the mesh resolves periods >= {resolution.min_period:.3g} s "
                   f"({resolution.max_frequency:.3g} Hz; {points_per_wavelength:g}"
                   f" GLL points per wavelength)")


def _source_findings(mesh: MeshSpec, sources: Sequence[CMTSolution],
                     box: tuple[float, float, float, float], edge: float, z_mode: bool,
                     ellipsoid: str) -> list[Finding]:
    """``source``: each source inside the mesh (an error) and away from its sides (a warning)."""
    findings: list[Finding] = []
    thickness = mesh.surface - mesh.bottom
    if sources:
        xs, ys = _positions(mesh, [s.longorUTM for s in sources], [s.latorUTM for s in sources],
                            ellipsoid)
        for number, (source, x, y) in enumerate(zip(sources, xs, ys, strict=True), start=1):
            where = _outside(box, float(x), float(y))
            name = f"source {number} ({source.event_name})"
            if where:
                findings.append(Finding(
                    "source", "error",
                    f"{name} is outside the mesh, {where} of its UTM rectangle x "
                    f"{box[0]:.0f}..{box[1]:.0f} m, y {box[2]:.0f}..{box[3]:.0f} m: enlarge "
                    "the mesh"))
            elif _edge_distance(box, float(x), float(y)) < edge:
                findings.append(Finding(
                    "source", "warning",
                    f"{name} is {_edge_distance(box, float(x), float(y)):.0f} m from a side of "
                    f"the mesh, closer than {EDGE_ELEMENTS} surface elements ({edge:.0f} m): "
                    "the absorbing boundary's reflections may reach the stations; enlarge the "
                    "mesh (margin_km)"))
            if z_mode:
                if not mesh.bottom <= source.depth <= mesh.surface:
                    findings.append(Finding(
                        "source", "error",
                        f"{name} z = {source.depth:g} m (USE_SOURCES_RECEIVERS_Z) is outside "
                        f"the mesh {mesh.bottom:g}..{mesh.surface:g} m"))
            elif not 0.0 <= source.depth * 1000.0 < thickness:
                findings.append(Finding(
                    "source", "error",
                    f"{name} depth {source.depth:g} km is outside the mesh (0.."
                    f"{thickness / 1e3:g} km below the surface): deepen the mesh "
                    "(DEPTH_BLOCK_KM)"))
    if not findings:
        findings.append(Finding("source", "ok", f"{len(sources)} source(s) inside the mesh"))
    return findings


def _station_findings(mesh: MeshSpec, stations: Sequence[StationLine],
                      box: tuple[float, float, float, float], edge: float, z_mode: bool,
                      ellipsoid: str) -> list[Finding]:
    """``stations``: every station inside the mesh (an error) and away from its sides."""
    findings: list[Finding] = []
    inside, outside = stations_in_mesh(mesh, stations, sources_receivers_z=z_mode,
                                       ellipsoid=ellipsoid)
    if outside:
        listed = ", ".join(f"{s.network}.{s.station} ({reason})" for s, reason in outside)
        findings.append(Finding(
            "stations", "error",
            f"{len(outside)} station(s) outside the mesh (UTM rectangle x "
            f"{box[0]:.0f}..{box[1]:.0f} m, y {box[2]:.0f}..{box[3]:.0f} m): "
            f"{listed}: enlarge the mesh or leave them out"))
    if inside:
        x, y = _positions(mesh, [s.longitude for s in inside], [s.latitude for s in inside],
                          ellipsoid)
        near = [(s, _edge_distance(box, float(xs), float(ys)))
                for s, xs, ys in zip(inside, x, y, strict=True)]
        near = [(s, d) for s, d in near if d < edge]
        if near:
            listed = ", ".join(f"{s.network}.{s.station} ({d:.0f} m)" for s, d in near)
            findings.append(Finding(
                "stations", "warning",
                f"{len(near)} station(s) closer than {EDGE_ELEMENTS} surface elements "
                f"({edge:.0f} m) to a side of the mesh, where the absorbing boundary "
                f"reflects a little: {listed}; enlarge the mesh (margin_km)"))
    if not outside:
        findings.append(Finding("stations", "ok", f"{len(inside)} station(s) inside the mesh"))
    return findings


def _edge_distance(box: tuple[float, float, float, float], x: float, y: float) -> float:
    """Distance (m) of a point inside ``box`` to its nearest side."""
    return min(x - box[0], box[1] - x, y - box[2], box[3] - y)


def check_simulation(
    mesh: MeshSpec,
    par: Mapping[str, Any],
    cmt: CMTSolution | Sequence[CMTSolution],
    stations: Sequence[StationLine],
    *,
    max_frequency: float | None = None,
    courant_max: float = COURANT_SUGGESTED,
    points_per_wavelength: float = POINTS_PER_WAVELENGTH,
    ellipsoid: str = "WGS84",
) -> MeshResolution:
    """Check a SPECFEM3D set-up before running it; return the mesh's estimates.

    Checks, each failure naming the value and what to change (all failures are reported
    together; :func:`review_simulation` gives the warnings too):

    * the Par_file's ``NPROC`` equals ``NPROC_XI * NPROC_ETA``, and NEX_XI/NEX_ETA follow
      SPECFEM's divisibility rules (a multiple of NPROC per direction; with doublings,
      ``NEX/NPROC`` a multiple of 8 and of ``2 * 2**NDOUBLINGS``);
    * the Par_file's ``UTM_PROJECTION_ZONE`` and ``SUPPRESS_UTM_PROJECTION`` match the mesh's;
    * ``NSTEP > 0`` and ``0 < DT``, with a Courant number at most :data:`COURANT_UNSTABLE`
      (DT above SPECFEM's suggested time step for the model's fastest P velocity and the
      element sizes, see :func:`mesh_resolution`, is a warning up to there);
    * the mesh resolves ``max_frequency`` (if given) with ``points_per_wavelength`` GLL points
      per minimum (S) wavelength;
    * every source and station is inside the mesh (:func:`stations_in_mesh`).

    Parameters
    ----------
    mesh
        The internal mesher's mesh.
    par
        Par_file values: text (as from :func:`read_parfile`) or Python values; uses NPROC,
        NSTEP, DT, UTM_PROJECTION_ZONE, SUPPRESS_UTM_PROJECTION and USE_SOURCES_RECEIVERS_Z
        (default false).
    cmt
        The source(s).
    stations
        The stations.
    max_frequency
        Highest frequency (Hz) the synthetics must resolve (optional).
    courant_max, points_per_wavelength
        See :func:`mesh_resolution`.
    ellipsoid
        For UTM projections.

    Returns
    -------
    MeshResolution
        The estimates, with the Courant number of DT.

    Raises
    ------
    SpecfemConfigError
        One or more checks failed.
    """
    review = review_simulation(mesh, par, cmt, stations, max_frequency=max_frequency,
                               courant_max=courant_max,
                               points_per_wavelength=points_per_wavelength, ellipsoid=ellipsoid)
    review.raise_for_errors()
    return review.resolution
