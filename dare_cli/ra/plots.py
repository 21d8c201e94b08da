"""Plots of the Rapid Assessment: maps of observed PGA and of misfits, GMPE residuals, waveforms.

Every figure is a :class:`matplotlib.figure.Figure` drawn on its own
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`: no pyplot, no global backend or
figure registry, so plotting works the same in the main process and in worker processes
(fork or spawn) and leaves nothing open. PNGs (200 dpi) are rendered in memory and written
atomically.

Figures:

- :func:`plot_pga_map`: stations coloured by observed PGA (RotD50 of the record, or the
  larger horizontal component), log colour scale in %g;
- :func:`plot_misfit_map`: stations coloured by log10(synthetic / observed), diverging scale;
- :func:`plot_residuals`: log10 residuals of observed and synthetic motions against the
  ground-motion model versus distance, one panel per metric, with the model's ±1 sigma;
- :func:`plot_waveforms`: observed and synthetic traces of one station in the band they share,
  one panel per component.

Maps are drawn offline: coastlines, country and state borders and lakes come from Natural
Earth 1:50m layers shipped in ``dare_cli/ra/basemap/`` (see its SOURCE.md), drawn by
:func:`dare_cli.maps.draw_basemap`; nothing here calls cartopy's downloading features. A map
is framed on its stations and epicentre with a margin. Station codes are placed by
:func:`place_labels` (greedy, deterministic): a code goes beside its marker where it overlaps no
other code, marker, the epicentre or the legend, and is left out (and counted on the figure)
where there is no room.

The rows, misfit rows, residual rows and event are those of :mod:`dare_cli.ra.outputs`.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import CenteredNorm, LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Patch
from matplotlib.text import Annotation
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator
from matplotlib.transforms import Bbox
from obspy import Stream, Trace, UTCDateTime

from dare_cli.maps import draw_basemap
from dare_cli.ra.outputs import (
    STANDARD_GRAVITY,
    EventInfo,
    StationMotion,
    atomic_write,
    canonical_metric,
    channel_role,
    psa_period,
    station_peaks,
)

__all__ = [
    "DPI",
    "LABEL_GID",
    "QUANTITY_UNITS",
    "metric_label",
    "misfit_map_figure",
    "pga_map_figure",
    "place_labels",
    "plot_misfit_map",
    "plot_pga_map",
    "plot_residuals",
    "plot_waveforms",
    "residuals_figure",
    "waveforms_figure",
]

#: Units of the quantities of :func:`plot_waveforms`.
QUANTITY_UNITS = {"ACC": "m/s²", "VEL": "m/s", "DISP": "m"}
#: Resolution of every PNG (dots per inch).
DPI = 200
#: ``gid`` of the station-code labels on the maps and residual plots (to find them in tests).
LABEL_GID = "station-label"
_QUANTITY_NAMES = {"ACC": "acceleration", "VEL": "velocity", "DISP": "displacement"}
_COMPONENT_ORDER = "ZNERT123H"
_BACKGROUND = "#f7f5f0"
_OBSERVED_COLOUR = "black"
_SYNTHETIC_COLOUR = "#d62728"
_HALO = [patheffects.withStroke(linewidth=2.2, foreground="white")]
_TIMES, _SIGMA, _DASH = "\u00d7", "\u03c3", "\u2013"  # typographic signs


# -- map frame -----------------------------------------------------------------------------------
def _unwrap(longitudes: Sequence[float], centre: float) -> np.ndarray:
    """Longitudes within ±180° of ``centre`` (continuous across the antimeridian)."""
    return centre + (np.asarray(longitudes, dtype=float) - centre + 180.0) % 360.0 - 180.0


def _frame_extent(xy: np.ndarray, min_radius_km: float | None
                  ) -> tuple[float, float, float, float]:
    """``(west, east, south, north)`` (projected m) holding the points with a margin.

    The points are the stations and the epicentre (the origin of the projection). The margin
    is 12 % of the larger side plus 4 km, so that codes fit beside the outer markers; the frame
    is at least ``2 * min_radius_km`` wide and high around the epicentre when given (at least
    20 km across otherwise), and no narrower than 3/4 of its height nor flatter than 3/4 of its
    width.
    """
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    margin = 0.12 * max(x1 - x0, y1 - y0) + 4e3
    west, east, south, north = x0 - margin, x1 + margin, y0 - margin, y1 + margin
    radius = 1e3 * min_radius_km if min_radius_km is not None else 0.0
    west, east = min(west, -radius), max(east, radius)
    south, north = min(south, -radius), max(north, radius)
    for low, high in ((0, 1), (2, 3)):  # at least 20 km across
        box = [west, east, south, north]
        grow = max(0.0, 20e3 - (box[high] - box[low])) / 2
        box[low] -= grow
        box[high] += grow
        west, east, south, north = box
    widen = max(0.0, 0.75 * (north - south) - (east - west)) / 2
    heighten = max(0.0, 0.75 * (east - west) - (north - south)) / 2
    return (west - widen, east + widen, south - heighten, north + heighten)


def _new_map(event: EventInfo, longitudes: Sequence[float], latitudes: Sequence[float],
             title: str, min_radius_km: float | None) -> tuple[Figure, Any, Any]:
    """A figure with a GeoAxes framed on the epicentre and stations, basemap drawn.

    The projection is azimuthal equidistant about the epicentre, so that circles about it are
    circles of epicentral distance.
    """
    import cartopy.crs as ccrs  # imported here: heavy, and only the maps need it
    from cartopy.mpl.ticker import LatitudeLocator, LongitudeLocator

    geodetic = ccrs.PlateCarree()
    projection = ccrs.AzimuthalEquidistant(central_longitude=event.longitude,
                                           central_latitude=event.latitude)
    lons = np.append(_unwrap(longitudes, event.longitude), event.longitude)
    lats = np.append(np.asarray(latitudes, dtype=float), event.latitude)
    extent = _frame_extent(projection.transform_points(geodetic, lons, lats)[:, :2],
                           min_radius_km)

    width = 7.2
    height = min(8.4, max(5.0, width * (extent[3] - extent[2]) / (extent[1] - extent[0])))
    figure = Figure(figsize=(width + 1.6, height + 0.9), dpi=DPI)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1, projection=projection)
    ax.set_extent(extent, crs=projection)
    ax.set_facecolor(_BACKGROUND)

    # the lon/lat box that holds the map frame, from points along its edge
    edge = np.linspace(0.0, 1.0, 25)
    fx = np.concatenate([extent[0] + edge * (extent[1] - extent[0]), np.full(25, extent[1]),
                         extent[1] - edge * (extent[1] - extent[0]), np.full(25, extent[0])])
    fy = np.concatenate([np.full(25, extent[2]), extent[2] + edge * (extent[3] - extent[2]),
                         np.full(25, extent[3]), extent[3] - edge * (extent[3] - extent[2])])
    frame = geodetic.transform_points(projection, fx, fy)
    frame_lons = _unwrap(frame[:, 0], event.longitude)
    box = (float(frame_lons.min()) - 1.0, max(float(frame[:, 1].min()) - 1.0, -90.0),
           float(frame_lons.max()) + 1.0, min(float(frame[:, 1].max()) + 1.0, 90.0))
    draw_basemap(ax, box, geodetic)

    grid = ax.gridlines(crs=geodetic, draw_labels=True, rotate_labels=False, linewidth=0.3,
                        color="#909090", alpha=0.7, linestyle="--")
    grid.top_labels = False
    grid.right_labels = False
    grid.xlocator = LongitudeLocator(nbins=5)  # longitude labels are wider than latitudes
    grid.ylocator = LatitudeLocator(nbins=6)
    grid.xlabel_style = grid.ylabel_style = {"size": 8}
    ax.set_title(title, fontsize=10)
    return figure, ax, projection


def _distance_rings(ax: Any, extent: Sequence[float]) -> list[Any]:
    """Circles of epicentral distance (the projection is equidistant about the epicentre).

    Returns the ring labels, placed where their ring crosses the frame's inside.
    """
    west, east, south, north = extent
    reach_km = max(math.hypot(x, y) for x in (west, east) for y in (south, north)) / 1e3
    step = next((s for s in (5, 10, 20, 25, 50, 100, 200, 500, 1000) if reach_km / s <= 5), 2000)
    labels = []
    inset_x, inset_y = 0.04 * (east - west), 0.04 * (north - south)
    for radius in np.arange(step, reach_km + 1e-9, step):
        metres = radius * 1e3
        ax.add_patch(Circle((0.0, 0.0), metres, fill=False, edgecolor="#7a7a7a",
                            linewidth=0.6, linestyle=":", zorder=6))
        for angle in (250.0, 290.0, 230.0, 310.0, 200.0, 340.0, 160.0, 20.0, 110.0, 70.0):
            x = metres * math.cos(math.radians(angle))
            y = metres * math.sin(math.radians(angle))
            if west + inset_x < x < east - inset_x and south + inset_y < y < north - inset_y:
                labels.append(ax.text(x, y, f"{radius:g} km", fontsize=6.5, color="#5a5a5a",
                                      ha="center", va="center", zorder=6,
                                      path_effects=_HALO))
                break
    return labels


def _projected(projection: Any, event: EventInfo, longitudes: Sequence[float],
               latitudes: Sequence[float]) -> np.ndarray:
    import cartopy.crs as ccrs

    if not len(longitudes):
        return np.empty((0, 2))
    lons = _unwrap(longitudes, event.longitude)
    return projection.transform_points(ccrs.PlateCarree(), lons,
                                       np.asarray(latitudes, dtype=float))[:, :2]


def _epicentre(ax: Any) -> Any:
    (star,) = ax.plot(0.0, 0.0, marker="*", markersize=16, color="black",
                      markeredgecolor="white", markeredgewidth=0.8, linestyle="none",
                      zorder=10, label="epicentre")
    return star


_MARKER_SIZE = 80.0  # points², the stations' triangles


def _stations(ax: Any, xy: np.ndarray, values: Sequence[float | None], **scatter: Any) -> Any:
    """Stations coloured by value (grey when missing); the mappable."""
    known = np.array([v is not None for v in values], dtype=bool)
    mappable = ax.scatter(xy[known, 0], xy[known, 1],
                          c=np.array([v for v in values if v is not None], dtype=float),
                          s=_MARKER_SIZE, edgecolors="black", linewidths=0.7, zorder=9,
                          marker="^", **scatter)
    if (~known).any():
        ax.scatter(xy[~known, 0], xy[~known, 1], s=_MARKER_SIZE * 0.8, facecolors="#bdbdbd",
                   edgecolors="black", linewidths=0.7, marker="^", zorder=8,
                   label="no value")
    return mappable


# -- labels --------------------------------------------------------------------------------------
def _alignment(dx: float, dy: float) -> dict[str, str]:
    return {"ha": "left" if dx > 0.38 else "right" if dx < -0.38 else "center",
            "va": "bottom" if dy > 0.38 else "top" if dy < -0.38 else "center"}


def place_labels(
    ax: Axes,
    points: np.ndarray,
    texts: Sequence[str],
    *,
    obstacles: Iterable[Any] = (),
    marker_radius: float = 5.0,
    fontsize: float = 7.5,
    colours: Sequence[str] | None = None,
) -> tuple[list[Annotation], int]:
    """Write labels beside points so that no two labels overlap; drop those with no room.

    Labels are placed one by one, the most crowded points first. Each tries positions around
    its point, nearest first and starting on the side away from its neighbours, at distances
    from 4 to 40 points (to 16 points when there are more than 50 points); it takes the first
    one inside the axes that overlaps neither a placed label, nor a point's marker, nor an
    obstacle. A label placed farther than 12 points from its point gets a thin leader line.
    A label that fits nowhere is left out.

    Call it once the layout is final (after colour bars and legends).

    Parameters
    ----------
    ax
        The axes (any projection) of the points.
    points
        ``(n, 2)`` data coordinates of the points.
    texts
        One label per point.
    obstacles
        Artists (legend, epicentre, ring labels...) or :class:`~matplotlib.transforms.Bbox`
        (display coordinates) that labels must not cover.
    marker_radius
        Half-size of the markers, points.
    fontsize
        Font size of the labels, points.
    colours
        Text colour per label (default black).

    Returns
    -------
    labels, omitted
        The placed labels (their ``gid`` is :data:`LABEL_GID`) and how many were left out.
    """
    renderer, scale = _renderer_and_scale(ax)
    frame = ax.get_window_extent(renderer)
    pixels = ax.transData.transform(np.asarray(points, dtype=float).reshape(-1, 2))
    if not len(pixels):
        return [], 0
    taken = _marker_and_obstacle_boxes(pixels, marker_radius * scale, obstacles, renderer)
    gaps = np.hypot(*(pixels[:, None, :] - pixels[None, :, :]).transpose(2, 0, 1))
    near = 45.0 * scale  # pixels: points closer than this crowd each other
    crowding = ((gaps < near).sum(axis=1) - 1).tolist()
    # where points crowd by the dozen, no long leader lines: they would hide the map
    reach = ((4.0, 7.0, 11.0, 16.0, 23.0, 31.0, 40.0) if len(pixels) <= 50
             else (4.0, 7.0, 11.0, 16.0))
    placed: list[Annotation] = []
    omitted = 0
    for index in sorted(range(len(pixels)), key=lambda i: (-crowding[i], texts[i])):
        px, py = pixels[index]
        directions = _label_directions(pixels, gaps, index, near, frame)
        label = _label(ax, texts[index], points[index], fontsize,
                       colours[index] if colours else "black")
        size = label.get_window_extent(renderer)
        found = _free_spot((px, py), (size.width, size.height), directions, reach,
                           marker_radius, scale, frame, taken)
        if found is None:
            label.remove()
            omitted += 1
            continue
        distance, offset, align, box = found
        label.xyann = offset
        label.set(**align)
        taken = np.vstack([taken, np.array([box])])
        placed.append(label)
        if distance > 12.0:
            _leader_line(ax, points[index], (px, py), box, scale, marker_radius)
    return placed, omitted


def _label(ax: Axes, text: str, point: np.ndarray, fontsize: float, colour: str) -> Annotation:
    """A station-code label at its point (:data:`LABEL_GID`), to be moved by its offset."""
    return ax.annotate(text, tuple(point), xytext=(0.0, 0.0), textcoords="offset points",
                       fontsize=fontsize, zorder=11, color=colour, path_effects=_HALO,
                       gid=LABEL_GID, ha="left", va="bottom")


def _leader_line(ax: Axes, point: np.ndarray, pixel: tuple[float, float],
                 box: tuple[float, float, float, float], scale: float,
                 marker_radius: float) -> None:
    """A thin line from the marker at ``point`` to the nearest edge of its label's ``box``."""
    px, py = pixel
    pad = 1.5 * scale
    ex = min(max(px, box[0] + pad), box[2] - pad)
    ey = min(max(py, box[1] + pad), box[3] - pad)
    ax.annotate("", tuple(point), xytext=((ex - px) / scale, (ey - py) / scale),
                textcoords="offset points", zorder=10,
                arrowprops={"arrowstyle": "-", "color": "#505050", "linewidth": 0.5,
                            "shrinkA": 0.0, "shrinkB": marker_radius})


