"""SPECFEM3D Cartesian's parameter files and checks of a simulation set-up.

``Par_file`` and the internal mesher's ``Mesh_Par_file``
    Lines ``KEY = value`` (an inline ``# comment`` may follow the value) between comment lines;
    the ``Mesh_Par_file`` also holds two tables (materials, regions) after ``NMATERIALS`` and
    ``NREGIONS``. :func:`read_parfile` reads the values as text; :func:`render_parfile` fills a
    template (e.g. the ``Par_file`` shipped with the SPECFEM3D version that will run) keeping
    every comment and the layout; :func:`fortran_value` and :func:`format_fortran` convert
    between Fortran literals (``.true.``, ``840``, ``0.05d0``) and Python values.

The internal mesher (``xmeshfem3D``)
    :class:`MeshSpec` describes a layered box: its horizontal extent (longitude/latitude, which
    SPECFEM projects to UTM, or UTM/Cartesian metres with ``SUPPRESS_UTM_PROJECTION``), its
    depth, the number of spectral elements ``NEX_XI`` x ``NEX_ETA`` at the surface, the split
    over ``NPROC_XI`` x ``NPROC_ETA`` processes, the mesh doublings, and flat layers of one
    material each. :func:`render_mesh_parfile` and :func:`render_interfaces` write it,
    :func:`read_mesh_spec` reads it back, :func:`mesh_around` sizes one around a source and its
    stations.

Checks (:func:`check_simulation`)
    Sources and stations inside the mesh (in the mesh's UTM rectangle, as SPECFEM locates them),
    NPROC and the mesh split, SPECFEM's divisibility rules for NEX, and the time step and
    resolution estimates of SPECFEM3D itself (``src/shared/check_mesh_resolution.f90``, printed
    by ``xgenerate_databases`` and ``xspecfem3D`` as "Maximum suggested time step" and "Minimum
    period resolved"), computed here from the mesh description before anything runs:

    * stability: ``DT <= C * d_min / v_max`` in every element, with ``C`` =
      :data:`COURANT_SUGGESTED` = 0.5 (SPECFEM's ``COURANT_SUGGESTED``; the mesher warns that a
      Courant number above 0.55 "should be unstable"), ``v_max`` the element's P velocity and
      ``d_min`` its smallest distance between neighbouring Gauss-Lobatto-Legendre (GLL) points,
      estimated as :func:`gll_spacing_fraction` (0.172673 for NGLL = 5) times the element's
      shortest edge;
    * resolution: the shortest period resolved is ``(L_max / (NGLL - 1)) / v_min * 5`` over all
      elements (:data:`POINTS_PER_WAVELENGTH` = 5 GLL points per minimum wavelength, the rule of
      thumb of Komatitsch et al. 2005 quoted there), ``L_max`` the element's longest edge and
      ``v_min`` its S velocity (P velocity in fluids).

    Element sizes follow the mesher's geometry: the UTM rectangle split into ``NEX_XI`` x
    ``NEX_ETA`` columns at the surface, each layer split evenly in depth, and each doubling at
    element layer ``d`` a two-layer "superbrick" (layers ``d - 1`` and ``d``) below which the
    horizontal size doubles. On SPECFEM's socal1D example this reproduces SPECFEM's printed
    suggested time step (0.022864 s here, 0.022857 s by SPECFEM) and minimum period (2.5926 s).

UTM
    SPECFEM3D projects longitude/latitude with the WGS84 ellipsoid (checked against the UTM
    coordinates SPECFEM prints: to 1 mm), zone ``UTM_PROJECTION_ZONE`` (negative for the
    southern hemisphere); :func:`utm_from_geographic` does the same with pyproj.
"""

from __future__ import annotations

import difflib
import functools
import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.polynomial import legendre
from pyproj import CRS, Transformer

from dare_cli.ra.errors import ConfigError, RAError

if TYPE_CHECKING:
    from dare_cli.ra.simulate.specfem.cmtsolution import CMTSolution
    from dare_cli.ra.simulate.specfem.stations import StationLine

__all__ = [
    "COURANT_SUGGESTED",
    "NGLL",
    "POINTS_PER_WAVELENGTH",
    "LayerResolution",
    "Material",
    "MeshLayer",
    "MeshResolution",
    "MeshSpec",
    "SpecfemConfigError",
    "SpecfemFileError",
    "check_simulation",
    "format_fortran",
    "fortran_value",
    "geographic_from_utm",
    "gll_spacing_fraction",
    "mesh_around",
    "mesh_resolution",
    "mesh_utm_box",
    "parse_parfile",
    "read_mesh_spec",
    "read_parfile",
    "render_interfaces",
    "render_mesh_parfile",
    "render_parfile",
    "stations_in_mesh",
    "utm_from_geographic",
    "utm_zone_of",
]

#: SPECFEM3D's Courant number for its suggested time step (check_mesh_resolution.f90).
COURANT_SUGGESTED = 0.5
#: GLL points per minimum wavelength for the shortest period resolved (same routine).
POINTS_PER_WAVELENGTH = 5.0
#: GLL points per element edge of SPECFEM3D's default build (``NGLLX = NGLLY = NGLLZ = 5``).
NGLL = 5


