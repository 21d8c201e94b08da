"""1D layered velocity models from a text table, as the internal mesher's flat layers.

The file format (``[simulate.specfem] model_file``, ``--velocity-model FILE``)
    A plain text table, one layer per row, from the surface down. Columns are separated by
    spaces, tabs or commas; ``#`` starts a comment (whole line or after the values); blank lines
    are skipped. Each layer has constant properties from its top to the next layer's top; the
    last layer reaches down to the mesh bottom (``depth_km``); layers starting below the mesh
    bottom are left out. There is no topography: the first layer starts at the surface (depth
    0). Columns:

    ``depth`` (or ``thickness``), ``vp``, ``vs``, ``rho``, then optionally ``qkappa`` and
    ``qmu``, or ``qp`` and ``qs``.

    * ``depth``: depth of the layer's top below the surface; ``thickness``: the layer's
      thickness (the last layer's is ignored: it is the half-space, give 0).
    * Without a header line, the columns are ``depth vp vs rho [qp qs]`` (the common layout of
      1D model tables) -- so the 5th and 6th columns are Qp and Qs unless a header says
      ``qkappa qmu``.
    * An optional header line (the first non-comment line, or a comment line just before the
      first row, made of names rather than numbers) names the columns in any order; accepted
      names (any case): ``depth``/``top``, ``thickness``/``h``, ``vp``/``alpha``,
      ``vs``/``beta``, ``rho``/``density``, ``qkappa``/``q_kappa``, ``qmu``/``q_mu``,
      ``qp``/``q_p``/``qa``/``qalpha``, ``qs``/``q_s``/``qb``/``qbeta``. A name may carry its
      unit in parentheses or brackets: ``depth(km)``, ``vp[m/s]``, ``rho(g/cm3)``.
    * Units: without a unit in the header, velocities below 20 are km/s and above 100 are m/s
      (anything between is an error); densities below 20 are g/cm³ and above 500 kg/m³; depths
      and thicknesses are in km when the velocities are in km/s, in m when they are in m/s.
    * Q: missing quality factors mean no attenuation (9999, SPECFEM's convention). Qp and Qs
      are converted to SPECFEM's Qkappa and Qmu: ``Qmu = Qs`` and
      ``1/Qkappa = (1/Qp - L/Qs) / (1 - L)`` with ``L = 4/3 (vs/vp)²``; a Qp that implies no
      bulk loss (``1/Qp <= L/Qs``) gives Qkappa 9999.

    Checks, each naming the file and line: a number in every column, ``vp > 0``, ``rho > 0``,
    ``vs >= 0`` (0: a fluid layer, meshed as acoustic), ``vs <= vp / sqrt(2)`` (a Poisson's
    ratio below 0 is not a rock), ``Q > 0``, depths starting at 0 and strictly increasing,
    thicknesses > 0.

Example (``depth vp vs rho qp qs``, km, km/s, g/cm³)::

    # depth  vp    vs    rho   qp    qs
      0.0    5.5   3.18  2.4   200   100
      5.5    6.3   3.64  2.67  600   300
      16.0   6.7   3.87  2.8   1000  500
      32.0   7.8   4.5   3.0   2000  1000
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dare_cli.ra.simulate.specfem.errors import SpecfemFileError
from dare_cli.ra.simulate.specfem.mesh import Material, MeshLayer

__all__ = [
    "NO_ATTENUATION",
    "ModelLayer",
    "VelocityModel",
    "format_velocity_model",
    "parse_velocity_model",
    "q_kappa_from_qp_qs",
    "read_velocity_model",
]

#: SPECFEM's quality factor for "no attenuation".
NO_ATTENUATION = 9999.0

_ALIASES = {
    "depth": "depth", "top": "depth", "z": "depth", "depth_top": "depth", "ztop": "depth",
    "thickness": "thickness", "thick": "thickness", "h": "thickness",
    "vp": "vp", "alpha": "vp", "vs": "vs", "beta": "vs",
    "rho": "rho", "density": "rho", "dens": "rho",
    "qkappa": "qkappa", "q_kappa": "qkappa", "qk": "qkappa",
    "qmu": "qmu", "q_mu": "qmu", "qm": "qmu",
    "qp": "qp", "q_p": "qp", "qa": "qp", "qalpha": "qp",
    "qs": "qs", "q_s": "qs", "qb": "qs", "qbeta": "qs",
}
_UNITS = {
    "km": ("length", 1000.0), "m": ("length", 1.0),
    "km/s": ("speed", 1000.0), "kms": ("speed", 1000.0), "m/s": ("speed", 1.0),
    "ms": ("speed", 1.0),
    "g/cm3": ("density", 1000.0), "g/cc": ("density", 1000.0), "gcm3": ("density", 1000.0),
    "g/cm^3": ("density", 1000.0), "kg/m3": ("density", 1.0), "kg/m^3": ("density", 1.0),
}
_KIND = {"depth": "length", "thickness": "length", "vp": "speed", "vs": "speed",
         "rho": "density"}
_NAME = re.compile(r"^(?P<name>[A-Za-z_]+)\s*(?:[(\[](?P<unit>[^)\]]*)[)\]])?$")
_SPLIT = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class ModelLayer:
    """One layer of a 1D model: constant properties from ``top`` down to the next layer.

    Attributes
    ----------
    top
        Depth of the layer's top below the surface, m.
    vp, vs
        P and S velocities, m/s (``vs = 0``: a fluid).
    rho
        Density, kg/m³.
    q_kappa, q_mu
        SPECFEM's bulk and shear quality factors (9999: no attenuation).
    line
        Line of the file it was read from (None if not from a file).
    """

    top: float
    vp: float
    vs: float
    rho: float
    q_kappa: float = NO_ATTENUATION
    q_mu: float = NO_ATTENUATION
    line: int | None = None

    def material(self) -> Material:
        """The internal mesher's :class:`~.mesh.Material` (acoustic if ``vs = 0``)."""
        return Material(rho=self.rho, vp=self.vp, vs=self.vs, q_kappa=self.q_kappa,
                        q_mu=self.q_mu, domain=1 if self.vs == 0 else 2)