def _renderer_and_scale(ax: Axes) -> tuple[Any, float]:
    """The renderer of the axes' figure, its layout applied, and its pixels per point."""
    figure = ax.get_figure()
    assert isinstance(figure, Figure)
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(
        figure)
    renderer = canvas.get_renderer()
    if hasattr(ax, "apply_aspect"):
        ax.apply_aspect()
    return renderer, figure.dpi / 72.0


def _marker_and_obstacle_boxes(pixels: np.ndarray, radius: float, obstacles: Iterable[Any],
                               renderer: Any) -> np.ndarray:
    """``(n, 4)`` display boxes ``x0, y0, x1, y1`` that labels must not cover."""
    boxes = [np.column_stack([pixels - radius, pixels + radius])]
    for obstacle in obstacles:
        box = obstacle if isinstance(obstacle, Bbox) else obstacle.get_window_extent(renderer)
        boxes.append(np.array([[box.x0, box.y0, box.x1, box.y1]]))
    return np.vstack(boxes)


_COMPASS = np.column_stack([np.cos(np.radians(np.arange(0.0, 360.0, 22.5))),
                            np.sin(np.radians(np.arange(0.0, 360.0, 22.5)))])


def _label_directions(pixels: np.ndarray, gaps: np.ndarray, index: int, near: float,
                      frame: Bbox) -> list[list[float]]:
    """Unit directions to try for a label: away from its neighbours first, then around.

    Without neighbours within ``3 * near`` pixels, away from the centre of the axes.
    """
    px, py = pixels[index]
    push = np.zeros(2)
    for other in np.flatnonzero((gaps[index] > 0) & (gaps[index] < 3 * near)):
        push += (pixels[index] - pixels[other]) / gaps[index, other] ** 2
    if not push.any():  # away from the centre of the axes
        push = np.array([px - (frame.x0 + frame.x1) / 2, py - (frame.y0 + frame.y1) / 2])
    preferred = push / (np.hypot(*push) or 1.0)
    if not preferred.any():
        preferred = np.array([1.0, 0.0])
    directions = sorted(_COMPASS.tolist(),
                        key=lambda d: -(d[0] * preferred[0] + d[1] * preferred[1]))
    directions.insert(0, preferred.tolist())
    return directions