class SpecfemFileError(RAError, ValueError):
    """A SPECFEM3D file is malformed; the message names the file (and the line).

    Parameters
    ----------
    path
        The file (or a description of the text, e.g. ``"Par_file template"``).
    reason
        What is wrong.
    line
        Line number (1-based), if the problem is on one line.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, line: int | None = None
                 ) -> None:
        where = f"{os.fspath(path)}, line {line}" if line is not None else os.fspath(path)
        super().__init__(f"{where}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason
        self.line = line

    def __reduce__(self) -> tuple[Any, ...]:
        return (SpecfemFileError, (self.path, self.reason, self.line))


class SpecfemConfigError(ConfigError, ValueError):
    """A SPECFEM3D set-up is wrong: the message says which value and what to change."""


# --- Fortran literals and KEY = value files ---

_INT = re.compile(r"[+-]?\d+")
_REAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?")
_ENTRY = re.compile(r"^(?P<head>[ \t]*(?P<key>[A-Za-z_]\w*)[ \t]*=[ \t]*)"
                    r"(?P<value>[^#]*?)(?P<tail>[ \t]*(?:#.*)?)$")


def fortran_value(text: str) -> bool | int | float | str:
    """Python value of a Fortran literal of a parameter file.

    Parameters
    ----------
    text
        ``.true.``/``.false.`` (any case), an integer, a real (``0.012``, ``60.d0``,
        ``1.d23``, ``1e-3``) or anything else (returned stripped, as text).

    Returns
    -------
    bool, int, float or str
    """
    t = text.strip()
    low = t.lower()
    if low in (".true.", ".false."):
        return low == ".true."
    if _INT.fullmatch(t):
        return int(t)
    if _REAL.fullmatch(t):
        return float(t.replace("d", "e").replace("D", "e"))
    return t


def format_fortran(value: Any) -> str:
    """Fortran literal of a Python value, as SPECFEM's parameter readers expect it.

    Booleans become ``.true.``/``.false.``, integers stay integers, reals become
    double-precision literals (``0.05`` -> ``0.05d0``, ``1e-05`` -> ``1.0d-5``; the shortest
    text that reads back as the same double), paths and text are written as they are.

    Parameters
    ----------
    value
        bool, integer, real, str or path.

    Returns
    -------
    str
    """
    if isinstance(value, bool | np.bool_):
        return ".true." if value else ".false."
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"cannot write the non-finite number {x!r} to a parameter file")
        text = repr(x)
        if "e" in text:
            mantissa, exponent = text.split("e")
            if "." not in mantissa:
                mantissa += ".0"
            return f"{mantissa}d{int(exponent)}"
        return text + "d0"
    if isinstance(value, str | os.PathLike):
        text = os.fspath(value)
        if "\n" in text or "\r" in text or "#" in text:
            raise ValueError(f"a parameter value cannot contain a line break or '#': {text!r}")
        return text
    raise TypeError(f"cannot write a {type(value).__name__} to a parameter file: {value!r}")


def _entries(lines: Sequence[str], source: str) -> dict[str, tuple[int, re.Match[str]]]:
    """``KEY = value`` lines of a parameter file: key -> (line index, match)."""
    found: dict[str, tuple[int, re.Match[str]]] = {}
    for index, raw in enumerate(lines):
        line = raw.rstrip("\r\n")
        if line.lstrip().startswith("#"):
            continue
        match = _ENTRY.match(line)
        if match is None:
            continue
        key = match["key"]
        if key in found:
            raise SpecfemFileError(source, f"{key} is set twice (also on line "
                                           f"{found[key][0] + 1})", index + 1)
        found[key] = (index, match)
    return found


def parse_parfile(text: str, *, source: str = "Par_file") -> dict[str, str]:
    """Values of a SPECFEM parameter file's text (see :func:`read_parfile`).

    Parameters
    ----------
    text
        Content of a ``Par_file`` or ``Mesh_Par_file``.
    source
        Name of the text for error messages.

    Returns
    -------
    dict of str to str
        ``KEY`` -> value text (stripped, without the inline comment), in file order.
    """
    return {key: match["value"].strip()
            for key, (_, match) in _entries(text.splitlines(), source).items()}


def read_parfile(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read SPECFEM's ``KEY = value`` parameter file (``Par_file``, ``Mesh_Par_file``).

    Comment lines (``#`` first) and lines without ``=`` (the material and region tables of a
    ``Mesh_Par_file``) are skipped; an inline ``# comment`` after a value is dropped.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    dict of str to str
        ``KEY`` -> value as written (convert with :func:`fortran_value`).

    Raises
    ------
    SpecfemFileError
        A key is set twice (the message names both lines).
    """
    return parse_parfile(Path(path).read_text(), source=os.fspath(path))


def _nearest(key: str, known: Sequence[str]) -> str:
    lower = {k.lower(): k for k in known}
    if key.lower() in lower:
        return f"; did you mean {lower[key.lower()]}?"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    return f"; did you mean {close[0]}?" if close else ""


def _render_value(key: str, value: Any, old: str, source: str) -> str | None:
    """New value text for ``key``, or None to keep the template's text (same value)."""
    current = fortran_value(old)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        text = format_fortran(value)
        return None if text == old.strip() else text
    if isinstance(value, bool | np.bool_):
        if not isinstance(current, bool):
            raise SpecfemConfigError(f"{key} is not a logical in {source} (its value there is "
                                     f"{old.strip()!r}), got {value!r}")
        return None if current == bool(value) else format_fortran(bool(value))
    if isinstance(value, numbers.Real):
        if isinstance(current, bool):
            raise SpecfemConfigError(f"{key} is a logical in {source} ({old.strip()}): give "
                                     f"True or False, not {value!r}")
        if isinstance(current, int) and not isinstance(value, numbers.Integral):
            if not float(value).is_integer():
                raise SpecfemConfigError(f"{key} takes an integer (its value in {source} is "
                                         f"{old.strip()}), got {value!r}")
            value = int(float(value))
        if isinstance(current, int | float) and current == value:
            return None
        try:
            return format_fortran(value)
        except ValueError as exc:
            raise SpecfemConfigError(f"{key}: {exc}") from None
    raise SpecfemConfigError(f"{key}: cannot write a {type(value).__name__} ({value!r}) to "
                             f"a parameter file")


def render_parfile(template: str, values: Mapping[str, Any], *, source: str = "template"
                   ) -> str:
    """Fill a SPECFEM parameter file template with new values.

    Only the values of the given keys change; every comment line, inline comment, blank line,
    table row and the alignment stay as they are. A value equal to the template's (e.g.
    ``33.79`` for ``33.790d0``) keeps the template's text.

    Parameters
    ----------
    template
        Text of a ``Par_file`` or ``Mesh_Par_file``.
    values
        ``KEY`` -> value: bool (``.true.``/``.false.``), int, float (written as a Fortran
        double, e.g. ``0.05d0``; an integral float is accepted for an integer key), str or path
        (written as given). Every key must exist in the template.
    source
        Name of the template for error messages.

    Returns
    -------
    str
        The filled file.

    Raises
    ------
    SpecfemConfigError
        An unknown key (the message names the nearest known key) or a value of the wrong kind
        (a number for a logical, a fraction for an integer).
    """
    lines = template.splitlines(keepends=True)
    entries = _entries(lines, source)
    unknown = [key for key in values if key not in entries]
    if unknown:
        hints = "; ".join(f"{key}{_nearest(key, list(entries))}" for key in unknown)
        raise SpecfemConfigError(f"unknown key(s) for {source}: {hints}")
    for key, value in values.items():
        index, match = entries[key]
        text = _render_value(key, value, match["value"], source)
        if text is None:
            continue
        tail = match["tail"]
        if tail.startswith("#"):
            tail = " " + tail
        ending = lines[index][len(lines[index].rstrip("\r\n")):]
        lines[index] = f"{match['head']}{text}{tail}{ending}"
    return "".join(lines)


# --- UTM as SPECFEM3D does it ---

@functools.lru_cache(maxsize=32)
def _transformer(zone: int, ellipsoid: str) -> Transformer:
    if not (isinstance(zone, int) and 1 <= abs(zone) <= 60):
        raise ValueError(f"UTM zone must be 1..60 (negative: southern hemisphere), got {zone!r}")
    south = " +south" if zone < 0 else ""
    utm = CRS.from_proj4(f"+proj=utm +zone={abs(zone)}{south} +ellps={ellipsoid} +units=m "
                         "+no_defs")
    geographic = CRS.from_proj4(f"+proj=longlat +ellps={ellipsoid} +no_defs")
    return Transformer.from_crs(geographic, utm, always_xy=True)


def utm_from_geographic(longitude: Any, latitude: Any, zone: int, *,
                        ellipsoid: str = "WGS84") -> tuple[Any, Any]:
    """UTM easting and northing, as SPECFEM3D computes them for ``UTM_PROJECTION_ZONE``.

    Parameters
    ----------
    longitude, latitude
        Degrees (scalars or arrays).
    zone
        UTM zone 1..60, negative for the southern hemisphere (SPECFEM's convention; the
        northing then has the false northing of 10,000 km).
    ellipsoid
        PROJ ellipsoid name; SPECFEM3D uses WGS84 (older examples, e.g. socal1D's
        ``example_utm``, were made with Clarke 1866: ``"clrk66"``).

    Returns
    -------
    tuple
        Easting ``x`` and northing ``y`` in m.
    """
    return _transformer(zone, ellipsoid).transform(longitude, latitude)


