"""SPECFEM3D's ``CMTSOLUTION`` file: a moment-tensor point source in GCMT's layout.

Layout (13 lines per source; SPECFEM reads the header line in free format, skipping its
leading catalogue code, and the value after the colon of the other twelve)::

    PDE 2001  9  9 23 59 17.78  34.0745 -118.3792   6.4 4.2 4.2 HOLLYWOOD POLET SEM
    event name:     9703873
    time shift:      0.0000
    half duration:   0.3114
    latorUTM:       34.0745
    longorUTM:    -118.3792
    depth:           5.4000
    Mrr:      -0.002000e+23
    Mtt:      -0.064000e+23
    Mpp:       0.066000e+23
    Mrt:      -0.090000e+23
    Mrp:      -0.002000e+23
    Mtp:       0.188000e+23

The header ("PDE" line) gives the catalogue's hypocentre: origin time (to 0.01 s), latitude,
longitude, depth (km), mb and Ms, and a region name; SPECFEM only uses its time. Then: an
event name; the time shift of the centroid after the origin time (s); the half duration of the
source time function (s; SPECFEM uses a Gaussian moment-rate function of this half duration, or
``5 * DT`` if shorter); the centroid's latitude and longitude in degrees, or its UTM (or
Cartesian) northing and easting in m with ``SUPPRESS_UTM_PROJECTION``; its depth below the
surface in km; and the moment tensor in dyne·cm.

Moment-tensor convention
    The six components are GCMT's, in spherical coordinates ``r`` up, ``t`` (theta) south,
    ``p`` (phi) east (Dziewonski et al. 1981), the same as QuakeML's ``Tensor`` (which is in
    N·m: 1 N·m = 1e7 dyne·cm). In the Aki & Richards frame of :mod:`dare_cli.ra.source` (x
    north, y east, z down): ``Mrr = Mzz``, ``Mtt = Mxx``, ``Mpp = Myy``, ``Mrt = Mxz``,
    ``Mrp = -Myz``, ``Mtp = -Mxy``. SPECFEM3D converts them to its local mesh (x east, y north,
    z up) as ``Mzz = Mrr``, ``Myy = Mtt``, ``Mxx = Mpp``, ``Myz = -Mrt``, ``Mxz = Mrp``,
    ``Mxy = -Mtp``.

The moment lines are written, as in SPECFEM's examples and SCSN solutions, with one exponent
shared by all six (the largest component's mantissa in [0.1, 1), six decimals: an absolute
precision of 1e-6 of the largest component); ``common_exponent=False`` writes GCMT's
per-component ``%.6e`` instead.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from obspy import UTCDateTime
from obspy.core.event import Event, FocalMechanism, MomentTensor, Origin

from dare_cli.ra.simulate.specfem.errors import SpecfemFileError
from dare_cli.ra.simulate.specfem.utm import utm_from_geographic
from dare_cli.ra.source import (
    DYNE_CM_PER_NM,
    double_couple_tensor,
    half_duration_from_moment,
    magnitude_from_moment,
    moment_from_magnitude,
    ned_to_rtp,
    rtp_to_ned,
    scalar_moment,
    tensor_from_event,
)
from engine.files import write_atomic

__all__ = [
    "CMTSolution",
    "cmtsolution_from_double_couple",
    "cmtsolution_from_event",
    "format_cmtsolution",
    "parse_cmtsolutions",
    "read_cmtsolution",
    "read_cmtsolutions",
    "simulation_origin_time",
    "write_cmtsolution",
]

_COMPONENTS = ("mrr", "mtt", "mpp", "mrt", "mrp", "mtp")
_PDE = re.compile(
    r"^\s*(?P<catalogue>[^\d\s]*)\s*(?P<year>\d+)\s+(?P<month>\d+)\s+(?P<day>\d+)\s+"
    r"(?P<hour>\d+)\s+(?P<minute>\d+)\s+(?P<second>\d+(?:\.\d*)?)\s+(?P<latitude>\S+)\s+"
    r"(?P<longitude>\S+)\s+(?P<depth>\S+)\s+(?P<mb>\S+)\s+(?P<ms>\S+)(?:\s+(?P<region>.*?))?"
    r"\s*$")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
#: Labels of the twelve lines after the header (accepted spellings; compared ignoring case).
_LABELS = (
    ("event name",), ("time shift",), ("half duration",), ("latorUTM", "latitude"),
    ("longorUTM", "longitude"), ("depth",), ("Mrr",), ("Mtt",), ("Mpp",), ("Mrt",), ("Mrp",),
    ("Mtp",),
)


@dataclass(frozen=True)
class CMTSolution:
    """One source of a ``CMTSOLUTION`` file.

    Attributes
    ----------
    catalogue
        Code of the hypocentre's catalogue, first on the header line (e.g. ``PDE``; no digits
        or blanks).
    origin_time
        Hypocentre origin time (UTC; written to 0.01 s).
    latitude, longitude
        Hypocentre, degrees.
    depth_km
        Hypocentre depth, km.
    mb, ms
        Body- and surface-wave magnitudes of the header.
    region
        Region name of the header (may be empty).
    event_name
        Event name (no line breaks).
    time_shift
        Centroid time minus origin time, s.
    half_duration
        Half duration of the source time function, s.
    latorUTM, longorUTM
        Centroid latitude and longitude (degrees), or UTM/Cartesian northing and easting (m).
    depth
        Centroid depth below the surface, km (the height z in m with the Par_file's
        ``USE_SOURCES_RECEIVERS_Z``).
    mrr, mtt, mpp, mrt, mrp, mtp
        Moment tensor in dyne·cm, GCMT's r (up), t (south), p (east) frame.
    """

    catalogue: str
    origin_time: UTCDateTime
    latitude: float
    longitude: float
    depth_km: float
    mb: float
    ms: float
    region: str
    event_name: str
    time_shift: float
    half_duration: float
    latorUTM: float
    longorUTM: float
    depth: float
    mrr: float
    mtt: float
    mpp: float
    mrt: float
    mrp: float
    mtp: float

    def __post_init__(self) -> None:
        if (not isinstance(self.catalogue, str) or not self.catalogue
                or any(c.isdigit() or c.isspace() for c in self.catalogue)):
            raise ValueError(f"catalogue code must be non-empty without digits or blanks, got "
                             f"{self.catalogue!r}")
        if not isinstance(self.origin_time, UTCDateTime):
            object.__setattr__(self, "origin_time", UTCDateTime(self.origin_time))
        for name in ("region", "event_name"):
            text = getattr(self, name)
            if not isinstance(text, str) or "\n" in text or "\r" in text:
                raise ValueError(f"{name} must be one line of text, got {text!r}")
            object.__setattr__(self, name, text.strip())
        if not self.event_name:
            raise ValueError("event_name must not be empty")
        for name in ("latitude", "longitude", "depth_km", "mb", "ms", "time_shift",
                     "half_duration", "latorUTM", "longorUTM", "depth", *_COMPONENTS):
            value = getattr(self, name)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a number, got {value!r}") from None
            if not math.isfinite(number):
                raise ValueError(f"{name} must be finite, got {value!r}")
            object.__setattr__(self, name, number)
        if not -90.0 <= self.latitude <= 90.0:
            raise ValueError(f"latitude must be within -90..90 degrees, got {self.latitude}")
        if self.half_duration < 0:
            raise ValueError(f"half_duration must be >= 0 s, got {self.half_duration}")
        if not any(self.rtp):
            raise ValueError("the moment tensor is zero")

    @property
    def rtp(self) -> np.ndarray:
        """``[Mrr, Mtt, Mpp, Mrt, Mrp, Mtp]`` in dyne·cm."""
        return np.array([getattr(self, name) for name in _COMPONENTS])

    @property
    def tensor(self) -> np.ndarray:
        """Moment tensor in N·m, Aki & Richards' frame (x north, y east, z down)."""
        return rtp_to_ned(self.rtp / DYNE_CM_PER_NM)

    @property
    def scalar_moment(self) -> float:
        """Scalar moment ``||M|| / sqrt(2)``, N·m."""
        return scalar_moment(self.tensor)

    @property
    def moment_magnitude(self) -> float:
        """Moment magnitude of the tensor (IASPEI: ``(log10 M0[N·m] - 9.1) / 1.5``)."""
        return magnitude_from_moment(self.scalar_moment)