def _free_spot(pixel: tuple[float, float], size: tuple[float, float],
               directions: Sequence[Sequence[float]], reach: Sequence[float],
               marker_radius: float, scale: float, frame: Bbox, taken: np.ndarray
               ) -> tuple[float, tuple[float, float], dict[str, str],
                          tuple[float, float, float, float]] | None:
    """The first place for a label inside ``frame`` that covers no ``taken`` box.

    Returns
    -------
    (distance, offset, alignment, box) or None
        Distance (points) and offset (points) from the point, the text alignment, and the
        label's padded display box; ``None`` when the label fits nowhere.
    """
    (px, py), (width, height) = pixel, size
    pad = 1.5 * scale
    for distance in reach:
        extra = marker_radius if distance < 8 else 0.0
        for dx, dy in directions:
            offset = ((distance + extra) * dx, (distance + extra) * dy)
            align = _alignment(dx, dy)
            x = px + offset[0] * scale
            y = py + offset[1] * scale
            x0 = x if align["ha"] == "left" else x - width if align["ha"] == "right" \
                else x - width / 2
            y0 = y if align["va"] == "bottom" else y - height if align["va"] == "top" \
                else y - height / 2
            box = (x0 - pad, y0 - pad, x0 + width + pad, y0 + height + pad)
            if not (frame.x0 <= box[0] and box[2] <= frame.x1
                    and frame.y0 <= box[1] and box[3] <= frame.y1):
                continue
            if not np.any((taken[:, 0] < box[2]) & (taken[:, 2] > box[0])
                          & (taken[:, 1] < box[3]) & (taken[:, 3] > box[1])):
                return distance, offset, align, box
    return None


def _note_omitted(ax: Axes, omitted: int) -> None:
    if omitted:
        ax.text(0.99, 0.01, f"{omitted} code{'s' if omitted > 1 else ''} left out "
                "where stations crowd", transform=ax.transAxes, ha="right", va="bottom",
                fontsize=6.5, color="#404040", zorder=12, path_effects=_HALO)


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.12)
    figure.clear()
    return atomic_write(path, buffer.getvalue())


def _title(event: EventInfo, what: str) -> str:
    magnitude = "" if event.magnitude is None else f"  M{event.magnitude:.1f}"
    return f"{event.id}{magnitude}  {event.time[:19].replace('T', ' ')} UTC\n{what}"


def metric_label(metric: str) -> str:
    """How a metric is written on figures: ``"PGA"``, ``"PSA(1 s)"``."""
    period = psa_period(metric)
    return metric.upper() if period is None else f"PSA({period:g} s)"


@dataclass(frozen=True, slots=True)
class _Station:
    """``NET.STA``, code and coordinates (degrees) of a station on a map."""

    station: str
    code: str
    latitude: float
    longitude: float