def geographic_from_utm(x: Any, y: Any, zone: int, *, ellipsoid: str = "WGS84"
                        ) -> tuple[Any, Any]:
    """Longitude and latitude (degrees) of UTM coordinates (see :func:`utm_from_geographic`)."""
    return _transformer(zone, ellipsoid).transform(x, y, direction="INVERSE")


def utm_zone_of(longitude: float, latitude: float) -> int:
    """UTM zone of a point in SPECFEM's convention (negative south of the equator).

    Parameters
    ----------
    longitude, latitude
        Degrees.

    Returns
    -------
    int
        ``floor((longitude + 180) / 6) + 1`` (1..60), negated for ``latitude < 0``.
    """
    lon = (float(longitude) + 180.0) % 360.0 - 180.0
    zone = min(math.floor((lon + 180.0) / 6.0) + 1, 60)
    return -zone if latitude < 0 else zone


# --- the internal mesher's model ---

@dataclass(frozen=True)
class Material:
    """A material of the internal mesher (a row of the ``Mesh_Par_file``'s material table).

    Attributes
    ----------
    rho
        Density, kg/m³.
    vp, vs
        P and S velocities, m/s (``vs = 0`` in a fluid).
    q_kappa, q_mu
        Attenuation quality factors (9999: none).
    anisotropy
        SPECFEM's anisotropy flag (0: isotropic).
    domain
        1 acoustic (fluid), 2 elastic.
    """

    rho: float
    vp: float
    vs: float
    q_kappa: float = 9999.0
    q_mu: float = 9999.0
    anisotropy: int = 0
    domain: int = 2

    def __post_init__(self) -> None:
        for name in ("rho", "vp", "vs", "q_kappa", "q_mu"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and math.isfinite(value)):
                raise ValueError(f"material {name} must be a finite number, got {value!r}")
        if self.rho <= 0 or self.vp <= 0 or self.vs < 0:
            raise ValueError(f"material needs rho > 0, vp > 0, vs >= 0: got rho={self.rho}, "
                             f"vp={self.vp}, vs={self.vs}")
        if self.domain not in (1, 2):
            raise ValueError(f"material domain must be 1 (acoustic) or 2 (elastic), got "
                             f"{self.domain!r}")
        if self.domain == 1 and self.vs != 0:
            raise ValueError(f"an acoustic material has vs = 0, got vs={self.vs}")
        if self.domain == 2 and not 3.0 * self.vp**2 > 4.0 * self.vs**2:
            raise ValueError(f"vp={self.vp} m/s and vs={self.vs} m/s give a Poisson's ratio "
                             "below -1 (need vp > 1.155 vs)")
        if self.q_kappa <= 0 or self.q_mu <= 0:
            raise ValueError("material Q values must be > 0")

    @property
    def min_velocity(self) -> float:
        """Slowest wave speed (m/s): vs, or vp in a fluid."""
        return self.vs if self.vs > 0 else self.vp


@dataclass(frozen=True)
class MeshLayer:
    """A flat layer of the internal mesher: one interface (its top) and one material.

    Attributes
    ----------
    top
        Height of the layer's top, m (z up; the top layer's top is the free surface, usually
        0).
    elements
        Number of spectral elements across the layer, vertically.
    material
        Its material.
    """

    top: float
    elements: int
    material: Material

    def __post_init__(self) -> None:
        if not math.isfinite(self.top):
            raise ValueError(f"layer top must be finite, got {self.top!r}")
        if not (isinstance(self.elements, numbers.Integral) and self.elements >= 1):
            raise ValueError(f"a layer needs >= 1 element vertically, got {self.elements!r}")


@dataclass(frozen=True)
class MeshSpec:
    """A box meshed by SPECFEM3D's internal mesher: what the ``Mesh_Par_file`` says.

    Attributes
    ----------
    x_min, x_max
        ``LONGITUDE_MIN``/``LONGITUDE_MAX``: degrees, or UTM easting/Cartesian x in m when
        ``suppress_utm_projection``.
    y_min, y_max
        ``LATITUDE_MIN``/``LATITUDE_MAX``: degrees, or northing/y in m.
    depth_km
        ``DEPTH_BLOCK_KM``: the mesh's bottom is at z = -depth_km * 1000 m.
    nex_xi, nex_eta
        Spectral elements along x and y at the surface.
    layers
        Flat layers from the bottom up (see :class:`MeshLayer`).
    nproc_xi, nproc_eta
        MPI slices along x and y.
    doublings
        Element layers (counted from the bottom, 2..NZ) where the mesh doubles its horizontal
        element size downwards; empty: a regular mesh (``USE_REGULAR_MESH``).
    utm_zone
        ``UTM_PROJECTION_ZONE`` (needed unless ``suppress_utm_projection``).
    suppress_utm_projection
        ``SUPPRESS_UTM_PROJECTION``: coordinates are metres, not degrees.
    """

    x_min: float
    x_max: float
    y_min: float
    y_max: float
    depth_km: float
    nex_xi: int
    nex_eta: int
    layers: tuple[MeshLayer, ...]
    nproc_xi: int = 1
    nproc_eta: int = 1
    doublings: tuple[int, ...] = field(default=())
    utm_zone: int | None = None
    suppress_utm_projection: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "doublings", tuple(sorted(int(d) for d in self.doublings)))
        for name in ("x_min", "x_max", "y_min", "y_max", "depth_km"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and math.isfinite(value)):
                raise ValueError(f"mesh {name} must be a finite number, got {value!r}")
        if not (self.x_min < self.x_max and self.y_min < self.y_max):
            raise ValueError(f"mesh box needs x_min < x_max and y_min < y_max, got x "
                             f"{self.x_min}..{self.x_max}, y {self.y_min}..{self.y_max}")
        if self.depth_km <= 0:
            raise ValueError(f"depth_km must be > 0, got {self.depth_km}")
        for name in ("nex_xi", "nex_eta", "nproc_xi", "nproc_eta"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Integral) and int(value) >= 1):
                raise ValueError(f"mesh {name} must be an integer >= 1, got {value!r}")
        if not self.layers:
            raise ValueError("a mesh needs at least one layer")
        bottom = self.bottom
        for i, layer in enumerate(self.layers):
            below = bottom if i == 0 else self.layers[i - 1].top
            if not layer.top > below:
                raise ValueError(f"layer {i + 1} (from the bottom): its top {layer.top} m must "
                                 f"be above its bottom {below} m")
        nz = self.nz
        if len(set(self.doublings)) != len(self.doublings) or any(
                not 2 <= d <= nz for d in self.doublings):
            raise ValueError(f"doublings must be distinct element layers in 2..{nz}, got "
                             f"{self.doublings}")
        if not self.suppress_utm_projection:
            if self.utm_zone is None or not 1 <= abs(self.utm_zone) <= 60:
                raise ValueError("a mesh in longitude/latitude needs utm_zone 1..60 "
                                 f"(negative: south), got {self.utm_zone!r}")
            if not (self.y_min >= -90 and self.y_max <= 90):
                raise ValueError(f"latitudes {self.y_min}..{self.y_max} out of range")

    @property
    def nproc(self) -> int:
        """Number of MPI processes: ``NPROC_XI * NPROC_ETA``."""
        return self.nproc_xi * self.nproc_eta

    @property
    def nz(self) -> int:
        """Number of element layers from the bottom to the surface."""
        return sum(layer.elements for layer in self.layers)

    @property
    def bottom(self) -> float:
        """Height of the mesh bottom, m."""
        return -abs(self.depth_km) * 1000.0

    @property
    def surface(self) -> float:
        """Height of the mesh top (the free surface), m."""
        return self.layers[-1].top

    @property
    def regular(self) -> bool:
        """True without doublings (``USE_REGULAR_MESH``)."""
        return not self.doublings


