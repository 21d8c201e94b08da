"""UTM as SPECFEM3D does it.

SPECFEM3D projects longitude/latitude with the WGS84 ellipsoid (checked against the UTM
coordinates SPECFEM prints: to 1 mm), zone ``UTM_PROJECTION_ZONE`` (negative for the southern
hemisphere); :func:`utm_from_geographic` does the same with pyproj.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from pyproj import CRS, Transformer

__all__ = ["geographic_from_utm", "utm_from_geographic", "utm_zone_of"]


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