# -- maps ----------------------------------------------------------------------------------------
def _nice_log_range(low: float, high: float) -> tuple[float, float, list[float]]:
    """Colour-bar limits on the 1-2-5 sequence around ``[low, high]``, and its ticks.

    The limits are ticks themselves, so the ticks span the whole bar; a range of less than a
    decade gets the finer sequence 1-1.5-2-3-5-7.
    """
    steps: tuple[float, ...] = (1.0, 2.0, 5.0) if high / low >= 8 else (
        1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
    if high / low > 3e3:
        steps = (1.0,)
    ladder = sorted(s * 10.0 ** e for e in range(math.floor(math.log10(low)) - 1,
                                                 math.ceil(math.log10(high)) + 2)
                    for s in steps)
    vmin = max(v for v in ladder if v <= low * (1 + 1e-9))
    vmax = min(v for v in ladder if v >= high * (1 - 1e-9))
    if vmax <= vmin:
        vmax = min(v for v in ladder if v > vmin)
    return vmin, vmax, [v for v in ladder if vmin <= v <= vmax]


def _observed_values(motions: Sequence[StationMotion], stations: Sequence[_Station],
                     metric: str, component: str) -> tuple[list[float | None], list[str]]:
    """Observed (record band) value per station and which component gave it.

    ``component`` ``"rotd50"`` takes the station's RotD50 row, and the larger horizontal
    where it has none (one horizontal component); ``"maxh"`` the larger horizontal.
    """
    rotd50 = {m.station: m.values[metric] for m in motions
              if m.kind == "observed" and m.band == "record" and m.channel == "rotd50"
              and metric in m.values}
    peaks = station_peaks(motions, "observed")
    values: list[float | None] = []
    used: list[str] = []
    for station in stations:
        if component == "rotd50" and station.station in rotd50:
            values.append(rotd50[station.station])
            used.append("rotd50")
        elif metric in peaks.get(station.station, {}):
            values.append(peaks[station.station][metric])
            used.append("maxh")
        else:
            values.append(None)
            used.append("")
    return values, used


def _component_words(used: Sequence[str]) -> str:
    counts = {name: sum(1 for u in used if u == name) for name in ("rotd50", "maxh")}
    if counts["rotd50"] and counts["maxh"]:
        return (f"RotD50 ({counts['maxh']} station{'s' if counts['maxh'] > 1 else ''} with one "
                "horizontal: that component)")
    return "RotD50" if counts["rotd50"] else "larger horizontal component"


def pga_map_figure(
    event: EventInfo | Mapping[str, Any],
    rows: Iterable[Mapping[str, Any]],
    *,
    component: str = "rotd50",
    min_radius_km: float | None = None,
) -> Figure:
    """The figure of :func:`plot_pga_map` (not saved), for inspection."""
    if component not in ("rotd50", "maxh"):
        raise ValueError(f"component must be 'rotd50' or 'maxh', not {component!r}")
    info = EventInfo.coerce(event)
    motions = [StationMotion.from_row(row) for row in rows]
    motions = [m for m in motions if m.kind != "gmpe"]
    if not motions:
        raise ValueError("no station rows to map")
    stations = _station_table(motions)
    values, used = _observed_values(motions, stations, "pga", component)
    pga = [v / STANDARD_GRAVITY * 100.0 if v is not None and v > 0 else None for v in values]
    words = _component_words(used)
    figure, ax, projection = _new_map(info, [s.longitude for s in stations],
                                      [s.latitude for s in stations],
                                      _title(info, f"Observed PGA, {words}, record band"),
                                      min_radius_km)
    present = [v for v in pga if v is not None]
    low, high = (min(present), max(present)) if present else (1.0, 10.0)
    if high <= low * 1.01:
        low, high = low / 1.5, high * 1.5
    vmin, vmax, ticks = _nice_log_range(low, high)
    xy = _projected(projection, info, [s.longitude for s in stations],
                    [s.latitude for s in stations])
    mappable = _stations(ax, xy, pga, cmap="plasma", norm=LogNorm(vmin=vmin, vmax=vmax))
    star = _epicentre(ax)
    short = "RotD50" if words.startswith("RotD50") else "larger horizontal"
    bar = figure.colorbar(mappable, ax=ax, shrink=0.85, pad=0.03,
                          label=f"observed PGA, {short} (%g)")
    bar.ax.yaxis.set_major_locator(FixedLocator(ticks))
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
    bar.ax.yaxis.set_minor_locator(NullLocator())
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    bar.ax.tick_params(labelsize=8.5)
    _finish_map(figure, ax, xy, stations, star)
    return figure


def _finish_map(figure: Figure, ax: Any, xy: np.ndarray, stations: Sequence[_Station],
                star: Any) -> None:
    extent = ax.get_extent(crs=ax.projection)
    rings = _distance_rings(ax, extent)
    legend = ax.legend(loc="lower left", fontsize=7.5, framealpha=0.9)
    _, omitted = place_labels(ax, xy, [s.code for s in stations],
                              obstacles=[legend, star, *rings])
    _note_omitted(ax, omitted)


def plot_pga_map(
    path: str | os.PathLike[str],
    event: EventInfo | Mapping[str, Any],
    rows: Iterable[Mapping[str, Any]],
    *,
    component: str = "rotd50",
    min_radius_km: float | None = None,
) -> Path:
    """Map of the stations coloured by observed PGA (record band, %g, log scale).

    Parameters
    ----------
    path
        PNG file to write.
    event
        The event; its epicentre is drawn as a star.
    rows
        Motion rows (:mod:`dare_cli.ra.outputs`); only observed rows of the record band are
        used. Stations without an observed horizontal PGA are drawn grey.
    component
        ``"rotd50"`` (default): the station's RotD50, or its larger horizontal where it has a
        single horizontal component; ``"maxh"``: the larger horizontal component. The title
        and the colour bar say which.
    min_radius_km
        The map shows at least this distance around the epicentre; by default it is framed
        on the stations and the epicentre.

    Returns
    -------
    Path
        ``path``.
    """
    return _save(pga_map_figure(event, rows, component=component,
                                min_radius_km=min_radius_km), path)


def _nice_half_range(largest: float) -> tuple[float, float]:
    """Half-range of the misfit colour bar and its tick step: 2 to 4 ticks each side."""
    largest = max(largest, 0.1)
    step = next(s for s in (0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0)
                if math.ceil(largest / s - 1e-9) <= 4)
    return max(2, math.ceil(largest / step - 1e-9)) * step, step


def misfit_map_figure(
    event: EventInfo | Mapping[str, Any],
    misfits: Iterable[Mapping[str, Any]],
    metric: str = "pga",
    *,
    rows: Iterable[Mapping[str, Any]] | None = None,
    channel: str | None = None,
    min_radius_km: float | None = None,
) -> Figure:
    """The figure of :func:`plot_misfit_map` (not saved), for inspection."""
    wanted = canonical_metric(metric)
    if wanted is None:
        raise ValueError(f"unknown metric {metric!r}")
    info = EventInfo.coerce(event)
    selected = [m for m in misfits if canonical_metric(str(m.get("metric"))) == wanted]
    coordinates: dict[str, _Station] = {}
    if rows is not None:
        coordinates = {s.station: s for s in _station_table(
            [m for m in (StationMotion.from_row(row) for row in rows) if m.kind != "gmpe"])}
    for item in selected:
        station = str(item["station"])
        if station not in coordinates and "latitude" in item and "longitude" in item:
            coordinates[station] = _Station(station, station.split(".")[-1],
                                            float(item["latitude"]), float(item["longitude"]))
    by_station: dict[str, dict[str, float]] = {}
    for item in selected:
        if item.get("misfit") is None or not math.isfinite(float(item["misfit"])):
            continue
        by_station.setdefault(str(item["station"]), {})[str(item["channel"])] = float(
            item["misfit"])
    missing = sorted(set(by_station) - set(coordinates))
    if missing:
        raise ValueError(f"no coordinates for stations {', '.join(missing)}: give rows= or "
                         "latitude/longitude in the misfit rows")
    stations = sorted(coordinates.values(), key=lambda s: s.station)
    if not stations or not by_station:
        raise ValueError(f"no {wanted} misfits to map")
    chosen = [_station_misfit(by_station.get(s.station, {}), channel) for s in stations]
    values = [value for value, _ in chosen]
    names = {name for _, name in chosen if name}
    what = (channel if channel is not None else
            "RotD50" if names == {"rotd50"} else
            "larger horizontal" if names == {"maxh"} else
            "mean of the horizontals" if names == {"horizontal"} else
            "RotD50 or the horizontal components")
    present = [abs(v) for v in values if v is not None]
    half, step = _nice_half_range(max(present, default=0.1))
    label = metric_label(wanted)
    figure, ax, projection = _new_map(
        info, [s.longitude for s in stations], [s.latitude for s in stations],
        _title(info, f"Misfit of the synthetics, {label}, {what}, "
                     f"{_misfit_band_words(selected)}"),
        min_radius_km,
    )
    xy = _projected(projection, info, [s.longitude for s in stations],
                    [s.latitude for s in stations])
    mappable = _stations(ax, xy, values, cmap="RdBu_r",
                         norm=CenteredNorm(vcenter=0.0, halfrange=half))
    star = _epicentre(ax)
    bar = figure.colorbar(mappable, ax=ax, shrink=0.85, pad=0.03,
                          label=f"log10(synthetic / observed), {label}\n"
                                "blue: synthetic smaller   red: synthetic larger")
    ticks = np.round(np.arange(-half, half + step / 2, step), 6)
    bar.ax.yaxis.set_major_locator(FixedLocator(ticks.tolist()))
    bar.ax.yaxis.set_major_formatter(FuncFormatter(
        lambda value, _: f"{value:+.2f}  ({_TIMES}{10 ** value:.2g})" if abs(value) > 1e-9
        else f"0  ({_TIMES}1)"))
    bar.ax.yaxis.set_minor_locator(NullLocator())
    bar.ax.tick_params(labelsize=8.5)
    _finish_map(figure, ax, xy, stations, star)
    return figure


def plot_misfit_map(
    path: str | os.PathLike[str],
    event: EventInfo | Mapping[str, Any],
    misfits: Iterable[Mapping[str, Any]],
    metric: str = "pga",
    *,
    rows: Iterable[Mapping[str, Any]] | None = None,
    channel: str | None = None,
    min_radius_km: float | None = None,
) -> Path:
    """Map of log10(synthetic/observed) per station, diverging colours centred on 0.

    Parameters
    ----------
    path
        PNG file to write.
    event
        The event.
    misfits
        Misfit rows. Station coordinates come from ``rows`` when given, otherwise from the
        misfit rows' ``latitude``/``longitude``.
    metric
        ``"pga"``, ``"pgv"``, ``"pgd"`` or ``"psa<T>"``.
    rows
        Motion rows, for station codes and coordinates.
    channel
        Channel whose misfit is mapped. ``None``: ``rotd50`` when a station has it, else
        ``maxh``, else the mean of its horizontal components' misfits (the log of their
        geometric mean ratio). The title says which.
    min_radius_km
        As for :func:`plot_pga_map`.

    Returns
    -------
    Path
        ``path``.
    """
    return _save(misfit_map_figure(event, misfits, metric, rows=rows, channel=channel,
                                   min_radius_km=min_radius_km), path)


def _station_misfit(channels: Mapping[str, float], channel: str | None
                    ) -> tuple[float | None, str]:
    """The misfit mapped for a station, and which channel (or ``"horizontal"``) gave it."""
    if channel is not None:
        return channels.get(channel), channel if channel in channels else ""
    for name in ("rotd50", "maxh"):
        if name in channels:
            return channels[name], name
    horizontal = [v for c, v in channels.items() if _role(c) == "horizontal"]
    return (float(np.mean(horizontal)), "horizontal") if horizontal else (None, "")


def _role(channel: str) -> str:
    try:
        return channel_role(channel)
    except ValueError:
        return "unknown"


def _station_table(motions: Sequence[StationMotion]) -> list[_Station]:
    """One entry per station (code and coordinates), sorted by ``NET.STA``."""
    table: dict[str, _Station] = {}
    for motion in motions:
        table.setdefault(motion.station, _Station(motion.station, motion.code, motion.latitude,
                                                  motion.longitude))
    return [table[key] for key in sorted(table)]


# -- residuals against the ground-motion model ---------------------------------------------------
def _signed(value: float) -> str:
    """``+0.12``, ``-0.30``; never ``-0.00``."""
    text = f"{value:+.2f}"
    return "+0.00" if text == "-0.00" else text


def _metric_order(metrics: Iterable[str]) -> list[str]:
    base = [m for m in ("pga", "pgv", "pgd") if m in set(metrics)]
    spectral = sorted({m for m in metrics if psa_period(m) is not None},
                      key=lambda m: psa_period(m) or 0.0)
    return base + spectral


def residuals_figure(
    event: EventInfo | Mapping[str, Any],
    residuals: Iterable[Mapping[str, Any]],
    rows: Iterable[Mapping[str, Any]],
    *,
    distance: str = "rjb",
    label_limit: int = 20,
) -> Figure:
    """The figure of :func:`plot_residuals` (not saved), for inspection."""
    if distance not in ("rjb", "epicentral"):
        raise ValueError(f"distance must be 'rjb' or 'epicentral', not {distance!r}")
    info = EventInfo.coerce(event)
    items = [r for r in residuals if r.get("log10") is not None
             and math.isfinite(float(r["log10"])) and canonical_metric(str(r.get("metric")))]
    if not items:
        raise ValueError("no residuals to plot")
    epicentral, codes, rjb, sigma, model_info = _residual_context(rows)
    stations = sorted({str(r["station"]) for r in items})
    use_rjb = distance == "rjb" and all(s in rjb for s in stations)
    where = rjb if use_rjb else epicentral
    unknown = [s for s in stations if not math.isfinite(where.get(s, math.nan))]
    if unknown:
        raise ValueError(f"no distance for stations {', '.join(unknown)}: give their rows")
    metrics = _metric_order({canonical_metric(str(r["metric"])) or "" for r in items})
    values: dict[tuple[str, str, str], float] = {}
    for r in items:
        values[(str(r["kind"]), canonical_metric(str(r["metric"])) or "", str(r["station"]))] = (
            float(r["log10"]))
    model = str(next((r.get("model") for r in items if r.get("model")), "")
                or model_info.get("model", "the model"))

    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    figure = Figure(figsize=(4.4 * ncols, 3.3 * nrows + 1.3), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    log_x, xlim = _distance_range(np.array([where[s] for s in stations]))
    largest = max([abs(v) for v in values.values()]
                  + [2.0 * s for (station, _), s in sigma.items() if station in stations]
                  + [0.5])
    ylim = (-1.15 * largest, 1.15 * largest)
    many = len(stations) > label_limit
    pending: list[tuple[Axes, list[tuple[float, float, str]], list[tuple[float, float, str]],
                        Any]] = []
    for index, ax in enumerate(axes.flat):
        if index >= len(metrics):
            ax.set_visible(False)
            continue
        metric = metrics[index]
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        if log_x:
            ax.set_xscale("log")
        known = [(where[s], sigma[(s, metric)]) for s in stations if (s, metric) in sigma]
        observed, synthetic, note = _residual_panel(ax, metric, stations, where, values,
                                                    known, xlim, many)
        if index % ncols == 0:
            ax.set_ylabel("log10(motion / median)", fontsize=8.5)
        if index // ncols == nrows - 1 or index + ncols >= len(metrics):
            ax.set_xlabel("Joyner-Boore distance Rjb (km)" if use_rjb
                          else "epicentral distance (km)", fontsize=8.5)
            ax.xaxis.set_tick_params(labelbottom=True)
        if not many and observed:
            pending.append((ax, observed, synthetic, note))
    _residuals_legend_and_title(figure, info, model, model_info)
    radius = 4.0 * DPI / 72.0
    for ax, observed, synthetic, note in pending:  # once the layout is final
        pixels = ax.transData.transform(np.array([p[:2] for p in synthetic]).reshape(-1, 2))
        obstacles = [note, *(Bbox.from_extents(x - radius, y - radius, x + radius, y + radius)
                             for x, y in pixels)]
        place_labels(ax, np.array([p[:2] for p in observed]),
                     [codes.get(p[2], p[2]) for p in observed], obstacles=obstacles,
                     marker_radius=3.5, fontsize=6.5)
    return figure


def _residual_context(rows: Iterable[Mapping[str, Any]]
                      ) -> tuple[dict[str, float], dict[str, str], dict[str, float],
                                 dict[tuple[str, str], float], dict[str, Any]]:
    """From the station rows: epicentral distances, codes, Rjb, model sigmas, model details.

    Returns
    -------
    epicentral, codes, rjb, sigma, model_info
        ``{station: km}``, ``{station: code}``, ``{station: km}`` (rows with a GMPE),
        ``{(station, metric): sigma of log10}`` and the first GMPE row's ``gmpe`` details.
    """
    epicentral: dict[str, float] = {}
    codes: dict[str, str] = {}
    rjb: dict[str, float] = {}
    sigma: dict[tuple[str, str], float] = {}
    model_info: dict[str, Any] = {}
    for row in rows:
        station = str(row.get("station"))
        epicentral.setdefault(station, float(row.get("distance_km", math.nan)))
        codes.setdefault(station, str(row.get("code") or station.split(".")[-1]))
        if row.get("kind") == "gmpe":
            details = row.get("gmpe") or {}
            model_info = model_info or dict(details)
            if details.get("rjb_km") is not None:
                rjb[station] = float(details["rjb_km"])
            for key, value in (row.get("sigma_log10") or {}).items():
                metric = canonical_metric(str(key))
                if metric is not None and value is not None:
                    sigma[(station, metric)] = float(value)
    return epicentral, codes, rjb, sigma, model_info


def _distance_range(distances: np.ndarray) -> tuple[bool, tuple[float, float]]:
    """Whether the distance axis is logarithmic (positive, spanning over 5x), and its limits."""
    positive = distances[distances > 0]
    if positive.size == distances.size and positive.max() / positive.min() > 5.0:
        return True, (positive.min() / 1.25, positive.max() * 1.25)
    span = max(float(np.ptp(distances)), 2.0)
    return False, (max(0.0, float(distances.min()) - 0.08 * span),
                   float(distances.max()) + 0.08 * span)


def _residual_panel(ax: Axes, metric: str, stations: Sequence[str], where: Mapping[str, float],
                    values: Mapping[tuple[str, str, str], float],
                    known: list[tuple[float, float]], xlim: tuple[float, float], many: bool
                    ) -> tuple[list[tuple[float, float, str]], list[tuple[float, float, str]],
                               Any]:
    """Draw one metric's residuals: the ±1 sigma band, observed and synthetic points, means.

    Returns the observed and synthetic ``(distance, log10, station)`` points and the note of
    the means (an obstacle for the labels).
    """
    size = 26.0 if not many else 10.0
    if known:
        known.sort()
        bx = np.array([xlim[0], *(k[0] for k in known), xlim[1]])
        bs = np.array([known[0][1], *(k[1] for k in known), known[-1][1]])
        ax.fill_between(bx, -bs, bs, color="#c8c8c8", alpha=0.55, linewidth=0,
                        zorder=1)
    ax.axhline(0.0, color="#404040", linewidth=0.8, zorder=2)
    ax.grid(True, linewidth=0.3, alpha=0.6, zorder=0)
    observed = [(where[s], values[("observed", metric, s)], s) for s in stations
                if ("observed", metric, s) in values]
    synthetic = [(where[s], values[("synthetic", metric, s)], s) for s in stations
                 if ("synthetic", metric, s) in values]
    pairs = {s: v for _, v, s in synthetic}
    for x, v, s in observed if not many else ():  # joins only where they can be read
        if s in pairs:
            ax.plot([x, x], [v, pairs[s]], color="#9a9a9a", linewidth=0.5, zorder=3)
    ax.scatter([p[0] for p in synthetic], [p[1] for p in synthetic],
               s=size, marker="^", color=_SYNTHETIC_COLOUR,
               edgecolors="white" if not many else "none", linewidths=0.4,
               alpha=0.9 if not many else 0.6, zorder=5)
    ax.scatter([p[0] for p in observed], [p[1] for p in observed], s=size, marker="o",
               color=_OBSERVED_COLOUR, edgecolors="white" if not many else "none",
               linewidths=0.4, alpha=1.0 if not many else 0.6, zorder=6)
    means = []
    for kind, points in (("obs", observed), ("syn", synthetic)):
        if points:
            means.append(f"{kind} {_signed(float(np.mean([p[1] for p in points])))}")
    note = ax.text(0.02, 0.97, "mean " + ", ".join(means) + f"  (n={len(observed)})",
                   transform=ax.transAxes, ha="left", va="top", fontsize=7,
                   bbox={"boxstyle": "round,pad=0.25", "facecolor": "white",
                         "edgecolor": "#c0c0c0", "alpha": 0.9}, zorder=8)
    ax.set_title(metric_label(metric), fontsize=9.5)
    ax.tick_params(labelsize=8)
    return observed, synthetic, note


def _residuals_legend_and_title(figure: Figure, info: EventInfo, model: str,
                                model_info: Mapping[str, Any]) -> None:
    """The legend of the residual plots and the figure's title; the layout made final."""
    handles = [
        Line2D([], [], marker="o", linestyle="none", color=_OBSERVED_COLOUR,
               label="observed (record band)"),
        Line2D([], [], marker="^", linestyle="none", color=_SYNTHETIC_COLOUR,
               label="synthetic (common band)"),
        Patch(facecolor="#c8c8c8", alpha=0.55, label=f"±1{_SIGMA} of {model}"),
    ]
    figure.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    component = model_info.get("component", "RotD50")
    vs30 = model_info.get("vs30")
    site = f", Vs30 {float(vs30):g} m/s" if vs30 is not None else ""
    figure.suptitle(_title(info, f"Residuals against {model} ({component}{site})"),
                    fontsize=10)
    figure.tight_layout(rect=(0.0, 0.05, 1.0, 1.0))


def plot_residuals(
    path: str | os.PathLike[str],
    event: EventInfo | Mapping[str, Any],
    residuals: Iterable[Mapping[str, Any]],
    rows: Iterable[Mapping[str, Any]],
    *,
    distance: str = "rjb",
    label_limit: int = 20,
) -> Path:
    """Residuals of observed and synthetic motions against the ground-motion model vs distance.

    One panel per metric (PGA, PGV, PSA at each period), all on one residual scale: the
    log10 residuals (log10 of motion / predicted median) of the observed records (record band)
    and of the synthetics (common band), the model's ±1 sigma band (grey, from each station's
    sigma), the zero line, and in each panel the mean residuals of both. A thin grey line joins
    the observed and synthetic residuals of a station; station codes label the observed points
    when there are at most ``label_limit`` stations.

    Parameters
    ----------
    path
        PNG file to write.
    event
        The event.
    residuals
        Residual rows (:mod:`dare_cli.ra.outputs`).
    rows
        Motion rows: the ``gmpe`` rows give Rjb and the sigmas, the others station codes and
        epicentral distances.
    distance
        ``"rjb"``: the Joyner-Boore distance of the model (when every station has one),
        ``"epicentral"``: the epicentral distance. The axis says which.
    label_limit
        Most stations labelled by their code; beyond, points only (smaller, translucent).

    Returns
    -------
    Path
        ``path``.
    """
    return _save(residuals_figure(event, residuals, rows, distance=distance,
                                  label_limit=label_limit), path)


# -- waveforms -----------------------------------------------------------------------------------
def _component(trace_channel: str) -> str:
    return trace_channel[-1:] if trace_channel else "?"


def _component_rank(component: str) -> tuple[int, str]:
    """Z, N, E, R, T, 1, 2, 3, H first, in this order; others after, alphabetically."""
    rank = _COMPONENT_ORDER.find(component)
    return (rank if rank >= 0 else len(_COMPONENT_ORDER), component)


def recorded_samples(trace: Trace) -> np.ndarray:
    """The samples of a trace as floats, NaN where there is no data.

    Masked samples and NaN are missing; so is the zero padding of a comparison copy (a trace
    whose ``stats.coverage`` is below 1): the runs of two or more exact zeros at its start and
    end, and inside it those longer than one second (a processed record is never exactly zero
    that long).
    """
    data: np.ndarray = np.array(np.ma.filled(
        np.ma.masked_invalid(np.ma.asarray(trace.data, dtype=float)), np.nan), dtype=float)
    coverage = trace.stats.get("coverage")
    if coverage is not None and float(coverage) < 1.0:
        zero = data == 0.0
        edges = np.flatnonzero(np.diff(np.concatenate([[0], zero.astype(np.int8), [0]])))
        shortest = max(2, round(trace.stats.sampling_rate))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            at_edge = start == 0 or stop == data.size
            if stop - start >= (2 if at_edge else shortest):
                data[start:stop] = np.nan
    return data


def _missing_spans(times: np.ndarray, data: np.ndarray) -> list[tuple[float, float]]:
    """Time spans of the NaN runs of a trace."""
    missing = np.isnan(data)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], missing.astype(np.int8), [0]])))
    step = float(times[1] - times[0]) if times.size > 1 else 0.0
    return [(float(times[a]) - step / 2, float(times[b - 1]) + step / 2)
            for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _misfit_band_words(misfits: Sequence[Mapping[str, Any]]) -> str:
    """The band the misfits compare, from their ``band_hz``: e.g. "common band 0.1-0.39 Hz"."""
    bands = {(float(m["band_hz"][0]), float(m["band_hz"][1])) for m in misfits
             if isinstance(m.get("band_hz"), (list, tuple)) and len(m["band_hz"]) == 2
             and m["band_hz"][0] is not None and m["band_hz"][1] is not None}
    if not bands:
        return "common band"
    low, high = min(b[0] for b in bands), max(b[1] for b in bands)
    if len(bands) == 1:
        return f"common band {low:.3g}{_DASH}{high:.3g} Hz"
    return f"common bands within {low:.3g}{_DASH}{high:.3g} Hz"


def _band_words(traces: Sequence[Trace]) -> str:
    """The band of traces from ``stats.dare`` (``highpass``/``lowpass``), e.g. 0.09-20 Hz."""
    bands = set()
    for trace in traces:
        dare = trace.stats.get("dare") or {}
        if "highpass" in dare and "lowpass" in dare:
            bands.add((float(dare["highpass"]), float(dare["lowpass"])))
    if not bands:
        return ""
    low = max(b[0] for b in bands)
    high = min(b[1] for b in bands)
    if len(bands) == 1:
        return f"{low:.3g}{_DASH}{high:.3g} Hz"
    return " / ".join(f"{a:.3g}{_DASH}{b:.3g} Hz" for a, b in sorted(bands))


def _peak(arrays: Sequence[np.ndarray]) -> float:
    finite = [np.nanmax(np.abs(a)) for a in arrays if np.isfinite(a).any()]
    return float(max(finite)) if finite else 0.0


def _amplitude_axis(ax: Axes, peak: float, label: str, colour: str) -> None:
    """Symmetric limits about zero (the peak plus 12 %), ticks in units of a power of ten.

    Tick labels are plain numbers; a power of ten, when needed, goes into the axis label
    (``Z (10^-2 m/s)``) rather than an offset text above the axis.
    """
    limit = 1.12 * (peak or 1.0)
    ax.set_ylim(-limit, limit)
    exponent = math.floor(math.log10(limit)) if not 1e-2 <= limit < 1e3 else 0
    factor = 10.0 ** exponent
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value / factor:g}"))
    if exponent:
        name, _, unit = label.rpartition("(")
        label = f"{name}($10^{{{exponent}}}$ {unit}"
    ax.set_ylabel(label, fontsize=8, color=colour)