@dataclass(frozen=True)
class VelocityModel:
    """A 1D layered model, from the surface down (see the module notes for the file format).

    Attributes
    ----------
    layers
        The layers, tops strictly increasing from 0.
    source
        Where it was read from (for messages).
    """

    layers: tuple[ModelLayer, ...]
    source: str = "velocity model"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise SpecfemFileError(self.source, "no layer")
        if self.layers[0].top != 0:
            raise SpecfemFileError(self.source, f"the first layer must start at the surface "
                                                f"(depth 0), not at {self.layers[0].top:g} m",
                                   self.layers[0].line)
        for above, below in zip(self.layers, self.layers[1:], strict=False):
            if not below.top > above.top:
                raise SpecfemFileError(
                    self.source, f"depths must increase downwards: {below.top / 1e3:g} km "
                    f"follows {above.top / 1e3:g} km"
                    + (f" (line {above.line})" if above.line is not None else "")
                    + ("; a table listing the top and the bottom of each layer is not a "
                       "layered model: give each layer once, by its top"
                       if below.top == above.top else ""), below.line)

    @property
    def min_velocity(self) -> float:
        """Slowest wave speed (S, or P in a fluid), m/s."""
        return min(layer.vs if layer.vs > 0 else layer.vp for layer in self.layers)

    def within(self, depth_km: float) -> tuple[ModelLayer, ...]:
        """The layers whose top lies above ``depth_km`` (those a mesh that deep holds)."""
        return tuple(layer for layer in self.layers if layer.top < depth_km * 1000.0)

    def mesh_layers(self, depth_km: float, element_height: float | Sequence[float]
                    ) -> tuple[MeshLayer, ...]:
        """Flat layers of the internal mesher, from the bottom up, for a mesh ``depth_km`` deep.

        Parameters
        ----------
        depth_km
            Depth of the mesh bottom, km.
        element_height
            Largest element height, m: one for all layers, or one per layer of
            :meth:`within` (top down). Each layer gets ``ceil(thickness / height)`` (at least
            1) elements vertically.

        Returns
        -------
        tuple of MeshLayer
        """
        kept = self.within(depth_km)
        heights = ([float(element_height)] * len(kept)
                   if isinstance(element_height, int | float) else list(element_height))
        if len(heights) != len(kept):
            raise ValueError(f"{len(kept)} layers but {len(heights)} element heights")
        bottom = depth_km * 1000.0
        layers = []
        for i, (layer, height) in enumerate(zip(kept, heights, strict=True)):
            if not height > 0:
                raise ValueError(f"element height must be > 0, got {height}")
            base = kept[i + 1].top if i + 1 < len(kept) else bottom
            count = max(1, math.ceil((base - layer.top) / height - 1e-9))
            layers.append(MeshLayer(top=-layer.top, elements=count, material=layer.material()))
        return tuple(reversed(layers))