def simulation_origin_time(cmt: CMTSolution | Sequence[CMTSolution]) -> UTCDateTime:
    """The time that SPECFEM3D's seismograms count from.

    SPECFEM3D shifts the sources so that the earliest one starts the simulation (its
    ``get_cmt`` subtracts the smallest time shift from all of them), so the time column of the
    seismograms is zero at the (first) header's origin time plus the smallest time shift: the
    centroid time of a single source.

    Parameters
    ----------
    cmt
        The source(s) of the ``CMTSOLUTION`` file, in file order.

    Returns
    -------
    UTCDateTime
        The ``origin_time`` to give :func:`~dare_cli.ra.simulate.specfem.seismograms
        .read_seismograms`.
    """
    sources = [cmt] if isinstance(cmt, CMTSolution) else list(cmt)
    if not sources:
        raise ValueError("no source")
    return sources[0].origin_time + min(s.time_shift for s in sources)


# --- construction ---

def _event_name(event: Event | None, time: UTCDateTime) -> str:
    """The last part of the event's resource id, unless ObsPy made it up (a UUID)."""
    if event is not None and event.resource_id is not None:
        tail = re.split(r"[/=?&#:]", str(event.resource_id))[-1]
        name = re.sub(r"[^A-Za-z0-9_.-]", "", tail)
        if name and not _UUID.fullmatch(name):
            return name
    return time.strftime("%Y%m%d%H%M%S")