def _station_heading(station: str, name: str | None, distance_km: float | None,
                     azimuth: float | None) -> str:
    """``NET.STA (name)   epicentral distance 12.3 km, azimuth 45°``: what is known of it."""
    where = []
    if distance_km is not None:
        where.append(f"epicentral distance {distance_km:.1f} km")
    if azimuth is not None:
        where.append(f"azimuth {azimuth:.0f}°")
    heading = station + (f" ({name})" if name and name != station.split(".")[-1] else "")
    if where:
        heading += "   " + ", ".join(where)
    return heading


def _missing_data_spans(obs: Sequence[Trace], obs_data: Sequence[tuple[np.ndarray, np.ndarray]],
                        window: tuple[float, float]) -> list[tuple[float, float]]:
    """Spans of the window (s) where the record has no data: gaps, and before or after it."""
    covered = sorted((float(t[0]), float(t[-1])) for t, d in obs_data if np.isfinite(d).any())
    spans = [span for t, d in obs_data for span in _missing_spans(t, d)]
    cursor = window[0]
    for first, last in covered:
        if first > cursor:
            spans.append((cursor, first))
        cursor = max(cursor, last)
    if obs and cursor < window[1]:
        spans.append((cursor, window[1]))
    if not obs:
        spans = [window]
    return spans