def mesh_utm_box(mesh: MeshSpec, *, ellipsoid: str = "WGS84"
                 ) -> tuple[float, float, float, float]:
    """The mesh's rectangle in UTM (or Cartesian) metres, as SPECFEM3D's mesher computes it.

    SPECFEM projects the corners (``LONGITUDE_MIN``, ``LATITUDE_MIN``) and (``LONGITUDE_MAX``,
    ``LATITUDE_MAX``); the mesh is the UTM rectangle between them (so its edges are not
    meridians and parallels).

    Parameters
    ----------
    mesh
        The mesh.
    ellipsoid
        See :func:`utm_from_geographic`.

    Returns
    -------
    tuple of float
        ``x_min, x_max, y_min, y_max`` in m.
    """
    if mesh.suppress_utm_projection:
        return mesh.x_min, mesh.x_max, mesh.y_min, mesh.y_max
    assert mesh.utm_zone is not None  # checked by MeshSpec
    x0, y0 = utm_from_geographic(mesh.x_min, mesh.y_min, mesh.utm_zone, ellipsoid=ellipsoid)
    x1, y1 = utm_from_geographic(mesh.x_max, mesh.y_max, mesh.utm_zone, ellipsoid=ellipsoid)
    return float(x0), float(x1), float(y0), float(y1)


# --- resolution and stability estimates ---

def gll_spacing_fraction(ngll: int = NGLL) -> float:
    """Smallest distance between neighbouring GLL points, as a fraction of the element edge.

    The ``ngll`` Gauss-Lobatto-Legendre points on [-1, 1] are -1, 1 and the roots of the
    derivative of the Legendre polynomial of degree ``ngll - 1``.

    Parameters
    ----------
    ngll
        Points per edge (>= 2).

    Returns
    -------
    float
        0.5 for 3 points, 0.1726732646 for 5 (SPECFEM's ``percent_GLL(5)`` = 17.2673 %).
    """
    if ngll < 2:
        raise ValueError(f"ngll must be >= 2, got {ngll}")
    inner = legendre.Legendre.basis(ngll - 1).deriv().roots() if ngll > 2 else np.array([])
    points = np.sort(np.concatenate([[-1.0, 1.0], np.real(inner)]))
    return float(np.diff(points).min() / 2.0)


@dataclass(frozen=True)
class LayerResolution:
    """Stability and resolution estimates of one layer of a mesh (see :func:`mesh_resolution`).

    Attributes
    ----------
    index
        Layer number from the bottom (1-based).
    bottom, top
        Heights, m.
    edge_min, edge_max
        Shortest and longest element edges in the layer, m.
    vp, min_velocity
        Fastest (P) and slowest (S, or P in a fluid) wave speeds, m/s.
    dt_max
        Largest stable time step, s (Courant number :data:`COURANT_SUGGESTED` by default).
    min_period
        Shortest period resolved, s.
    """

    index: int
    bottom: float
    top: float
    edge_min: float
    edge_max: float
    vp: float
    min_velocity: float
    dt_max: float
    min_period: float

    def describe(self) -> str:
        """``layer 2 (z -32.0..-16.0 km)``."""
        return f"layer {self.index} (z {self.bottom / 1e3:g}..{self.top / 1e3:g} km)"


@dataclass(frozen=True)
class MeshResolution:
    """Stability and resolution estimates of a mesh, and the Courant number of a time step.

    Attributes
    ----------
    box
        ``x_min, x_max, y_min, y_max`` of the mesh in UTM (or Cartesian) metres.
    gll_fraction
        GLL point spacing / edge length used (0.1727 for NGLL = 5).
    courant_max
        Courant number the time step limit is computed for.
    layers
        Per-layer estimates, from the bottom up.
    dt
        The time step checked, s (None if none was given).
    """

    box: tuple[float, float, float, float]
    gll_fraction: float
    courant_max: float
    layers: tuple[LayerResolution, ...]
    dt: float | None = None

    @property
    def dt_max(self) -> float:
        """Largest stable time step, s: the smallest over the layers."""
        return min(layer.dt_max for layer in self.layers)

    @property
    def min_period(self) -> float:
        """Shortest period resolved, s: the longest over the layers."""
        return max(layer.min_period for layer in self.layers)

    @property
    def max_frequency(self) -> float:
        """Highest frequency resolved, Hz (``1 / min_period``)."""
        return 1.0 / self.min_period

    @property
    def edge_min(self) -> float:
        """Shortest element edge, m."""
        return min(layer.edge_min for layer in self.layers)

    @property
    def edge_max(self) -> float:
        """Longest element edge, m."""
        return max(layer.edge_max for layer in self.layers)

    @property
    def gll_spacing_min(self) -> float:
        """Smallest GLL point spacing, m."""
        return self.gll_fraction * self.edge_min

    @property
    def courant(self) -> float | None:
        """Courant number ``DT * vp / d_min`` of ``dt`` (largest over the layers), or None."""
        if self.dt is None:
            return None
        return max(self.dt * layer.vp / (self.gll_fraction * layer.edge_min)
                   for layer in self.layers)

    @property
    def stability_layer(self) -> LayerResolution:
        """The layer that limits the time step."""
        return min(self.layers, key=lambda layer: layer.dt_max)

    @property
    def resolution_layer(self) -> LayerResolution:
        """The layer that limits the resolved period."""
        return max(self.layers, key=lambda layer: layer.min_period)