def _magnitude(event: Event, kinds: tuple[str, ...]) -> float | None:
    for magnitude in event.magnitudes:
        kind = (magnitude.magnitude_type or "").lower()
        if magnitude.mag is not None and any(kind.startswith(k) for k in kinds):
            return float(magnitude.mag)
    return None


def _region(event: Event) -> str:
    for description in event.event_descriptions:
        if description.type in ("region name", "Flinn-Engdahl region") and description.text:
            return " ".join(str(description.text).split())
    return ""


def _location(latitude: float, longitude: float, utm_zone: int | None, ellipsoid: str
              ) -> tuple[float, float]:
    """(latorUTM, longorUTM)."""
    if utm_zone is None:
        return latitude, longitude
    x, y = utm_from_geographic(longitude, latitude, utm_zone, ellipsoid=ellipsoid)
    return float(y), float(x)


def _from_tensor(tensor_ned: np.ndarray, **fields: object) -> CMTSolution:
    rtp = ned_to_rtp(tensor_ned) * DYNE_CM_PER_NM
    return CMTSolution(**fields, **dict(zip(_COMPONENTS, (float(v) for v in rtp),  # type: ignore[arg-type]
                                            strict=True)))


def cmtsolution_from_event(
    event: Event,
    *,
    event_name: str | None = None,
    utm_zone: int | None = None,
    ellipsoid: str = "WGS84",
    catalogue: str = "PDE",
) -> CMTSolution:
    """The ``CMTSOLUTION`` of a QuakeML event with a focal mechanism.

    * Header: the preferred origin (else the first) and the event's mb and Ms magnitudes
      (else its preferred magnitude for both); the region from the event's "region name" or
      "Flinn-Engdahl region" description.
    * Centroid: the moment tensor's derived origin if the event has it (time shift = its time
      minus the origin time), else the hypocentre with a time shift of 0.
    * Moment tensor: the preferred (else first) focal mechanism's tensor (N·m -> dyne·cm);
      without a tensor, the double couple of its first nodal plane with the moment tensor's
      scalar moment or, failing that, the moment of the event's Mw.
    * Half duration: half the duration of the moment tensor's source time function if given;
      otherwise the Global CMT scaling ``1.05e-8 * M0**(1/3)`` (M0 in dyne·cm, see
      :func:`dare_cli.ra.source.half_duration_from_moment`).

    Parameters
    ----------
    event
        ObsPy event (e.g. from QuakeML).
    event_name
        Event name; default: the last part of the event's resource id (unless it is a UUID
        made up by ObsPy), else the origin time as ``YYYYMMDDhhmmss``.
    utm_zone
        Give the centroid in UTM metres of this zone (``SUPPRESS_UTM_PROJECTION``).
    ellipsoid
        Ellipsoid of the UTM projection (SPECFEM3D uses WGS84).
    catalogue
        Catalogue code of the header line.

    Returns
    -------
    CMTSolution

    Raises
    ------
    ValueError
        No origin, no focal mechanism, or neither a tensor nor a nodal plane with a moment.
    """
    origin = event.preferred_origin() or (event.origins[0] if event.origins else None)
    if origin is None or origin.time is None or origin.latitude is None \
            or origin.longitude is None:
        raise ValueError("the event has no origin with time, latitude and longitude")
    mechanism = event.preferred_focal_mechanism() or (
        event.focal_mechanisms[0] if event.focal_mechanisms else None)
    if mechanism is None:
        raise ValueError("the event has no focal mechanism: use "
                         "cmtsolution_from_double_couple with the fault angles")
    mt = mechanism.moment_tensor
    tensor = tensor_from_event(event)
    if tensor is None:
        tensor = _nodal_plane_tensor(event, mechanism)
    m0 = float(mt.scalar_moment) if mt is not None and mt.scalar_moment else scalar_moment(tensor)

    centroid = _centroid(event, origin, mt)
    depth_m = centroid.depth if centroid.depth is not None else origin.depth
    if depth_m is None:
        raise ValueError("neither the centroid nor the hypocentre has a depth")
    time_shift = float(centroid.time - origin.time) if centroid.time is not None else 0.0
    half_duration = _half_duration(mt, m0)
    mb, ms = _header_magnitudes(event, m0)
    lat, lon = _location(float(centroid.latitude), float(centroid.longitude), utm_zone,
                         ellipsoid)
    return _from_tensor(
        tensor, catalogue=catalogue, origin_time=origin.time, latitude=origin.latitude,
        longitude=origin.longitude,
        depth_km=(origin.depth if origin.depth is not None else depth_m) / 1000.0,
        mb=mb, ms=ms, region=_region(event),
        event_name=event_name or _event_name(event, origin.time),
        time_shift=time_shift, half_duration=half_duration, latorUTM=lat, longorUTM=lon,
        depth=depth_m / 1000.0)


