"""The offline basemap shared by the seismology and climate maps: Natural Earth layers, clipped.

Coastlines, country and state borders and lakes are Natural Earth 1:50m layers shipped with the
package (``dare_cli/ra/basemap/<layer>.geojson.gz``, see its SOURCE.md); they are read once per
process and clipped to the box a map shows. Nothing here downloads: cartopy's own features,
which fetch their data on first use, are never called.
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources
from typing import Any

import numpy as np
import shapely

__all__ = ["BASEMAP_LAYERS", "basemap_geometries", "clipped_layer", "draw_basemap"]

#: Shipped map layers (``basemap/<name>.geojson.gz``) and how they are drawn, bottom to top.
BASEMAP_LAYERS: dict[str, dict[str, Any]] = {
    "lakes": {"facecolor": "#d4e8f4", "edgecolor": "#5b8db3", "linewidth": 0.4},
    "states": {"facecolor": "none", "edgecolor": "#707070", "linewidth": 0.6,
               "linestyle": (0, (4, 2))},
    "borders": {"facecolor": "none", "edgecolor": "#3c3c3c", "linewidth": 0.9},
    "coastline": {"facecolor": "none", "edgecolor": "#2b5d8a", "linewidth": 0.7},
}
#: The package whose ``basemap/`` folder holds the layers' files.
BASEMAP_PACKAGE = "dare_cli.ra"


@functools.cache
def basemap_geometries(layer: str) -> tuple[np.ndarray, np.ndarray]:
    """Geometries of a shipped layer (lon/lat degrees) and their bounds, loaded once per process.

    Returns
    -------
    geometries, bounds
        Arrays of shapely geometries and of their ``(xmin, ymin, xmax, ymax)``.

    Raises
    ------
    ValueError
        ``layer`` is not one of :data:`BASEMAP_LAYERS` (the message lists them).
    """
    if layer not in BASEMAP_LAYERS:
        raise ValueError(f"unknown basemap layer {layer!r}; known: {sorted(BASEMAP_LAYERS)}")
    source = resources.files(BASEMAP_PACKAGE).joinpath("basemap", f"{layer}.geojson.gz")
    collection = shapely.from_geojson(gzip.decompress(source.read_bytes()))
    geometries = shapely.get_parts(collection)
    return geometries, shapely.bounds(geometries)


def clipped_layer(layer: str, box: tuple[float, float, float, float]) -> list[Any]:
    """Geometries of a layer inside a lon/lat box ``(west, south, east, north)``, in degrees.

    Longitudes of the box beyond ±180 are wrapped: the parts found across the antimeridian are
    shifted by 360° so that they lie inside the box as given.
    """
    geometries, bounds = basemap_geometries(layer)
    west, south, east, north = box
    clipped = []
    for shift in (-360.0, 0.0, 360.0):
        lo, hi = max(west - shift, -180.0), min(east - shift, 180.0)
        if lo >= hi:
            continue
        near = ((bounds[:, 0] <= hi) & (bounds[:, 2] >= lo)
                & (bounds[:, 1] <= north) & (bounds[:, 3] >= south))
        parts = shapely.clip_by_rect(geometries[near], lo, south, hi, north)
        parts = parts[~shapely.is_empty(parts)]
        if shift:
            parts = shapely.transform(parts, lambda xy, s=shift: xy + np.array([s, 0.0]))
        clipped.extend(parts)
    return clipped


def draw_basemap(ax: Any, box: tuple[float, float, float, float], crs: Any,
                 first_zorder: int = 1) -> None:
    """Draw every layer inside ``box`` on a cartopy ``GeoAxes``, bottom to top.

    Parameters
    ----------
    ax
        The map's ``GeoAxes``.
    box
        ``(west, south, east, north)`` in degrees (see :func:`clipped_layer`).
    crs
        The coordinate system of the layers' lon/lat degrees (``cartopy.crs.PlateCarree()``).
    first_zorder
        ``zorder`` of the lowest layer; each next layer is one higher.
    """
    for zorder, (layer, style) in enumerate(BASEMAP_LAYERS.items(), start=first_zorder):
        geometries = clipped_layer(layer, box)
        if geometries:
            ax.add_geometries(geometries, crs=crs, zorder=zorder, **style)