def mesh_resolution(mesh: MeshSpec, dt: float | None = None, *,
                    courant_max: float = COURANT_SUGGESTED,
                    points_per_wavelength: float = POINTS_PER_WAVELENGTH,
                    ngll: int = NGLL, ellipsoid: str = "WGS84") -> MeshResolution:
    """SPECFEM3D's time step and resolution estimates for a mesh, before meshing it.

    Per element layer ``k``: the surface element size ``(width_x / NEX_XI, width_y /
    NEX_ETA)`` doubles once for every doubling ``d`` with ``k <= d - 2``; the doubling
    superbrick (layers ``d - 1`` and ``d``) has the finer size on top and twice it below, and
    its sub-elements are taken as half the layer thickness tall (a conservative guess).
    Then ``dt_max = courant_max * f_GLL * edge_min / vp`` and ``min_period = edge_max /
    (ngll - 1) / v_min * points_per_wavelength`` (see the module notes).

    Parameters
    ----------
    mesh
        The mesh.
    dt
        A time step (s) to compute the Courant number of (optional).
    courant_max
        Courant number of the time step limit (SPECFEM suggests 0.5).
    points_per_wavelength
        GLL points per minimum wavelength (SPECFEM uses 5).
    ngll
        GLL points per element edge (SPECFEM's default build: 5).
    ellipsoid
        For the UTM projection of a mesh in degrees.

    Returns
    -------
    MeshResolution
    """
    if not courant_max > 0 or not points_per_wavelength > 0:
        raise ValueError("courant_max and points_per_wavelength must be > 0")
    box = mesh_utm_box(mesh, ellipsoid=ellipsoid)
    h_x = (box[1] - box[0]) / mesh.nex_xi
    h_y = (box[3] - box[2]) / mesh.nex_eta
    fraction = gll_spacing_fraction(ngll)
    layers = []
    k = 0
    for i, layer in enumerate(mesh.layers):
        bottom = mesh.bottom if i == 0 else mesh.layers[i - 1].top
        dz = (layer.top - bottom) / layer.elements
        edge_min, edge_max = math.inf, 0.0
        for _ in range(layer.elements):
            k += 1
            factor = 2.0 ** sum(1 for d in mesh.doublings if k <= d - 2)
            in_brick = any(k in (d - 1, d) for d in mesh.doublings)
            fine = (h_x * factor, h_y * factor)
            edge_min = min(edge_min, *fine, dz / 2.0 if in_brick else dz)
            coarse = (2.0 * fine[0], 2.0 * fine[1]) if in_brick else fine
            edge_max = max(edge_max, *coarse, dz)
        material = layer.material
        layers.append(LayerResolution(
            index=i + 1, bottom=bottom, top=layer.top, edge_min=edge_min, edge_max=edge_max,
            vp=material.vp, min_velocity=material.min_velocity,
            dt_max=courant_max * fraction * edge_min / material.vp,
            min_period=edge_max / (ngll - 1) / material.min_velocity * points_per_wavelength))
    return MeshResolution(box=box, gll_fraction=fraction, courant_max=courant_max,
                          layers=tuple(layers), dt=dt)


# --- checks ---

def _nex_problems(mesh: MeshSpec) -> list[str]:
    """SPECFEM's rules for NEX and NPROC (meshfem3D.F90), with the fix."""
    problems = []
    per_proc_step = 1 if mesh.regular else math.lcm(8, 2 ** (len(mesh.doublings) + 1))
    for axis, nex, nproc in (("XI", mesh.nex_xi, mesh.nproc_xi),
                             ("ETA", mesh.nex_eta, mesh.nproc_eta)):
        step = nproc * per_proc_step
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
    together):

    * the Par_file's ``NPROC`` equals ``NPROC_XI * NPROC_ETA``, and NEX_XI/NEX_ETA follow
      SPECFEM's divisibility rules (a multiple of NPROC per direction; with doublings,
      ``NEX/NPROC`` a multiple of 8 and of ``2 * 2**NDOUBLINGS``);
    * the Par_file's ``UTM_PROJECTION_ZONE`` and ``SUPPRESS_UTM_PROJECTION`` match the mesh's;
    * ``NSTEP > 0`` and ``0 < DT <= dt_max`` (SPECFEM's suggested time step for the model's
      fastest P velocity and the element sizes, see :func:`mesh_resolution`);
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
    nproc = _par_get(par, "NPROC", int)
    nstep = _par_get(par, "NSTEP", int)
    dt = _par_get(par, "DT", float)
    zone = _par_get(par, "UTM_PROJECTION_ZONE", int)
    suppress = _par_get(par, "SUPPRESS_UTM_PROJECTION", bool)
    z_mode = _par_get(par, "USE_SOURCES_RECEIVERS_Z", bool, default=False)
    problems = []
    if nproc != mesh.nproc:
        problems.append(f"Par_file NPROC = {nproc} but the mesh is split into NPROC_XI x "
                        f"NPROC_ETA = {mesh.nproc_xi} x {mesh.nproc_eta} = {mesh.nproc} "
                        f"slices: set NPROC = {mesh.nproc}")
    problems.extend(_nex_problems(mesh))
    if suppress != mesh.suppress_utm_projection:
        problems.append(f"Par_file SUPPRESS_UTM_PROJECTION = {format_fortran(suppress)} but "
                        f"the Mesh_Par_file has {format_fortran(mesh.suppress_utm_projection)}:"
                        " make them equal")
    elif not suppress and zone != mesh.utm_zone:
        problems.append(f"Par_file UTM_PROJECTION_ZONE = {zone} but the Mesh_Par_file has "
                        f"{mesh.utm_zone}: make them equal")
    if nstep <= 0:
        problems.append(f"NSTEP = {nstep}: it must be > 0")
    resolution = mesh_resolution(mesh, dt if dt > 0 else None, courant_max=courant_max,
                                 points_per_wavelength=points_per_wavelength,
                                 ellipsoid=ellipsoid)
    if not dt > 0:
        problems.append(f"DT = {dt!r}: it must be > 0")
    elif dt > resolution.dt_max:
        worst = resolution.stability_layer
        courant = resolution.courant
        duration = nstep * dt
        problems.append(
            f"DT = {dt:g} s is above the stability limit {resolution.dt_max:.4g} s "
            f"(Courant number {courant:.3f} > {courant_max:g} for vp {worst.vp:g} m/s in "
            f"{worst.describe()}, elements of {worst.edge_min:.0f} m, GLL spacing "
            f"{resolution.gll_fraction * worst.edge_min:.1f} m): set DT <= "
            f"{resolution.dt_max:.4g} s (and NSTEP >= "
            f"{math.ceil(duration / resolution.dt_max)} to keep the {duration:g} s record) "
            "or use larger elements there")
    if max_frequency is not None:
        if not max_frequency > 0:
            problems.append(f"max_frequency = {max_frequency!r} Hz: it must be > 0")
        elif max_frequency > resolution.max_frequency:
            worst = resolution.resolution_layer
            problems.append(
                f"the mesh resolves periods down to {resolution.min_period:.3g} s "
                f"({resolution.max_frequency:.3g} Hz), not max_frequency = {max_frequency:g} "
                f"Hz: in {worst.describe()} (v_min {worst.min_velocity:g} m/s) elements of up "
                f"to {worst.edge_max:.0f} m give {points_per_wavelength:g} GLL points per "
                f"wavelength only down to {worst.min_period:.3g} s; make its elements <= "
                f"{worst.edge_max / (worst.min_period * max_frequency):.0f} m (more NEX_XI/"
                f"NEX_ETA, more elements in the layer or fewer doublings above it) or lower "
                f"max_frequency to {resolution.max_frequency:.3g} Hz")
    box = resolution.box
    thickness = mesh.surface - mesh.bottom
    sources = [cmt] if not isinstance(cmt, Sequence) else list(cmt)
    if sources:
        xs, ys = _positions(mesh, [s.longorUTM for s in sources], [s.latorUTM for s in sources],
                            ellipsoid)
        for number, (source, x, y) in enumerate(zip(sources, xs, ys, strict=True), start=1):
            where = _outside(box, float(x), float(y))
            name = f"source {number} ({source.event_name})"
            if where:
                problems.append(f"{name} is outside the mesh, {where} of its UTM rectangle x "
                                f"{box[0]:.0f}..{box[1]:.0f} m, y {box[2]:.0f}..{box[3]:.0f} m:"
                                " enlarge the mesh")
            if z_mode:
                if not mesh.bottom <= source.depth <= mesh.surface:
                    problems.append(f"{name} z = {source.depth:g} m (USE_SOURCES_RECEIVERS_Z) "
                                    f"is outside the mesh {mesh.bottom:g}..{mesh.surface:g} m")
            elif not 0.0 <= source.depth * 1000.0 < thickness:
                problems.append(f"{name} depth {source.depth:g} km is outside the mesh (0.."
                                f"{thickness / 1e3:g} km below the surface): deepen the mesh "
                                "(DEPTH_BLOCK_KM)")
    _, outside = stations_in_mesh(mesh, stations, sources_receivers_z=z_mode,
                                  ellipsoid=ellipsoid)
    if outside:
        listed = ", ".join(f"{s.network}.{s.station} ({reason})" for s, reason in outside)
        problems.append(f"{len(outside)} station(s) outside the mesh (UTM rectangle x "
                        f"{box[0]:.0f}..{box[1]:.0f} m, y {box[2]:.0f}..{box[3]:.0f} m): "
                        f"{listed}: enlarge the mesh or leave them out")
    if problems:
        raise SpecfemConfigError("SPECFEM3D set-up check failed:\n  - " + "\n  - ".join(problems))
    return resolution