def q_kappa_from_qp_qs(qp: float, qs: float, vp: float, vs: float) -> float:
    """SPECFEM's bulk quality factor Qkappa from Qp and Qs.

    ``1/Qp = L/Qs + (1 - L)/Qkappa`` with ``L = 4/3 (vs/vp)²`` (e.g. Dahlen & Tromp 1998,
    eq. 9.59).

    Parameters
    ----------
    qp, qs
        P and S quality factors.
    vp, vs
        Velocities (any one unit).

    Returns
    -------
    float
        Qkappa, at most :data:`NO_ATTENUATION` (also when Qp implies no bulk loss).
    """
    ratio = 4.0 / 3.0 * (vs / vp) ** 2
    bulk = (1.0 / qp - ratio / qs) / (1.0 - ratio)
    if bulk <= 1.0 / NO_ATTENUATION:
        return NO_ATTENUATION
    return 1.0 / bulk


def _header(tokens: list[str], source: str, line: int) -> tuple[list[str], list[float | None]]:
    names: list[str] = []
    factors: list[float | None] = []
    for token in tokens:
        match = _NAME.match(token)
        key = _ALIASES.get(match["name"].lower()) if match else None
        if match is None or key is None:
            raise SpecfemFileError(source, f"unknown column {token!r} in the header; known: "
                                           "depth or thickness, vp, vs, rho, qkappa, qmu, qp, "
                                           "qs (a unit may follow in parentheses)", line)
        if key in names:
            raise SpecfemFileError(source, f"column {key} given twice in the header", line)
        unit = (match["unit"] or "").strip().lower().replace(" ", "")
        factor = None
        if unit:
            if unit not in _UNITS or key not in _KIND or _UNITS[unit][0] != _KIND[key]:
                raise SpecfemFileError(source, f"unit {match['unit']!r} does not fit column "
                                               f"{key}", line)
            factor = _UNITS[unit][1]
        names.append(key)
        factors.append(factor)
    required = [("depth or thickness", {"depth", "thickness"} & set(names)),
                ("vp", {"vp"} & set(names)), ("vs", {"vs"} & set(names)),
                ("rho", {"rho"} & set(names))]
    missing = [name for name, found in required if not found]
    if missing:
        raise SpecfemFileError(source, f"the header has no {', '.join(missing)} column", line)
    if {"depth", "thickness"} <= set(names):
        raise SpecfemFileError(source, "give depth or thickness, not both", line)
    for a, b in (("qkappa", "qp"), ("qmu", "qs"), ("qkappa", "qs"), ("qmu", "qp")):
        if a in names and b in names:
            raise SpecfemFileError(source, "give qkappa and qmu, or qp and qs, not a mix", line)
    return names, factors


def _is_header(tokens: list[str]) -> bool:
    return bool(tokens) and all(re.match(r"[A-Za-z_]", t) for t in tokens)