def _nodal_plane_tensor(event: Event, mechanism: FocalMechanism) -> np.ndarray:
    """The double couple of a mechanism's first nodal plane (N·m, NED).

    Its moment is the moment tensor's scalar moment or, failing that, that of the event's Mw.
    """
    mt = mechanism.moment_tensor
    planes = mechanism.nodal_planes
    plane = planes.nodal_plane_1 if planes is not None else None
    if plane is None or None in (plane.strike, plane.dip, plane.rake):
        raise ValueError("the focal mechanism has neither a moment tensor nor a nodal plane")
    m0 = mt.scalar_moment if mt is not None and mt.scalar_moment else None
    if m0 is None:
        mw = _magnitude(event, ("mw",))
        if mw is None:
            raise ValueError("the focal mechanism has a nodal plane but no scalar moment and"
                             " the event has no Mw")
        m0 = moment_from_magnitude(mw)
    return double_couple_tensor(plane.strike, plane.dip, plane.rake, float(m0))


def _centroid(event: Event, origin: Origin, mt: MomentTensor | None) -> Origin:
    """The moment tensor's derived origin, if the event has it, else ``origin``."""
    if mt is not None and mt.derived_origin_id is not None:
        return next((o for o in event.origins if o.resource_id == mt.derived_origin_id), origin)
    return origin


def _half_duration(mt: MomentTensor | None, m0: float) -> float:
    """Half the duration of the tensor's source time function, else the Global CMT scaling."""
    stf = mt.source_time_function if mt is not None else None
    if stf is not None and stf.duration:
        return float(stf.duration) / 2.0
    return half_duration_from_moment(m0)


def _header_magnitudes(event: Event, m0: float) -> tuple[float, float]:
    """The header's mb and Ms: the event's, else its preferred magnitude, else Mw of ``m0``."""
    fallback = event.preferred_magnitude() or (event.magnitudes[0] if event.magnitudes else None)
    default = float(fallback.mag) if fallback is not None and fallback.mag is not None \
        else magnitude_from_moment(m0)
    mb = _magnitude(event, ("mb",))
    ms = _magnitude(event, ("ms",))
    return default if mb is None else mb, default if ms is None else ms