# --- Mesh_Par_file and interfaces ---

def _data_rows(lines: Sequence[str], start: int, count: int, source: str, what: str
               ) -> list[tuple[int, list[str]]]:
    """The ``count`` table rows after line ``start`` (comments and blank lines skipped)."""
    rows: list[tuple[int, list[str]]] = []
    index = start + 1
    while len(rows) < count:
        if index >= len(lines):
            raise SpecfemFileError(source, f"expected {count} {what} rows after line "
                                           f"{start + 1}, found {len(rows)}")
        text = lines[index].strip()
        if text and not text.startswith("#"):
            rows.append((index, text.split()))
        index += 1
    return rows


def _number(text: str, source: str, line: int, what: str, kind: type = float) -> Any:
    value = fortran_value(text)
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise SpecfemFileError(source, f"{what}: expected an integer, found {text!r}", line)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecfemFileError(source, f"{what}: expected a number, found {text!r}", line)
    return float(value)


def _material_row(tokens: list[str], source: str, line: int) -> tuple[int, Material]:
    if len(tokens) < 8:
        raise SpecfemFileError(source, "a material row needs 8 values: id rho vp vs Q_kappa "
                                       f"Q_mu anisotropy domain, found {len(tokens)}", line)
    number = _number(tokens[0], source, line, "material id", int)
    if number <= 0:
        raise SpecfemFileError(source, f"material {number}: undefined (tomographic) materials "
                                       "are not supported", line)
    reals = [_number(t, source, line, name) for t, name in
             zip(tokens[1:6], ("rho", "vp", "vs", "Q_kappa", "Q_mu"), strict=True)]
    flags = [_number(t, source, line, name, int) for t, name in
             zip(tokens[6:8], ("anisotropy flag", "domain id"), strict=True)]
    try:
        return number, Material(*reals, *flags)
    except ValueError as exc:
        raise SpecfemFileError(source, str(exc), line) from None


def _read_interfaces(path: Path, directory: Path) -> tuple[list[float], list[int]]:
    """Heights of flat interfaces (bottom up) and elements per layer of an interfaces file."""
    source = os.fspath(path)
    rows = [(i + 1, line.strip()) for i, line in enumerate(path.read_text().splitlines())
            if line.strip() and not line.strip().startswith("#")]
    if not rows:
        raise SpecfemFileError(source, "empty interfaces file")
    line, text = rows[0]
    count = _number(text.split()[0], source, line, "number of interfaces", int)
    if count < 1 or len(rows) < 1 + 3 * count:
        raise SpecfemFileError(source, f"{count} interfaces need {3 * count + 1} data lines "
                                       f"(definition, file name, then elements per layer), "
                                       f"found {len(rows)}")
    tops = []
    for i in range(count):
        line, definition = rows[1 + 2 * i]
        if len(definition.split()) != 7:
            raise SpecfemFileError(source, "an interface definition needs 7 values: "
                                           "SUPPRESS_UTM_PROJECTION NXI NETA X0 Y0 DX DY", line)
        _, name = rows[2 + 2 * i]
        data = directory / name
        try:
            values = np.loadtxt(data, dtype=float, ndmin=1)
        except (OSError, ValueError) as exc:
            raise SpecfemFileError(data, f"cannot read the interface heights: {exc}") from None
        if values.size == 0 or np.ptp(values) != 0:
            raise SpecfemFileError(data, "only flat interfaces (one height) are supported, "
                                         f"found heights {values.min():g}..{values.max():g} m")
        tops.append(float(values[0]))
    elements = [_number(text.split()[0], source, line, "elements in a layer", int)
                for line, text in rows[1 + 2 * count:1 + 3 * count]]
    return tops, elements


def read_mesh_spec(path: str | os.PathLike[str], *,
                   interfaces: str | os.PathLike[str] | None = None) -> MeshSpec:
    """Read a ``Mesh_Par_file`` (and its flat interfaces) into a :class:`MeshSpec`.

    Parameters
    ----------
    path
        The ``Mesh_Par_file``.
    interfaces
        Its interfaces file (default: ``INTERFACES_FILE`` beside it); the interface height
        files are read from the same folder.

    Returns
    -------
    MeshSpec

    Raises
    ------
    SpecfemFileError
        A missing or malformed value; a model the spec cannot describe (interfaces that are
        not flat, regions that do not span whole layers, tomographic materials).
    """
    source = os.fspath(path)
    lines = Path(path).read_text().splitlines()
    entries = _entries(lines, source)

    def get(key: str, kind: type = float) -> Any:
        if key not in entries:
            raise SpecfemFileError(source, f"no {key}")
        index, match = entries[key]
        if kind is bool:
            value = fortran_value(match["value"])
            if not isinstance(value, bool):
                raise SpecfemFileError(source, f"{key}: expected .true. or .false., found "
                                               f"{match['value']!r}", index + 1)
            return value
        if kind is str:
            return match["value"].strip()
        return _number(match["value"], source, index + 1, key, kind)

    suppress = get("SUPPRESS_UTM_PROJECTION", bool)
    nex_xi, nex_eta = get("NEX_XI", int), get("NEX_ETA", int)
    doublings: tuple[int, ...] = ()
    if not get("USE_REGULAR_MESH", bool):
        doublings = tuple(get(f"NZ_DOUBLING_{i}", int)
                          for i in range(1, get("NDOUBLINGS", int) + 1))
    materials = {}
    for row, tokens in _data_rows(lines, entries["NMATERIALS"][0] if "NMATERIALS" in entries
                                  else -1, get("NMATERIALS", int), source, "material"):
        number, material = _material_row(tokens, source, row + 1)
        materials[number] = material
    # SPECFEM3D 4 calls it NREGIONS, older versions NSUBREGIONS
    region_key = "NSUBREGIONS" if "NSUBREGIONS" in entries else "NREGIONS"
    regions = []
    for row, tokens in _data_rows(lines, entries[region_key][0] if region_key in entries
                                  else -1, get(region_key, int), source, "region"):
        if len(tokens) < 7:
            raise SpecfemFileError(source, "a region row needs 7 values", row + 1)
        numbers_ = [_number(t, source, row + 1, "region value", int) for t in tokens[:7]]
        xi0, xi1, eta0, eta1, z0, z1, mat = numbers_
        xi1 = nex_xi if xi1 <= 0 else xi1
        eta1 = nex_eta if eta1 <= 0 else eta1
        if (xi0, xi1, eta0, eta1) != (1, nex_xi, 1, nex_eta):
            raise SpecfemFileError(source, "only regions spanning the whole surface (layered "
                                           f"models) are supported, found xi {xi0}..{xi1}, eta "
                                           f"{eta0}..{eta1}", row + 1)
        if mat not in materials:
            raise SpecfemFileError(source, f"region uses material {mat}, not in the table",
                                   row + 1)
        regions.append((z0, z1, mat, row + 1))
    interfaces_path = (Path(interfaces) if interfaces is not None
                       else Path(path).parent / get("INTERFACES_FILE", str))
    tops, elements = _read_interfaces(interfaces_path, interfaces_path.parent)
    layers = []
    k0 = 1
    for number, (top, count) in enumerate(zip(tops, elements, strict=True), start=1):
        k1 = k0 + count - 1
        covering = [r for r in regions if r[0] <= k1 and r[1] >= k0]
        if len(covering) != 1 or (covering[0][0], covering[0][1]) != (k0, k1):
            raise SpecfemFileError(source, f"layer {number} (element layers {k0}..{k1}) must "
                                           "be covered by exactly one region of the same "
                                           f"range, found {[(r[0], r[1]) for r in covering]}")
        layers.append(MeshLayer(top=top, elements=count, material=materials[covering[0][2]]))
        k0 = k1 + 1
    zone = get("UTM_PROJECTION_ZONE", int)
    try:
        return MeshSpec(
            x_min=get("LONGITUDE_MIN"), x_max=get("LONGITUDE_MAX"), y_min=get("LATITUDE_MIN"),
            y_max=get("LATITUDE_MAX"), depth_km=get("DEPTH_BLOCK_KM"), nex_xi=nex_xi,
            nex_eta=nex_eta, layers=tuple(layers), nproc_xi=get("NPROC_XI", int),
            nproc_eta=get("NPROC_ETA", int), doublings=doublings,
            utm_zone=None if suppress and zone == 0 else zone,
            suppress_utm_projection=suppress)
    except ValueError as exc:
        raise SpecfemFileError(source, str(exc)) from None