def parse_velocity_model(text: str, *, source: str = "velocity model") -> VelocityModel:
    """Read a 1D velocity model table (see the module notes for the format).

    Parameters
    ----------
    text
        The table.
    source
        Its name for error messages.

    Returns
    -------
    VelocityModel

    Raises
    ------
    SpecfemFileError
        A malformed or non-physical row, naming the file and the line.
    """
    names: list[str] | None = None
    factors: list[float | None] = []
    rows: list[tuple[int, list[float]]] = []
    last_comment: tuple[int, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            tokens = [t for t in _SPLIT.split(stripped.lstrip("#").strip()) if t]
            if names is None and not rows and _is_header(tokens):
                last_comment = (number, tokens)
            continue
        body = stripped.split("#", 1)[0].strip()
        if not body:
            continue
        tokens = [t for t in _SPLIT.split(body) if t]
        if names is None and not rows and _is_header(tokens):
            names, factors = _header(tokens, source, number)
            continue
        if names is None and not rows and last_comment is not None:
            try:
                names, factors = _header(last_comment[1], source, last_comment[0])
            except SpecfemFileError:
                names = None  # a comment in words, not a header
        values = []
        for token in tokens:
            try:
                value = float(token.replace("d", "e").replace("D", "e"))
            except ValueError:
                raise SpecfemFileError(source, f"{token!r} is not a number", number) from None
            if not math.isfinite(value):
                raise SpecfemFileError(source, f"{token!r} is not a finite number", number)
            values.append(value)
        rows.append((number, values))
    if not rows:
        raise SpecfemFileError(source, "no layer: expected rows of depth vp vs rho [qp qs]")
    if names is None:
        width = len(rows[0][1])
        if width not in (4, 6):
            raise SpecfemFileError(source, f"{width} columns: without a header line the layout "
                                           "is 'depth vp vs rho' or 'depth vp vs rho qp qs'",
                                   rows[0][0])
        names = ["depth", "vp", "vs", "rho", "qp", "qs"][:width]
        factors = [None] * width
    return _model(names, factors, rows, source)


def _model(names: list[str], factors: list[float | None], rows: list[tuple[int, list[float]]],
           source: str) -> VelocityModel:
    width = len(names)
    column = {name: i for i, name in enumerate(names)}
    for number, values in rows:
        if len(values) != width:
            raise SpecfemFileError(source, f"{len(values)} values, expected {width} "
                                           f"({' '.join(names)})", number)
    units = _column_units(names, factors, rows, source)
    layers = []
    top = 0.0
    for index, (number, values) in enumerate(rows):
        def get(name: str, row: list[float] = values) -> float:
            return row[column[name]] * units.get(name, 1.0)

        vp, vs, rho = get("vp"), get("vs"), get("rho")
        _check_layer(vp, vs, rho, source, number)
        q_kappa, q_mu = _quality_factors(values, column, vp, vs, source, number)
        if "depth" in column:
            top = get("depth")
        elif index > 0:
            thickness = rows[index - 1][1][column["thickness"]] * units["thickness"]
            if not thickness > 0:
                raise SpecfemFileError(source, f"thickness must be > 0, got {thickness:g} m "
                                               "(only the last layer, the half-space, may "
                                               "have 0)", rows[index - 1][0])
            top += thickness
        layers.append(ModelLayer(top=top, vp=vp, vs=vs, rho=rho, q_kappa=q_kappa, q_mu=q_mu,
                                 line=number))
    return VelocityModel(tuple(layers), source)


def _column_units(names: list[str], factors: list[float | None],
                  rows: list[tuple[int, list[float]]], source: str) -> dict[str, float]:
    """SI factor of each column; for those without a unit, guessed from the first row.

    Speeds are km/s when the first vp is under 20, m/s when over 100; lengths follow the
    speeds; densities are g/cm³ under 20, kg/m³ over 500; in between is an error.
    """
    column = {name: i for i, name in enumerate(names)}
    first_vp = rows[0][1][column["vp"]]
    speed = factors[column["vp"]]
    if speed is None:
        if not first_vp > 0:
            raise SpecfemFileError(source, f"vp must be > 0, got {first_vp:g}", rows[0][0])
        if first_vp < 20:
            speed = 1000.0
        elif first_vp > 100:
            speed = 1.0
        else:
            raise SpecfemFileError(source, f"vp = {first_vp:g}: cannot tell km/s (< 20) from "
                                           "m/s (> 100); give the unit in a header, e.g. "
                                           "vp(km/s)", rows[0][0])
    units = {}
    for name, kind in _KIND.items():
        if name not in column:
            continue
        factor = factors[column[name]]
        if factor is None:
            if kind == "speed":
                factor = speed
            elif kind == "length":
                factor = 1000.0 if speed == 1000.0 else 1.0
            else:
                rho = rows[0][1][column[name]]
                if not rho > 0:
                    raise SpecfemFileError(source, f"rho must be > 0, got {rho:g}", rows[0][0])
                if rho < 20:
                    factor = 1000.0
                elif rho > 500:
                    factor = 1.0
                else:
                    raise SpecfemFileError(source, f"rho = {rho:g}: cannot tell g/cm³ (< 20) "
                                                   "from kg/m³ (> 500); give the unit in a "
                                                   "header, e.g. rho(g/cm3)", rows[0][0])
        units[name] = factor
    return units


def _check_layer(vp: float, vs: float, rho: float, source: str, number: int) -> None:
    """Check a layer's speeds and density (SI): vp > 0, 0 <= vs <= vp/sqrt(2), rho > 0."""
    if not vp > 0:
        raise SpecfemFileError(source, f"vp must be > 0, got {vp:g} m/s", number)
    if vs < 0:
        raise SpecfemFileError(source, f"vs must be >= 0 (0: a fluid), got {vs:g} m/s",
                               number)
    if vs > vp / math.sqrt(2.0) * (1 + 1e-9):
        raise SpecfemFileError(source, f"vs = {vs:g} m/s is above vp/sqrt(2) = "
                                       f"{vp / math.sqrt(2.0):.6g} m/s (vp = {vp:g} m/s): "
                                       "a negative Poisson's ratio; are the vp and vs "
                                       "columns swapped?", number)
    if not rho > 0:
        raise SpecfemFileError(source, f"rho must be > 0, got {rho:g} kg/m³", number)


def _quality_factors(values: list[float], column: Mapping[str, int], vp: float, vs: float,
                     source: str, number: int) -> tuple[float, float]:
    """Q_kappa and Q_mu of a row from its ``qkappa``/``qmu`` or ``qp``/``qs`` columns.

    A missing one is :data:`NO_ATTENUATION`, which also caps both.
    """
    q = {name: values[column[name]] for name in ("qkappa", "qmu", "qp", "qs")
         if name in column}
    for name, value in q.items():
        if not value > 0:
            raise SpecfemFileError(source, f"{name} must be > 0, got {value:g}", number)
    q_mu = q.get("qmu", q.get("qs", NO_ATTENUATION))
    if "qkappa" in q:
        q_kappa = q["qkappa"]
    elif "qp" in q:
        q_kappa = (q_kappa_from_qp_qs(q["qp"], q.get("qs", NO_ATTENUATION), vp, vs)
                   if vs > 0 else q["qp"])
    else:
        q_kappa = NO_ATTENUATION
    return min(q_kappa, NO_ATTENUATION), min(q_mu, NO_ATTENUATION)


def read_velocity_model(path: str | os.PathLike[str]) -> VelocityModel:
    """Read a 1D velocity model file (see the module notes for the format).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    VelocityModel

    Raises
    ------
    SpecfemFileError
        An unreadable file, or a malformed or non-physical row (naming the line).
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise SpecfemFileError(path, f"cannot read the velocity model: {error}") from None
    return parse_velocity_model(text, source=os.fspath(path))


def format_velocity_model(model: VelocityModel) -> str:
    """The model as a table ``depth(km) vp(km/s) vs(km/s) rho(g/cm3) qkappa qmu``."""
    lines = ["# depth(km) vp(km/s) vs(km/s) rho(g/cm3) qkappa qmu"]
    for layer in model.layers:
        lines.append(f"{layer.top / 1e3:g} {layer.vp / 1e3:g} {layer.vs / 1e3:g} "
                     f"{layer.rho / 1e3:g} {layer.q_kappa:g} {layer.q_mu:g}")
    return "\n".join(lines) + "\n"