def _waveform_panel_title(obs: Sequence[Trace], syn: Sequence[Trace], peak_obs: float,
                          peak_syn: float, units: str) -> str:
    """Channels, band compared, peaks and their ratio, and the record's coverage."""
    channels = "/".join(sorted({t.stats.channel for t in (*obs, *syn)}))
    parts = [f"{channels}", f"band compared {_band_words(obs or syn) or 'not recorded'}"]
    if peak_obs and peak_syn:
        parts.append(f"peak obs {peak_obs:.3g}, syn {peak_syn:.3g} {units}, "
                     f"log10(syn/obs) {math.log10(peak_syn / peak_obs):+.2f}")
    elif peak_obs:
        parts.append(f"peak obs {peak_obs:.3g} {units}; no synthetic")
    elif peak_syn:
        parts.append(f"peak syn {peak_syn:.3g} {units}; no observed data")
    coverage = [float(t.stats.coverage) for t in obs if t.stats.get("coverage") is not None]
    if coverage and min(coverage) < 1.0:
        parts.append(f"the record covers {100 * min(coverage):.0f}% of the window")
    return "   \u00b7   ".join(parts)


def _waveform_panel(ax: Axes, panel: tuple[Any, ...], window: tuple[float, float],
                    own_scale: bool, units: str) -> bool:
    """Draw one component's observed and synthetic traces; whether missing data was shaded."""
    component, obs, syn, obs_data, syn_data = panel
    peak_obs, peak_syn = _peak([d for _, d in obs_data]), _peak([d for _, d in syn_data])
    ax.set_xlim(*window)
    ax.axhline(0.0, color="#b0b0b0", linewidth=0.5, zorder=0)
    ax.grid(True, linewidth=0.3, alpha=0.6)
    missing_drawn = False
    # where the record has no data: shaded, never drawn as zeros
    for first, last in _missing_data_spans(obs, obs_data, window):
        if last - first > 0:
            ax.axvspan(first, last, facecolor="#eeeeee", edgecolor="#cfcfcf",
                       hatch="////", linewidth=0.0, zorder=0)
            missing_drawn = True
    for times, data in obs_data:
        ax.plot(times, data, color=_OBSERVED_COLOUR, linewidth=0.6, zorder=3)
    target = ax
    if own_scale and syn_data:
        target = ax.twinx()
        target.tick_params(axis="y", colors=_SYNTHETIC_COLOUR, labelsize=7.5)
        _amplitude_axis(target, peak_syn, f"synthetic ({units})", _SYNTHETIC_COLOUR)
    for times, data in syn_data:
        target.plot(times, data, color=_SYNTHETIC_COLOUR, linewidth=0.7, alpha=0.9,
                    zorder=4)
    ax.tick_params(labelsize=7.5)
    _amplitude_axis(ax, peak_obs if own_scale else max(peak_obs, peak_syn),
                    f"{component}: observed ({units})" if own_scale
                    else f"{component} ({units})", "black")
    ax.set_title(_waveform_panel_title(obs, syn, peak_obs, peak_syn, units), loc="left",
                 fontsize=7.2, pad=3)
    return missing_drawn