def _material_text(number: int, m: Material) -> str:
    return (f"{number}  {m.rho:g}  {m.vp:g}  {m.vs:g}  {m.q_kappa:g}  {m.q_mu:g}  "
            f"{m.anisotropy}  {m.domain}")


def _mesh_tables(mesh: MeshSpec) -> tuple[list[Material], list[tuple[int, ...]]]:
    materials: list[Material] = []
    regions: list[tuple[int, ...]] = []
    k0 = 1
    for layer in mesh.layers:
        if layer.material not in materials:
            materials.append(layer.material)
        k1 = k0 + layer.elements - 1
        regions.append((1, mesh.nex_xi, 1, mesh.nex_eta, k0, k1,
                        materials.index(layer.material) + 1))
        k0 = k1 + 1
    return materials, regions


def render_mesh_parfile(template: str, mesh: MeshSpec, *,
                        interfaces_file: str = "interfaces.dat",
                        values: Mapping[str, Any] | None = None) -> str:
    """Fill a ``Mesh_Par_file`` template with a mesh.

    Sets the box, depth, UTM zone and flag, ``INTERFACES_FILE``, NEX, NPROC, the doubling
    parameters (``USE_REGULAR_MESH``, ``NDOUBLINGS``, ``NZ_DOUBLING_1``... - lines beyond
    ``NDOUBLINGS`` are left, SPECFEM ignores them), and replaces the material and region tables
    (one material per distinct layer material, one region per layer). Table rows and values
    equal to the template's keep the template's text. Other keys (``LOCAL_PATH``, PML, output
    files...) keep the template's values unless given in ``values``.

    Parameters
    ----------
    template
        Text of a ``Mesh_Par_file`` of the SPECFEM3D version that will run.
    mesh
        The mesh.
    interfaces_file
        Name of the interfaces file (see :func:`render_interfaces`).
    values
        Further ``KEY`` -> value settings (as for :func:`render_parfile`).

    Returns
    -------
    str
    """
    source = "Mesh_Par_file template"
    lines0 = template.splitlines(keepends=True)
    entries0 = _entries(lines0, source)
    region_key = "NREGIONS" if "NREGIONS" in entries0 else "NSUBREGIONS"
    materials, regions = _mesh_tables(mesh)
    settings: dict[str, Any] = {
        "LATITUDE_MIN": mesh.y_min, "LATITUDE_MAX": mesh.y_max,
        "LONGITUDE_MIN": mesh.x_min, "LONGITUDE_MAX": mesh.x_max,
        "DEPTH_BLOCK_KM": mesh.depth_km,
        "SUPPRESS_UTM_PROJECTION": mesh.suppress_utm_projection,
        "INTERFACES_FILE": interfaces_file,
        "NEX_XI": mesh.nex_xi, "NEX_ETA": mesh.nex_eta,
        "NPROC_XI": mesh.nproc_xi, "NPROC_ETA": mesh.nproc_eta,
        "USE_REGULAR_MESH": mesh.regular, "NDOUBLINGS": len(mesh.doublings),
        "NMATERIALS": len(materials), region_key: len(regions),
    }
    if mesh.utm_zone is not None:
        settings["UTM_PROJECTION_ZONE"] = mesh.utm_zone
    settings.update(values or {})
    old_counts = {key: _number(entries0[key][1]["value"], source, entries0[key][0] + 1, key, int)
                  for key in ("NMATERIALS", region_key) if key in entries0}
    lines = render_parfile(template, settings, source=source).splitlines(keepends=True)
    entries = _entries(lines, source)
    newline = "\n"
    replacements: dict[int, list[str]] = {}

    # doubling layers: set NZ_DOUBLING_1..n, add the missing ones after the last present
    doubling_lines = {int(key.rsplit("_", 1)[1]): index for key, (index, _) in entries.items()
                      if re.fullmatch(r"NZ_DOUBLING_\d+", key)}
    wanted = list(enumerate(mesh.doublings, start=1)) or (
        [] if doubling_lines else [(1, 0)])
    anchor = max(doubling_lines.values(), default=entries["NDOUBLINGS"][0])
    for number, layer in wanted:
        if number in doubling_lines:
            index = doubling_lines[number]
            match = entries[f"NZ_DOUBLING_{number}"][1]
            if fortran_value(match["value"]) != layer:
                replacements[index] = [f"{match['head']}{layer}{match['tail']}{newline}"]
    for number, layer in wanted:
        if number not in doubling_lines:
            replacements.setdefault(anchor, [lines[anchor]]).append(
                f"{f'NZ_DOUBLING_{number}':<32}= {layer}{newline}")

    # material and region tables
    def replace_rows(key: str, count: int, new_rows: list[str], same: bool) -> None:
        rows = _data_rows(lines, entries[key][0], count, source, key)
        if same:
            return
        for i, (index, _) in enumerate(rows):
            replacements[index] = [row + newline for row in new_rows] if i == 0 else []
        if not rows:
            replacements.setdefault(entries[key][0], [lines[entries[key][0]]]).extend(
                row + newline for row in new_rows)

    old_materials = [_material_row(tokens, source, index + 1)
                     for index, tokens in _data_rows(lines, entries["NMATERIALS"][0],
                                                     old_counts["NMATERIALS"], source,
                                                     "material")]
    replace_rows("NMATERIALS", old_counts["NMATERIALS"],
                 [_material_text(i, m) for i, m in enumerate(materials, start=1)],
                 old_materials == list(enumerate(materials, start=1)))
    old_regions = []
    for index, tokens in _data_rows(lines, entries[region_key][0], old_counts[region_key],
                                    source, "region"):
        values_ = [_number(t, source, index + 1, "region value", int) for t in tokens[:7]]
        values_[1] = mesh.nex_xi if values_[1] <= 0 else values_[1]
        values_[3] = mesh.nex_eta if values_[3] <= 0 else values_[3]
        old_regions.append(tuple(values_))
    replace_rows(region_key, old_counts[region_key],
                 ["  ".join(f"{v:<6d}" for v in region).rstrip() for region in regions],
                 old_regions == regions)

    out = []
    for index, line in enumerate(lines):
        out.extend(replacements.get(index, [line]))
    return "".join(out)


