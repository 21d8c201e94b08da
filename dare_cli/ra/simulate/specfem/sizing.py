"""Meshes sized for a band: element sizes from the period to resolve and the slowest velocity.

SPECFEM3D resolves a period ``T`` in an element of longest edge ``L`` and slowest velocity
``v_min`` (S, or P in a fluid) when ``L / (NGLL - 1) / v_min * 5 <= T`` (5 GLL points per
minimum wavelength, ``check_mesh_resolution.f90``; see :mod:`.resolution`), i.e. when
``L <= T * v_min * (NGLL - 1) / 5`` = ``0.8 * T * v_min`` for NGLL = 5. :func:`size_mesh`
makes every layer's elements that small:

* vertically, each layer gets ``ceil(thickness / (0.8 T v_min))`` elements (at least the
  configured count, for layers given with one);
* horizontally, the surface element size is the smallest ``0.8 T v_min / f`` over the layers,
  ``f`` the factor by which the mesh doublings coarsen the layer (2 per doubling above it, and
  2 in a doubling's own two element layers, where the coarse elements sit);
* :func:`~.mesh.mesh_around` then rounds NEX up to SPECFEM's divisibility rules for the NPROC
  split (smaller elements still), and :func:`~.resolution.mesh_resolution` confirms the result
  (the surface size shrinks and the mesh is rebuilt in the rare case it does not).

Without a period, elements are ``element_size_km`` wide at the surface and layers from a model
file get elements no taller than that.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dare_cli.ra.simulate.specfem.errors import SpecfemConfigError, SpecfemFileError
from dare_cli.ra.simulate.specfem.mesh import MeshLayer, MeshSpec, mesh_around
from dare_cli.ra.simulate.specfem.resolution import (
    NGLL,
    POINTS_PER_WAVELENGTH,
    MeshResolution,
    mesh_resolution,
)
from dare_cli.ra.simulate.specfem.velocity_model import VelocityModel, read_velocity_model

if TYPE_CHECKING:
    from dare_cli.ra.simulate.specfem.cmtsolution import CMTSolution
    from dare_cli.ra.simulate.specfem.stations import StationLine

__all__ = [
    "DEFAULT_ELEMENT_SIZE_KM",
    "MeshDesign",
    "check_mesh_settings",
    "element_size_for_period",
    "mesh_fingerprint",
    "size_mesh",
]

#: Surface element size without ``resolve_period`` or ``element_size_km``, km.
DEFAULT_ELEMENT_SIZE_KM = 2.0


def element_size_for_period(period: float, velocity: float, *,
                            points_per_wavelength: float = POINTS_PER_WAVELENGTH,
                            ngll: int = NGLL) -> float:
    """Largest element edge (m) that resolves ``period`` where the slowest speed is ``velocity``.

    Parameters
    ----------
    period
        Shortest period to resolve, s.
    velocity
        Slowest wave speed in the element (S, or P in a fluid), m/s.
    points_per_wavelength, ngll
        SPECFEM's rule: 5 GLL points per minimum wavelength, 5 GLL points per edge.

    Returns
    -------
    float
        ``period * velocity * (ngll - 1) / points_per_wavelength``, m.
    """
    if not (period > 0 and velocity > 0):
        raise ValueError(f"period and velocity must be > 0, got {period}, {velocity}")
    return period * velocity * (ngll - 1) / points_per_wavelength


def check_mesh_settings(*, layers_given: bool, model_file: str | None,
                        element_size_km: float | None, resolve_period: float | None,
                        max_frequency: float | None) -> VelocityModel | None:
    """Check the mesh settings of ``[simulate.specfem]`` together; read the model file.

    Parameters
    ----------
    layers_given
        Whether ``layers`` was set.
    model_file
        ``model_file`` (a path), or None.
    element_size_km, resolve_period, max_frequency
        The settings (None: not set).

    Returns
    -------
    VelocityModel or None
        The model of ``model_file``.

    Raises
    ------
    SpecfemConfigError
        Conflicting settings (``layers`` and ``model_file``; ``element_size_km`` and
        ``resolve_period``; a ``max_frequency`` above ``1 / resolve_period``), a value that is
        not > 0, or a model file that cannot be read (the message names its line).
    """
    problems = []
    if layers_given and model_file is not None:
        problems.append("layers and model_file both give the velocity model: use one of them")
    if element_size_km is not None and resolve_period is not None:
        problems.append(f"element_size_km = {element_size_km:g} and resolve_period = "
                        f"{resolve_period:g} both set the element size: give one of them "
                        "(resolve_period sizes the elements for that period)")
    if resolve_period is not None and not (math.isfinite(resolve_period)
                                           and resolve_period > 0):
        problems.append(f"resolve_period must be > 0 s, not {resolve_period}")
    elif (resolve_period is not None and max_frequency is not None
          and max_frequency * resolve_period > 1 + 1e-9):
        problems.append(f"max_frequency = {max_frequency:g} Hz asks for periods down to "
                        f"{1 / max_frequency:.3g} s but resolve_period = {resolve_period:g} s "
                        "sizes the mesh for longer ones: lower max_frequency to "
                        f"{1 / resolve_period:.3g} Hz, shorten resolve_period, or drop one")
    if max_frequency is not None and not (math.isfinite(max_frequency) and max_frequency > 0):
        problems.append(f"max_frequency must be > 0 Hz, not {max_frequency}")
    if problems:
        raise SpecfemConfigError("; ".join(problems))
    if model_file is None:
        return None
    try:
        return read_velocity_model(model_file)
    except SpecfemFileError as error:
        raise SpecfemConfigError(f"model_file {error}") from None


def mesh_fingerprint(values: Mapping[str, Any], *, default_layers: Any) -> dict[str, Any]:
    """``[simulate.specfem]`` settings as the simulate stage fingerprints them.

    Unset mesh settings become what they stand for (``element_size_km``: 2 km unless
    ``resolve_period`` is set; ``layers``: ``default_layers`` unless ``model_file`` is set),
    and ``resolve_period``/``model_file`` are left out when unset, so a configuration written
    before these settings existed keeps its fingerprint. A model file counts by the SHA-256
    of its content (an edited file makes the synthetics stale, a moved one does not).

    Parameters
    ----------
    values
        The settings (``dataclasses.asdict`` of the configuration).
    default_layers
        What ``layers`` stands for when unset.

    Returns
    -------
    dict
    """
    out = dict(values)
    if out.get("element_size_km") is None and out.get("resolve_period") is None:
        out["element_size_km"] = DEFAULT_ELEMENT_SIZE_KM
    if out.get("layers") is None and out.get("model_file") is None:
        out["layers"] = default_layers
    for key in ("resolve_period", "model_file"):
        if out.get(key) is None:
            out.pop(key, None)
    if out.get("model_file") is not None:
        try:
            digest = hashlib.sha256(Path(out["model_file"]).read_bytes()).hexdigest()
        except OSError:
            digest = None
        out["model_file"] = {"sha256": digest}
    return out


@dataclass(frozen=True)
class MeshDesign:
    """A mesh sized by :func:`size_mesh`, with its estimates and how it was sized.

    Attributes
    ----------
    mesh
        The mesh.
    resolution
        Its stability and resolution estimates (no time step).
    element_size_km
        The surface element size asked of :func:`~.mesh.mesh_around`, km (NEX rounding makes
        the elements somewhat smaller).
    resolve_period
        The period it was sized for, s (None: sized by ``element_size_km``).
    notes
        How it was sized, in words (for logs and the report).
    """

    mesh: MeshSpec
    resolution: MeshResolution
    element_size_km: float
    resolve_period: float | None
    notes: tuple[str, ...] = ()


def _coarsening(mesh_layers: Sequence[MeshLayer], doublings: Sequence[int]) -> list[int]:
    """Per layer, the largest horizontal coarsening factor of its elements by the doublings."""
    factors = []
    k = 0
    for layer in mesh_layers:
        worst = 1
        for _ in range(layer.elements):
            k += 1
            factor = 2 ** sum(1 for d in doublings if k <= d - 2)
            if any(k in (d - 1, d) for d in doublings):
                factor *= 2
            worst = max(worst, factor)
        factors.append(worst)
    return factors


def _layer_velocities(layers: Sequence[MeshLayer]) -> list[float]:
    return [layer.material.min_velocity for layer in layers]


def size_mesh(
    cmt: CMTSolution | Sequence[CMTSolution],
    stations: Sequence[StationLine],
    *,
    depth_km: float,
    layers: Sequence[MeshLayer] | None = None,
    model: VelocityModel | None = None,
    element_size_km: float | None = None,
    resolve_period: float | None = None,
    margin_km: float = 20.0,
    nproc_xi: int = 1,
    nproc_eta: int = 1,
    doublings: Sequence[int] = (),
    points_per_wavelength: float = POINTS_PER_WAVELENGTH,
    ngll: int = NGLL,
    ellipsoid: str = "WGS84",
) -> MeshDesign:
    """A mesh around the source and stations, sized by an element size or a period to resolve.

    Parameters
    ----------
    cmt, stations
        Source(s) and stations (see :func:`~.mesh.mesh_around`).
    depth_km
        Depth of the mesh bottom, km.
    layers
        Flat layers (bottom up) with their element counts; with ``resolve_period`` the counts
        are raised where the layer's elements would be too tall.
    model
        A 1D model (instead of ``layers``): element counts follow from the element size.
    element_size_km
        Surface element size, km (default :data:`DEFAULT_ELEMENT_SIZE_KM`); not with
        ``resolve_period``.
    resolve_period
        Shortest period (s) the mesh must resolve: the element sizes follow (module notes).
    margin_km, nproc_xi, nproc_eta, doublings, ellipsoid
        As for :func:`~.mesh.mesh_around`.
    points_per_wavelength, ngll
        The resolution rule (SPECFEM's: 5 and 5).

    Returns
    -------
    MeshDesign

    Raises
    ------
    SpecfemConfigError
        Both or neither of ``layers`` and ``model``; both ``element_size_km`` and
        ``resolve_period``; a period or size that is not > 0.
    """
    _check_sizing(layers, model, element_size_km, resolve_period)
    if resolve_period is None:
        size_km = element_size_km or DEFAULT_ELEMENT_SIZE_KM
        if model is not None:
            mesh_layers = model.mesh_layers(depth_km, size_km * 1000.0)
        else:
            assert layers is not None
            mesh_layers = tuple(layers)
        notes = [f"surface elements of at most {size_km:g} km"]
    else:
        mesh_layers, size_km, note = _layers_for_period(
            layers, model, depth_km, resolve_period, doublings, points_per_wavelength, ngll)
        notes = [note]
    for _ in range(8):
        mesh = mesh_around(cmt, stations, layers=mesh_layers, depth_km=depth_km,
                           element_size_km=size_km, margin_km=margin_km, nproc_xi=nproc_xi,
                           nproc_eta=nproc_eta, doublings=doublings, ellipsoid=ellipsoid)
        resolution = mesh_resolution(mesh, points_per_wavelength=points_per_wavelength,
                                     ngll=ngll, ellipsoid=ellipsoid)
        if resolve_period is None or resolution.min_period <= resolve_period * (1 + 1e-9):
            break
        # NEX rounding or the doubling bricks left a layer too coarse: shrink and retry
        size_km *= 0.97 * resolve_period / resolution.min_period
    else:  # pragma: no cover - the sizes above resolve the period by construction
        raise SpecfemConfigError(f"could not size a mesh resolving {resolve_period} s")
    notes.append(f"NEX {mesh.nex_xi} x {mesh.nex_eta}, {mesh.nz} element layers, resolves "
                 f"periods >= {resolution.min_period:.3g} s")
    return MeshDesign(mesh=mesh, resolution=resolution, element_size_km=size_km,
                      resolve_period=resolve_period, notes=tuple(notes))


def _check_sizing(layers: Sequence[MeshLayer] | None, model: VelocityModel | None,
                  element_size_km: float | None, resolve_period: float | None) -> None:
    """One of ``layers`` and ``model``; at most one of a size and a period, each > 0."""
    if (layers is None) == (model is None):
        raise SpecfemConfigError("give the mesh's layers or a velocity model (one of them)")
    if element_size_km is not None and resolve_period is not None:
        raise SpecfemConfigError(
            f"element_size_km = {element_size_km:g} and resolve_period = {resolve_period:g} "
            "both set the element size: give one of them")
    if resolve_period is not None and not (math.isfinite(resolve_period) and resolve_period > 0):
        raise SpecfemConfigError(f"resolve_period must be > 0 s, not {resolve_period}")
    if element_size_km is not None and not (math.isfinite(element_size_km)
                                            and element_size_km > 0):
        raise SpecfemConfigError(f"element_size_km must be > 0, not {element_size_km}")


def _layers_for_period(layers: Sequence[MeshLayer] | None, model: VelocityModel | None,
                       depth_km: float, resolve_period: float, doublings: Sequence[int],
                       points_per_wavelength: float, ngll: int
                       ) -> tuple[tuple[MeshLayer, ...], float, str]:
    """Layers whose elements resolve ``resolve_period``, the surface element size (km), a note.

    Each layer's element height follows from its slowest speed; the surface element size is
    the smallest the layers need, given the coarsening of the doublings below them.
    """
    if model is not None:
        kept = model.within(depth_km)
        heights = [element_size_for_period(
            resolve_period, layer.vs if layer.vs > 0 else layer.vp,
            points_per_wavelength=points_per_wavelength, ngll=ngll) for layer in kept]
        mesh_layers = model.mesh_layers(depth_km, heights)
    else:
        assert layers is not None
        mesh_layers = _taller_layers(tuple(layers), depth_km, resolve_period,
                                     points_per_wavelength, ngll)
    factors = _coarsening(mesh_layers, doublings)
    sizes = [element_size_for_period(resolve_period, v,
                                     points_per_wavelength=points_per_wavelength,
                                     ngll=ngll) / f
             for v, f in zip(_layer_velocities(mesh_layers), factors, strict=True)]
    slowest = min(_layer_velocities(mesh_layers))
    note = (f"sized to resolve {resolve_period:g} s: elements <= "
            f"{element_size_for_period(resolve_period, slowest):.0f} m where the "
            f"slowest speed is {slowest:g} m/s ({points_per_wavelength:g} GLL points "
            f"per wavelength, NGLL {ngll})")
    return mesh_layers, min(sizes) / 1000.0, note


def _taller_layers(layers: tuple[MeshLayer, ...], depth_km: float, period: float,
                   points_per_wavelength: float, ngll: int) -> tuple[MeshLayer, ...]:
    """``layers`` with element counts raised so that no element is too tall for ``period``."""
    out = []
    bottom = -abs(depth_km) * 1000.0
    for i, layer in enumerate(layers):
        base = bottom if i == 0 else layers[i - 1].top
        height = element_size_for_period(period, layer.material.min_velocity,
                                         points_per_wavelength=points_per_wavelength,
                                         ngll=ngll)
        needed = max(1, math.ceil((layer.top - base) / height - 1e-9))
        out.append(replace(layer, elements=max(layer.elements, needed)))
    return tuple(out)