def waveforms_figure(
    station: str,
    observed: Stream,
    synthetic: Stream,
    quantity: str = "VEL",
    *,
    origin_time: UTCDateTime | str | None = None,
    distance_km: float | None = None,
    azimuth: float | None = None,
    name: str | None = None,
    same_scale_within: float = 2.0,
) -> Figure:
    """The figure of :func:`plot_waveforms` (not saved), for inspection."""
    if quantity not in QUANTITY_UNITS:
        raise ValueError(f"quantity must be one of {sorted(QUANTITY_UNITS)}, not {quantity!r}")
    components = sorted({_component(t.stats.channel) for t in (*observed, *synthetic)},
                        key=_component_rank)
    if not components:
        raise ValueError(f"{station}: no traces to plot")
    if origin_time is not None:
        reference, zero = UTCDateTime(origin_time), "origin"
    else:
        reference = min(t.stats.starttime for t in (*observed, *synthetic))
        zero = "first sample"
    units = QUANTITY_UNITS[quantity]
    panels = []
    for component in components:
        obs = [t for t in observed if _component(t.stats.channel) == component]
        syn = [t for t in synthetic if _component(t.stats.channel) == component]
        obs_data = [(t.times(reftime=reference), recorded_samples(t)) for t in obs]
        syn_data = [(t.times(reftime=reference), recorded_samples(t)) for t in syn]
        panels.append((component, obs, syn, obs_data, syn_data))
    ratios = []
    for _, _, _, obs_data, syn_data in panels:
        peak_obs, peak_syn = _peak([d for _, d in obs_data]), _peak([d for _, d in syn_data])
        if peak_obs > 0 and peak_syn > 0:
            ratios.append(peak_syn / peak_obs)
    own_scale = any(not 1.0 / same_scale_within <= r <= same_scale_within for r in ratios)

    figure = Figure(figsize=(10.0, 2.05 * len(components) + 1.45), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(components), 1, sharex=True, squeeze=False)[:, 0]
    starts = [t.stats.starttime - reference for t in (*observed, *synthetic)]
    ends = [t.stats.endtime - reference for t in (*observed, *synthetic)]
    window = (min(starts), max(ends))
    missing_drawn = False
    for ax, panel in zip(axes, panels, strict=True):
        missing_drawn |= _waveform_panel(ax, panel, window, own_scale, units)
    axes[-1].set_xlabel(f"time after {zero} (s)" + (
        f", origin {reference.strftime('%Y-%m-%d %H:%M:%S')} UTC" if zero == "origin" else ""),
        fontsize=8.5)
    handles: list[Any] = [
        Line2D([], [], color=_OBSERVED_COLOUR, linewidth=1.0, label="observed"),
               Line2D([], [], color=_SYNTHETIC_COLOUR, linewidth=1.0,
                      label="synthetic" + (" (own scale, right axis)" if own_scale else ""))]
    if missing_drawn:
        handles.append(Patch(facecolor="#eeeeee", edgecolor="#cfcfcf", hatch="////",
                             label="no observed data"))
    heading = _station_heading(station, name, distance_km, azimuth)
    factor = max((max(r, 1.0 / r) for r in ratios), default=1.0)
    scale = (f"each on its own scale (peaks differ by up to a factor {factor:.2g})"
             if own_scale else "same scale")
    figure.suptitle(f"{heading}\nobserved and synthetic {_QUANTITY_NAMES[quantity]} in the "
                    f"band they share; {scale}", fontsize=9.5)
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7.5,
                  frameon=False)
    figure.tight_layout(rect=(0.0, 0.045 if len(components) > 1 else 0.07, 1.0, 1.0),
                        h_pad=0.6)
    return figure


