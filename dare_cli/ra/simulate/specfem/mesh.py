"""The internal mesher's (``xmeshfem3D``) layered box: :class:`MeshSpec` and its files.

:class:`MeshSpec` describes a layered box: its horizontal extent (longitude/latitude, which
SPECFEM projects to UTM, or UTM/Cartesian metres with ``SUPPRESS_UTM_PROJECTION``), its depth,
the number of spectral elements ``NEX_XI`` x ``NEX_ETA`` at the surface, the split over
``NPROC_XI`` x ``NPROC_ETA`` processes, the mesh doublings, and flat layers of one material
each. :func:`render_mesh_parfile` and :func:`render_interfaces` write it, :func:`read_mesh_spec`
reads it back, :func:`mesh_around` sizes one around a source and its stations, and
:func:`nex_multiple` gives SPECFEM's divisibility rule for the element counts.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dare_cli.ra.simulate.specfem.errors import SpecfemFileError
from dare_cli.ra.simulate.specfem.parfile import (
    format_fortran,
    fortran_value,
    parfile_entries,
    parse_number,
    render_parfile,
    table_rows,
)
from dare_cli.ra.simulate.specfem.utm import (
    geographic_from_utm,
    utm_from_geographic,
    utm_zone_of,
)

if TYPE_CHECKING:
    from dare_cli.ra.simulate.specfem.cmtsolution import CMTSolution
    from dare_cli.ra.simulate.specfem.stations import StationLine

__all__ = [
    "Material",
    "MeshLayer",
    "MeshSpec",
    "mesh_around",
    "mesh_utm_box",
    "nex_multiple",
    "read_mesh_spec",
    "render_interfaces",
    "render_mesh_parfile",
]


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


def nex_multiple(nproc: int, ndoublings: int = 0) -> int:
    """What ``NEX_XI`` (or ``NEX_ETA``) must be a multiple of, by SPECFEM3D's mesher rules.

    ``NEX`` must split evenly over ``NPROC`` slices in that direction; with mesh doublings
    (``USE_REGULAR_MESH = .false.``) ``NEX / NPROC`` must moreover be a multiple of 8 and of
    ``2 * 2**NDOUBLINGS`` (``meshfem3D``'s checks).

    Parameters
    ----------
    nproc
        ``NPROC_XI`` (or ``NPROC_ETA``).
    ndoublings
        Number of mesh doublings (0: a regular mesh).

    Returns
    -------
    int
    """
    per_proc = 1 if ndoublings == 0 else math.lcm(8, 2 ** (ndoublings + 1))
    return nproc * per_proc


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


def _material_row(tokens: list[str], source: str, line: int) -> tuple[int, Material]:
    if len(tokens) < 8:
        raise SpecfemFileError(source, "a material row needs 8 values: id rho vp vs Q_kappa "
                                       f"Q_mu anisotropy domain, found {len(tokens)}", line)
    number = parse_number(tokens[0], source, line, "material id", int)
    if number <= 0:
        raise SpecfemFileError(source, f"material {number}: undefined (tomographic) materials "
                                       "are not supported", line)
    reals = [parse_number(t, source, line, name) for t, name in
             zip(tokens[1:6], ("rho", "vp", "vs", "Q_kappa", "Q_mu"), strict=True)]
    flags = [parse_number(t, source, line, name, int) for t, name in
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
    count = parse_number(text.split()[0], source, line, "number of interfaces", int)
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
    elements = [parse_number(text.split()[0], source, line, "elements in a layer", int)
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
    entries = parfile_entries(lines, source)

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
        return parse_number(match["value"], source, index + 1, key, kind)

    suppress = get("SUPPRESS_UTM_PROJECTION", bool)
    nex_xi, nex_eta = get("NEX_XI", int), get("NEX_ETA", int)
    doublings: tuple[int, ...] = ()
    if not get("USE_REGULAR_MESH", bool):
        doublings = tuple(get(f"NZ_DOUBLING_{i}", int)
                          for i in range(1, get("NDOUBLINGS", int) + 1))
    materials = {}
    for row, tokens in table_rows(lines, entries["NMATERIALS"][0] if "NMATERIALS" in entries
                                  else -1, get("NMATERIALS", int), source, "material"):
        number, material = _material_row(tokens, source, row + 1)
        materials[number] = material
    # SPECFEM3D 4 calls it NREGIONS, older versions NSUBREGIONS
    region_key = "NSUBREGIONS" if "NSUBREGIONS" in entries else "NREGIONS"
    regions = _layered_regions(
        table_rows(lines, entries[region_key][0] if region_key in entries else -1,
                   get(region_key, int), source, "region"), source, nex_xi, nex_eta, materials)
    interfaces_path = (Path(interfaces) if interfaces is not None
                       else Path(path).parent / get("INTERFACES_FILE", str))
    tops, elements = _read_interfaces(interfaces_path, interfaces_path.parent)
    layers = _region_layers(tops, elements, regions, materials, source)
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


def _layered_regions(rows: Sequence[tuple[int, list[str]]], source: str, nex_xi: int,
                     nex_eta: int, materials: Mapping[int, Material]
                     ) -> list[tuple[int, int, int, int]]:
    """``(z0, z1, material, line)`` of region rows that each span the whole surface."""
    regions = []
    for row, tokens in rows:
        if len(tokens) < 7:
            raise SpecfemFileError(source, "a region row needs 7 values", row + 1)
        numbers_ = [parse_number(t, source, row + 1, "region value", int) for t in tokens[:7]]
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
    return regions


def _region_layers(tops: Sequence[float], elements: Sequence[int],
                   regions: Sequence[tuple[int, int, int, int]],
                   materials: Mapping[int, Material], source: str) -> list[MeshLayer]:
    """The layers between the interfaces, each covered by exactly one region."""
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
    return layers


def _projected(lon: Sequence[float], lat: Sequence[float], utm_zone: int | None,
               ellipsoid: str) -> tuple[np.ndarray, np.ndarray]:
    """UTM x, y (m) of points in degrees, or the coordinates as they are without a zone."""
    if utm_zone is None:
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    x, y = utm_from_geographic(lon, lat, utm_zone, ellipsoid=ellipsoid)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def _element_count(width: float, size: float, nproc: int, ndoublings: int) -> int:
    """The fewest elements of at most ``size`` across ``width`` that SPECFEM accepts."""
    step = nex_multiple(nproc, ndoublings)
    return step * max(1, math.ceil(width / size / step))


def _material_text(number: int, m: Material) -> str:
    def real(x: float) -> str:  # short, and read back as the same double
        return f"{x:g}" if float(f"{x:g}") == x else repr(float(x))

    return (f"{number}  {real(m.rho)}  {real(m.vp)}  {real(m.vs)}  {real(m.q_kappa)}  "
            f"{real(m.q_mu)}  {m.anisotropy}  {m.domain}")


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
    entries0 = parfile_entries(lines0, source)
    region_key = "NREGIONS" if "NREGIONS" in entries0 else "NSUBREGIONS"
    materials, regions = _mesh_tables(mesh)
    settings = _mesh_settings(mesh, interfaces_file, region_key, len(materials), len(regions))
    settings.update(values or {})
    old_counts = {key: parse_number(entries0[key][1]["value"], source, entries0[key][0] + 1,
                                    key, int)
                  for key in ("NMATERIALS", region_key) if key in entries0}
    lines = render_parfile(template, settings, source=source).splitlines(keepends=True)
    entries = parfile_entries(lines, source)
    replacements: dict[int, list[str]] = {}
    _replace_doublings(mesh, lines, entries, replacements)

    # material and region tables
    def replace_rows(key: str, count: int, new_rows: list[str], same: bool) -> None:
        rows = table_rows(lines, entries[key][0], count, source, key)
        if same:
            return
        for i, (index, _) in enumerate(rows):
            replacements[index] = [row + "\n" for row in new_rows] if i == 0 else []
        if not rows:
            replacements.setdefault(entries[key][0], [lines[entries[key][0]]]).extend(
                row + "\n" for row in new_rows)

    old_materials = [_material_row(tokens, source, index + 1)
                     for index, tokens in table_rows(lines, entries["NMATERIALS"][0],
                                                     old_counts["NMATERIALS"], source,
                                                     "material")]
    replace_rows("NMATERIALS", old_counts["NMATERIALS"],
                 [_material_text(i, m) for i, m in enumerate(materials, start=1)],
                 old_materials == list(enumerate(materials, start=1)))
    old_regions = []
    for index, tokens in table_rows(lines, entries[region_key][0], old_counts[region_key],
                                    source, "region"):
        values_ = [parse_number(t, source, index + 1, "region value", int) for t in tokens[:7]]
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


def _mesh_settings(mesh: MeshSpec, interfaces_file: str, region_key: str, nmaterials: int,
                   nregions: int) -> dict[str, Any]:
    """The ``Mesh_Par_file`` values of a mesh: box, depth, UTM, NEX, NPROC, doublings, tables."""
    settings: dict[str, Any] = {
        "LATITUDE_MIN": mesh.y_min, "LATITUDE_MAX": mesh.y_max,
        "LONGITUDE_MIN": mesh.x_min, "LONGITUDE_MAX": mesh.x_max,
        "DEPTH_BLOCK_KM": mesh.depth_km,
        "SUPPRESS_UTM_PROJECTION": mesh.suppress_utm_projection,
        "INTERFACES_FILE": interfaces_file,
        "NEX_XI": mesh.nex_xi, "NEX_ETA": mesh.nex_eta,
        "NPROC_XI": mesh.nproc_xi, "NPROC_ETA": mesh.nproc_eta,
        "USE_REGULAR_MESH": mesh.regular, "NDOUBLINGS": len(mesh.doublings),
        "NMATERIALS": nmaterials, region_key: nregions,
    }
    if mesh.utm_zone is not None:
        settings["UTM_PROJECTION_ZONE"] = mesh.utm_zone
    return settings


def _replace_doublings(mesh: MeshSpec, lines: Sequence[str], entries: Mapping[str, Any],
                       replacements: dict[int, list[str]]) -> None:
    """Set ``NZ_DOUBLING_1..n`` in ``replacements``; the missing ones go after the last present."""
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
                replacements[index] = [f"{match['head']}{layer}{match['tail']}\n"]
    for number, layer in wanted:
        if number not in doubling_lines:
            replacements.setdefault(anchor, [lines[anchor]]).append(
                f"{f'NZ_DOUBLING_{number}':<32}= {layer}\n")


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
    if not suppress_utm_projection and utm_zone is None:
        utm_zone = utm_zone_of(sources[0].longorUTM, sources[0].latorUTM)
    x, y = _projected(lon, lat, None if suppress_utm_projection else utm_zone, ellipsoid)
    margin = margin_km * 1000.0
    x0, x1 = float(x.min()) - margin, float(x.max()) + margin
    y0, y1 = float(y.min()) - margin, float(y.max()) + margin
    size = element_size_km * 1000.0
    nex_xi = _element_count(x1 - x0, size, nproc_xi, len(doublings))
    nex_eta = _element_count(y1 - y0, size, nproc_eta, len(doublings))
    if not suppress_utm_projection:
        assert utm_zone is not None
        lon0, lat0 = geographic_from_utm(x0, y0, utm_zone, ellipsoid=ellipsoid)
        lon1, lat1 = geographic_from_utm(x1, y1, utm_zone, ellipsoid=ellipsoid)
        x0, x1, y0, y1 = float(lon0), float(lon1), float(lat0), float(lat1)
    return MeshSpec(x_min=x0, x_max=x1, y_min=y0, y_max=y1, depth_km=depth_km,
                    nex_xi=nex_xi, nex_eta=nex_eta, layers=tuple(layers),
                    nproc_xi=nproc_xi, nproc_eta=nproc_eta, doublings=tuple(doublings),
                    utm_zone=utm_zone, suppress_utm_projection=suppress_utm_projection)