def cmtsolution_from_double_couple(
    origin: Origin,
    strike: float,
    dip: float,
    rake: float,
    magnitude: float,
    *,
    half_duration: float | None = None,
    time_shift: float = 0.0,
    event_name: str | None = None,
    mb: float | None = None,
    ms: float | None = None,
    region: str = "",
    catalogue: str = "PDE",
    utm_zone: int | None = None,
    ellipsoid: str = "WGS84",
) -> CMTSolution:
    """The ``CMTSOLUTION`` of a double couple at a hypocentre.

    The tensor is :func:`dare_cli.ra.source.double_couple_tensor` (Aki & Richards box 4.4)
    for the scalar moment of ``magnitude`` (``M0 = 10**(1.5 Mw + 9.1)`` N·m), written in
    GCMT's r/t/p frame (see the module notes) in dyne·cm.

    Parameters
    ----------
    origin
        Hypocentre (time, latitude, longitude, depth in m); also the centroid.
    strike, dip, rake
        Fault-plane angles, degrees (Aki & Richards' conventions).
    magnitude
        Moment magnitude Mw.
    half_duration
        Half duration (s); default: the Global CMT scaling of the moment.
    time_shift
        Centroid time after the origin time, s.
    event_name
        Default: the origin time as ``YYYYMMDDhhmmss``.
    mb, ms
        Header magnitudes (default: ``magnitude``).
    region, catalogue
        Header region name and catalogue code.
    utm_zone, ellipsoid
        Give the centroid in UTM metres of this zone (``SUPPRESS_UTM_PROJECTION``).

    Returns
    -------
    CMTSolution
    """
    if origin.time is None or origin.latitude is None or origin.longitude is None \
            or origin.depth is None:
        raise ValueError("the origin needs a time, latitude, longitude and depth")
    m0 = moment_from_magnitude(magnitude)
    tensor = double_couple_tensor(strike, dip, rake, m0)
    lat, lon = _location(float(origin.latitude), float(origin.longitude), utm_zone, ellipsoid)
    return _from_tensor(
        tensor, catalogue=catalogue, origin_time=origin.time, latitude=origin.latitude,
        longitude=origin.longitude, depth_km=origin.depth / 1000.0,
        mb=magnitude if mb is None else mb, ms=magnitude if ms is None else ms, region=region,
        event_name=event_name or _event_name(None, origin.time), time_shift=time_shift,
        half_duration=half_duration_from_moment(m0) if half_duration is None
        else half_duration,
        latorUTM=lat, longorUTM=lon, depth=origin.depth / 1000.0)


# --- writing ---