def plot_waveforms(
    path: str | os.PathLike[str],
    station: str,
    observed: Stream,
    synthetic: Stream,
    quantity: str = "VEL",
    *,
    origin_time: UTCDateTime | str | None = None,
    distance_km: float | None = None,
    azimuth: float | None = None,
    name: str | None = None,
    same_scale_within: float = 2.0,
) -> Path:
    """Observed versus synthetic traces of one station, one panel per component.

    Each panel says the channels, the band compared (``stats.dare`` ``highpass``/``lowpass``
    of the traces), both peaks and log10 of their ratio. Where the observed record has no data
    (NaN, masked samples, the zero padding of a comparison copy: :func:`recorded_samples`,
    or outside its traces) the panel is shaded and the trace is interrupted. When the peaks of
    the synthetic and observed traces differ by more than ``same_scale_within`` in any panel,
    every synthetic is drawn on its own scale (right axis, red), so that shape and timing can
    be judged whatever the amplitude; otherwise both share one scale. The title gives the
    station, its distance and azimuth, and which scaling was used. Stations with one or two
    components get one or two panels.

    Parameters
    ----------
    path
        PNG file to write.
    station
        ``"NET.STA"``, for the title.
    observed, synthetic
        Traces of the station in ``quantity`` (SI units), e.g. ``HNZ``/``HNN``/``HNE`` and
        ``HXZ``/``HXN``/``HXE``; paired by the last letter of the channel code. Several traces
        of one channel (segments) are drawn apart, with the gaps between them shaded.
    quantity
        ``"ACC"`` (m/s²), ``"VEL"`` (m/s) or ``"DISP"`` (m).
    origin_time
        Zero of the time axis (seconds after origin); by default the earliest trace start.
    distance_km, azimuth
        Epicentral distance (km) and azimuth (degrees from north) of the station, for the
        title.
    name
        Site name, for the title.
    same_scale_within
        Largest ratio of the peaks (either way) drawn on one scale.

    Returns
    -------
    Path
        ``path``.
    """
    return _save(waveforms_figure(station, observed, synthetic, quantity,
                                  origin_time=origin_time, distance_km=distance_km,
                                  azimuth=azimuth, name=name,
                                  same_scale_within=same_scale_within), path)