def render_interfaces(mesh: MeshSpec, *, name: str = "interfaces.dat") -> dict[str, str]:
    """The interfaces file of a layered mesh and one height file per interface.

    Each interface is flat: a 2 x 2 grid (in degrees, or metres with
    ``suppress_utm_projection``) that covers the mesh with a margin, all four heights equal to
    the layer's top.

    Parameters
    ----------
    mesh
        The mesh.
    name
        Name of the interfaces file (the Mesh_Par_file's ``INTERFACES_FILE``).

    Returns
    -------
    dict of str to str
        File name -> content: ``name`` and ``interface1.dat``... (bottom up).
    """
    # a round grid around the box, with a margin (SPECFEM interpolates the interfaces at the
    # mesh points, whose longitudes/latitudes reach a little beyond the box's corners)
    unit_step = 1000.0 if mesh.suppress_utm_projection else 1.0
    x0 = (math.floor(mesh.x_min / unit_step) - 1) * unit_step
    y0 = (math.floor(mesh.y_min / unit_step) - 1) * unit_step
    spacing = (math.ceil(max(mesh.x_max - x0, mesh.y_max - y0) / unit_step) + 1) * unit_step
    flag = format_fortran(mesh.suppress_utm_projection)
    unit = "m" if mesh.suppress_utm_projection else "degrees"
    text = [
        "# interfaces of the layered mesh (written by dare), from the bottom up",
        "# number of interfaces",
        f" {len(mesh.layers)}",
        "# each interface: SUPPRESS_UTM_PROJECTION NXI NETA X_MIN Y_MIN SPACING_X SPACING_Y "
        f"({unit}),",
        "# then the file with its NXI x NETA heights (m); all interfaces here are flat",
    ]
    files = {}
    for number, layer in enumerate(mesh.layers, start=1):
        data = f"interface{number}.dat"
        text += [f"# interface number {number}",
                 f" {flag} 2 2 {format_fortran(x0)} {format_fortran(y0)} "
                 f"{format_fortran(spacing)} {format_fortran(spacing)}",
                 f" {data}"]
        files[data] = "\n".join([f"{layer.top:.10g}"] * 4) + "\n"
    text.append("# number of spectral elements in the vertical direction, layer by layer, from "
                "the bottom up")
    text += [f" {layer.elements}" for layer in mesh.layers]
    return {name: "\n".join(text) + "\n", **files}


def mesh_around(
    cmt: CMTSolution | Sequence[CMTSolution],
    stations: Sequence[StationLine],
    *,
    layers: Sequence[MeshLayer],
    depth_km: float,
    element_size_km: float,
    margin_km: float = 20.0,
    nproc_xi: int = 1,
    nproc_eta: int = 1,
    doublings: Sequence[int] = (),
    utm_zone: int | None = None,
    suppress_utm_projection: bool = False,
    ellipsoid: str = "WGS84",
) -> MeshSpec:
    """A mesh box around sources and stations, with SPECFEM-valid element counts.

    The box is the UTM (or Cartesian) bounding rectangle of the sources and stations, widened
    by ``margin_km`` on every side; in degrees it is written as the geographic coordinates of
    its two corners, which SPECFEM projects back to the same rectangle. NEX_XI and NEX_ETA are
    the smallest element counts that make elements no larger than ``element_size_km`` at the
    surface and satisfy SPECFEM's divisibility rules.

    Parameters
    ----------
    cmt
        Source(s) (``latorUTM``/``longorUTM`` in degrees, or metres with
        ``suppress_utm_projection``).
    stations
        Stations (same coordinates).
    layers
        Flat layers from the bottom up; the deepest layer's bottom is ``-depth_km``.
    depth_km
        Depth of the mesh bottom below z = 0, km.
    element_size_km
        Largest element size at the surface, km (see :func:`mesh_resolution` for the periods
        and time step it allows).
    margin_km
        Distance from the outermost source or station to the mesh edges, km.
    nproc_xi, nproc_eta
        MPI slices along x and y.
    doublings
        Doubling element layers (see :class:`MeshSpec`).
    utm_zone
        UTM zone; default: the zone of the (first) source.
    suppress_utm_projection
        Coordinates are metres (``SUPPRESS_UTM_PROJECTION``).
    ellipsoid
        For the UTM projection.

    Returns
    -------
    MeshSpec
    """
    sources = [cmt] if not isinstance(cmt, Sequence) else list(cmt)
    if not sources:
        raise ValueError("mesh_around needs at least one source")
    if not (element_size_km > 0 and margin_km >= 0 and depth_km > 0):
        raise ValueError("element_size_km and depth_km must be > 0 and margin_km >= 0")
    lon = [s.longorUTM for s in sources] + [s.longitude for s in stations]
    lat = [s.latorUTM for s in sources] + [s.latitude for s in stations]
    if suppress_utm_projection:
        x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    else:
        if utm_zone is None:
            utm_zone = utm_zone_of(sources[0].longorUTM, sources[0].latorUTM)
        x, y = (np.asarray(v, dtype=float) for v in
                utm_from_geographic(lon, lat, utm_zone, ellipsoid=ellipsoid))
    margin = margin_km * 1000.0
    x0, x1 = float(x.min()) - margin, float(x.max()) + margin
    y0, y1 = float(y.min()) - margin, float(y.max()) + margin
    size = element_size_km * 1000.0
    per_proc = 1 if not doublings else math.lcm(8, 2 ** (len(doublings) + 1))

    def count(width: float, nproc: int) -> int:
        step = nproc * per_proc
        return step * max(1, math.ceil(width / size / step))

    nex_xi, nex_eta = count(x1 - x0, nproc_xi), count(y1 - y0, nproc_eta)
    if not suppress_utm_projection:
        assert utm_zone is not None
        lon0, lat0 = geographic_from_utm(x0, y0, utm_zone, ellipsoid=ellipsoid)
        lon1, lat1 = geographic_from_utm(x1, y1, utm_zone, ellipsoid=ellipsoid)
        x0, x1, y0, y1 = float(lon0), float(lon1), float(lat0), float(lat1)
    return MeshSpec(x_min=x0, x_max=x1, y_min=y0, y_max=y1, depth_km=depth_km,
                    nex_xi=nex_xi, nex_eta=nex_eta, layers=tuple(layers),
                    nproc_xi=nproc_xi, nproc_eta=nproc_eta, doublings=tuple(doublings),
                    utm_zone=utm_zone, suppress_utm_projection=suppress_utm_projection)