def _header(cmt: CMTSolution) -> str:
    ns = cmt.origin_time.ns
    t = UTCDateTime(ns=(ns + 5_000_000) // 10_000_000 * 10_000_000)  # to 0.01 s
    second = t.second + t.microsecond / 1e6
    line = (f"{cmt.catalogue}{t.year:5d}{t.month:3d}{t.day:3d}{t.hour:3d}{t.minute:3d}"
            f"{second:6.2f}{cmt.latitude:9.4f}{cmt.longitude:10.4f}{cmt.depth_km:6.1f}"
            f"{cmt.mb:4.1f}{cmt.ms:4.1f} {cmt.region}")
    return line.rstrip()


def _moments(cmt: CMTSolution, common_exponent: bool) -> list[str]:
    labels = ("Mrr", "Mtt", "Mpp", "Mrt", "Mrp", "Mtp")
    values = cmt.rtp
    if not common_exponent:
        return [f"{label}:{value:19.6e}" for label, value in zip(labels, values, strict=True)]
    exponent = math.floor(math.log10(float(np.abs(values).max()))) + 1
    scale = 10.0 ** exponent
    return [f"{label}:{f'{value / scale:.6f}e{exponent:+03d}':>19s}"
            for label, value in zip(labels, values, strict=True)]


def format_cmtsolution(cmt: CMTSolution | Sequence[CMTSolution], *,
                       common_exponent: bool = True) -> str:
    """Text of a ``CMTSOLUTION`` file in SPECFEM's fixed layout (see the module notes).

    Parameters
    ----------
    cmt
        One source, or several (written one after the other, as SPECFEM reads them).
    common_exponent
        Write the six moment components with one shared exponent (SPECFEM's examples) or
        each with its own (GCMT).

    Returns
    -------
    str
    """
    sources = [cmt] if isinstance(cmt, CMTSolution) else list(cmt)
    if not sources:
        raise ValueError("no source to write")
    blocks = []
    for c in sources:
        blocks.append("\n".join([
            _header(c),
            f"event name:     {c.event_name}",
            f"time shift:{c.time_shift:12.4f}",
            f"half duration:{c.half_duration:9.4f}",
            f"latorUTM:{c.latorUTM:14.4f}",
            f"longorUTM:{c.longorUTM:13.4f}",
            f"depth:{c.depth:17.4f}",
            *_moments(c, common_exponent),
        ]) + "\n")
    return "".join(blocks)


def write_cmtsolution(cmt: CMTSolution | Sequence[CMTSolution], path: str | os.PathLike[str],
                      *, common_exponent: bool = True) -> Path:
    """Write a ``CMTSOLUTION`` file atomically (:func:`format_cmtsolution`); return the path."""
    return write_atomic(path, format_cmtsolution(cmt, common_exponent=common_exponent))


# --- reading ---

def _real(text: str, source: str, line: int, label: str) -> float:
    token = text.split()[0] if text.split() else ""
    try:
        return float(token.replace("d", "e").replace("D", "e"))
    except ValueError:
        raise SpecfemFileError(source, f"{label}: expected a number, found {text.strip()!r}",
                               line) from None


def _parse_header(text: str, source: str, line: int) -> dict[str, object]:
    match = _PDE.match(text)
    if match is None:
        raise SpecfemFileError(source, "expected the header line 'CAT YYYY MM DD hh mm ss.ss "
                                       f"lat lon depth mb Ms region', found {text.strip()!r}",
                               line)
    try:
        year, month, day, hour, minute = (int(match[k]) for k in
                                          ("year", "month", "day", "hour", "minute"))
        second = float(match["second"])
        if not (1 <= month <= 12 and 1 <= day <= 31 and 0 <= hour <= 24 and 0 <= minute <= 59
                and 0 <= second < 60):
            raise ValueError(f"{year}-{month}-{day} {hour}:{minute}:{second}")
        time = UTCDateTime(year, month, day) + hour * 3600 + minute * 60 + second
    except (TypeError, ValueError) as exc:
        raise SpecfemFileError(source, f"invalid origin time in the header line ({exc})",
                               line) from None
    values: dict[str, object] = {"catalogue": match["catalogue"] or "PDE", "origin_time": time,
                                 "region": match["region"] or ""}
    for key, name in (("latitude", "latitude"), ("longitude", "longitude"),
                      ("depth", "depth_km"), ("mb", "mb"), ("ms", "ms")):
        values[name] = _real(match[key], source, line, f"header {key}")
    return values


def parse_cmtsolutions(text: str, *, source: str = "CMTSOLUTION") -> list[CMTSolution]:
    """Sources of the text of a ``CMTSOLUTION`` file (see :func:`read_cmtsolutions`)."""
    lines = text.splitlines()
    sources = []
    i = 0
    names = ("event_name", "time_shift", "half_duration", "latorUTM", "longorUTM", "depth",
             *_COMPONENTS)
    while True:
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines):
            break
        header_line = i + 1
        values = _parse_header(lines[i], source, header_line)
        for offset, (name, labels) in enumerate(zip(names, _LABELS, strict=True), start=1):
            number = i + offset + 1
            if i + offset >= len(lines):
                raise SpecfemFileError(source, f"the source starting on line {header_line} "
                                               f"ends before its {labels[0]!r} line", number)
            label, colon, value = lines[i + offset].partition(":")
            if not colon or label.strip().lower() not in [lab.lower() for lab in labels]:
                expected = " or ".join(f"'{lab}:'" for lab in labels)
                raise SpecfemFileError(source, f"expected a line starting with {expected}, "
                                               f"found {lines[i + offset].strip()!r}", number)
            values[name] = (value.strip() if name == "event_name"
                            else _real(value, source, number, label.strip()))
        try:
            sources.append(CMTSolution(**values))  # type: ignore[arg-type]
        except ValueError as exc:
            raise SpecfemFileError(source, f"source starting on line {header_line}: {exc}"
                                   ) from None
        i += 13
    if not sources:
        raise SpecfemFileError(source, "no source in the file")
    return sources


def read_cmtsolutions(path: str | os.PathLike[str]) -> list[CMTSolution]:
    """Read every source of a ``CMTSOLUTION`` file.

    Accepts SPECFEM's free format: any catalogue code and spacing on the header line, any
    spacing after the colons, Fortran ``d`` exponents (``1.d23``), ``latitude:``/
    ``longitude:`` for ``latorUTM:``/``longorUTM:``, blank lines between sources.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    list of CMTSolution

    Raises
    ------
    SpecfemFileError
        A malformed line (the message names the file, the line and what was expected); an
        external source time function file name (``USE_EXTERNAL_SOURCE_FILE``) is not
        supported.
    """
    return parse_cmtsolutions(Path(path).read_text(), source=os.fspath(path))


def read_cmtsolution(path: str | os.PathLike[str]) -> CMTSolution:
    """Read a ``CMTSOLUTION`` file with one source (see :func:`read_cmtsolutions`).

    Raises
    ------
    SpecfemFileError
        A malformed file, or one with several sources.
    """
    sources = read_cmtsolutions(path)
    if len(sources) != 1:
        raise SpecfemFileError(path, f"holds {len(sources)} sources; use read_cmtsolutions")
    return sources[0]
