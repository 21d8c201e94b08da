"""SPECFEM3D's ``STATIONS`` file: one receiver per line.

Each line holds ``STATION NETWORK LATITUDE LONGITUDE ELEVATION BURIAL``, read by SPECFEM in
free format: latitude and longitude in degrees, or the UTM (or Cartesian) northing ``y`` and
easting ``x`` in metres when the ``Par_file`` sets ``SUPPRESS_UTM_PROJECTION``; elevation and
burial (depth of the sensor below the surface; with ``USE_SOURCES_RECEIVERS_Z`` the height z
instead) in metres. SPECFEM reads station names of up to 32 characters and network codes of
up to 8.

:func:`format_stations` writes SPECFEM's example layout (``STA NET`` then four ``%16.6f``
columns), e.g.::

    24851 CE       34.070000     -118.346000        0.000000        0.000000
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from obspy import Inventory, UTCDateTime

from dare_cli.ra.simulate.specfem.errors import SpecfemFileError
from dare_cli.ra.simulate.specfem.utm import utm_from_geographic
from engine.files import write_atomic

__all__ = [
    "MAX_NETWORK_LENGTH",
    "MAX_STATION_LENGTH",
    "StationLine",
    "format_stations",
    "parse_stations",
    "read_stations",
    "stations_from_inventory",
    "write_stations",
]

#: Longest station name SPECFEM3D reads (``MAX_LENGTH_STATION_NAME``).
MAX_STATION_LENGTH = 32
#: Longest network code SPECFEM3D reads (``MAX_LENGTH_NETWORK_NAME``).
MAX_NETWORK_LENGTH = 8


@dataclass(frozen=True)
class StationLine:
    """One line of a ``STATIONS`` file.

    Attributes
    ----------
    station, network
        Codes (no blanks; at most 32 and 8 characters).
    latitude, longitude
        Degrees, or UTM/Cartesian ``y`` (northing) and ``x`` (easting) in m.
    elevation
        Station elevation, m (informative for SPECFEM3D Cartesian).
    burial
        Sensor depth below the surface, m (or the height z with ``USE_SOURCES_RECEIVERS_Z``).
    """

    station: str
    network: str
    latitude: float
    longitude: float
    elevation: float = 0.0
    burial: float = 0.0

    def __post_init__(self) -> None:
        for name, longest in (("station", MAX_STATION_LENGTH), ("network", MAX_NETWORK_LENGTH)):
            code = getattr(self, name)
            if not isinstance(code, str) or not code or any(c.isspace() for c in code):
                raise ValueError(f"{name} code must be non-empty without blanks, got {code!r}")
            if len(code) > longest:
                raise ValueError(f"{name} code {code!r} is longer than the {longest} "
                                 "characters SPECFEM3D reads")
        for name in ("latitude", "longitude", "elevation", "burial"):
            value = getattr(self, name)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{self.network}.{self.station}: {name} must be a number, got "
                                 f"{value!r}") from None
            if not math.isfinite(number):
                raise ValueError(f"{self.network}.{self.station}: {name} must be finite, got "
                                 f"{value!r}")
            object.__setattr__(self, name, number)

    @property
    def id(self) -> str:
        """``NET.STA``."""
        return f"{self.network}.{self.station}"


def stations_from_inventory(
    inventory: Inventory,
    *,
    utm_zone: int | None = None,
    ellipsoid: str = "WGS84",
    time: UTCDateTime | None = None,
) -> list[StationLine]:
    """``STATIONS`` lines of the stations of a StationXML inventory.

    One line per network and station code, in inventory order (the first epoch wins, or the
    epoch open at ``time``). Elevation is the station's; burial is the depth of its channels
    (the shallowest if they differ; 0 without channels).

    Parameters
    ----------
    inventory
        ObsPy inventory (e.g. from ``read_inventory``).
    utm_zone
        Write UTM coordinates of this zone (for ``SUPPRESS_UTM_PROJECTION = .true.``): the
        northing in the latitude column, the easting in the longitude column, in m.
    ellipsoid
        Ellipsoid of the UTM projection (SPECFEM3D uses WGS84).
    time
        Keep only station epochs open at this time.

    Returns
    -------
    list of StationLine
    """
    lines: list[StationLine] = []
    seen = set()
    for network in inventory:
        for station in network:
            key = (network.code, station.code)
            if key in seen:
                continue
            if time is not None and not _open_at(station, time):
                continue
            depths = [float(c.depth) for c in station.channels if c.depth is not None]
            lines.append(StationLine(
                station=station.code, network=network.code, latitude=station.latitude,
                longitude=station.longitude, elevation=station.elevation or 0.0,
                burial=min(depths) if depths else 0.0))
            seen.add(key)
    if utm_zone is not None and lines:
        x, y = utm_from_geographic(np.array([s.longitude for s in lines]),
                                   np.array([s.latitude for s in lines]), utm_zone,
                                   ellipsoid=ellipsoid)
        lines = [StationLine(s.station, s.network, float(yi), float(xi), s.elevation, s.burial)
                 for s, xi, yi in zip(lines, x, y, strict=True)]
    return lines


def _open_at(station: object, time: UTCDateTime) -> bool:
    start = getattr(station, "start_date", None)
    end = getattr(station, "end_date", None)
    return (start is None or start <= time) and (end is None or time <= end)


def format_stations(stations: Iterable[StationLine]) -> str:
    """Text of a ``STATIONS`` file (SPECFEM's example layout, six decimals).

    Parameters
    ----------
    stations
        The lines.

    Returns
    -------
    str
    """
    return "".join(f"{s.station} {s.network}{s.latitude:16.6f}{s.longitude:16.6f}"
                   f"{s.elevation:16.6f}{s.burial:16.6f}\n" for s in stations)


def write_stations(stations: Iterable[StationLine], path: str | os.PathLike[str]) -> Path:
    """Write a ``STATIONS`` file atomically (see :func:`format_stations`); return its path."""
    return write_atomic(path, format_stations(stations))


def parse_stations(text: str, *, source: str = "STATIONS") -> list[StationLine]:
    """Stations of the text of a ``STATIONS`` file (see :func:`read_stations`)."""
    stations = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 6:
            raise SpecfemFileError(source, "expected 6 fields (station network latitude "
                                           f"longitude elevation burial), found {len(fields)}",
                                   number)
        values = []
        for name, text in zip(("latitude", "longitude", "elevation", "burial"), fields[2:],
                              strict=True):
            try:
                values.append(float(text.replace("d", "e").replace("D", "e")))
            except ValueError:
                raise SpecfemFileError(source, f"{fields[1]}.{fields[0]}: {name} must be a "
                                               f"number, found {text!r}", number) from None
        try:
            stations.append(StationLine(fields[0], fields[1], *values))
        except ValueError as exc:
            raise SpecfemFileError(source, str(exc), number) from None
    return stations


def read_stations(path: str | os.PathLike[str]) -> list[StationLine]:
    """Read a ``STATIONS`` file (any whitespace layout; blank and ``#`` lines skipped).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    list of StationLine

    Raises
    ------
    SpecfemFileError
        A line without six fields or with a bad value (the message names file and line).
    """
    return parse_stations(Path(path).read_text(), source=os.fspath(path))

