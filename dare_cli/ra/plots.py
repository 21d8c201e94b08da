"""Plots of the Rapid Assessment: maps of observed PGA and of misfits, waveform comparisons.

Every figure is a :class:`matplotlib.figure.Figure` drawn on its own
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`: no pyplot, no global backend or
figure registry, so plotting works the same in the main process and in worker processes
(fork or spawn) and leaves nothing open. PNGs are rendered in memory and written atomically.

Maps are drawn offline: coastlines, country and state borders and lakes come from Natural
Earth 1:50m layers shipped in ``dare_cli/ra/basemap/`` (see its SOURCE.md), drawn with
``GeoAxes.add_geometries``; nothing here calls cartopy's downloading features.

The rows, misfit rows and event are those of :mod:`dare_cli.ra.outputs`.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import CenteredNorm, LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import Bbox
from obspy import Stream, UTCDateTime

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
    "BASEMAP_LAYERS",
    "QUANTITY_UNITS",
    "basemap_geometries",
    "plot_misfit_map",
    "plot_pga_map",
    "plot_waveforms",
]

#: Shipped map layers (``basemap/<name>.geojson.gz``) and how they are drawn, bottom to top.
BASEMAP_LAYERS: dict[str, dict[str, Any]] = {
    "lakes": {"facecolor": "#d4e8f4", "edgecolor": "#5b8db3", "linewidth": 0.4},
    "states": {"facecolor": "none", "edgecolor": "#707070", "linewidth": 0.6,
               "linestyle": (0, (4, 2))},
    "borders": {"facecolor": "none", "edgecolor": "#3c3c3c", "linewidth": 0.9},
    "coastline": {"facecolor": "none", "edgecolor": "#2b5d8a", "linewidth": 0.7},
}
#: Units of the quantities of :func:`plot_waveforms`.
QUANTITY_UNITS = {"ACC": "m/s²", "VEL": "m/s", "DISP": "m"}
_QUANTITY_NAMES = {"ACC": "acceleration", "VEL": "velocity", "DISP": "displacement"}
_COMPONENT_ORDER = "ZNERT123H"
_BACKGROUND = "#f7f5f0"
_DPI = 110


# -- basemap -------------------------------------------------------------------------------------
@functools.cache
def basemap_geometries(layer: str) -> tuple[np.ndarray, np.ndarray]:
    """Geometries of a shipped layer (lon/lat degrees) and their bounds, loaded once per process.

    Returns
    -------
    geometries, bounds
        Arrays of shapely geometries and of their ``(xmin, ymin, xmax, ymax)``.
    """
    if layer not in BASEMAP_LAYERS:
        raise ValueError(f"unknown basemap layer {layer!r}; known: {sorted(BASEMAP_LAYERS)}")
    source = resources.files("dare_cli.ra").joinpath("basemap", f"{layer}.geojson.gz")
    collection = shapely.from_geojson(gzip.decompress(source.read_bytes()))
    geometries = shapely.get_parts(collection)
    return geometries, shapely.bounds(geometries)


def clipped_layer(layer: str, box: tuple[float, float, float, float]) -> list[Any]:
    """Geometries of a layer inside a lon/lat box; longitudes beyond ±180 are wrapped."""
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


# -- map frame -----------------------------------------------------------------------------------
def _unwrap(longitudes: Sequence[float], centre: float) -> np.ndarray:
    """Longitudes within ±180° of ``centre`` (continuous across the antimeridian)."""
    return centre + (np.asarray(longitudes, dtype=float) - centre + 180.0) % 360.0 - 180.0


def _default_radius_km(event: EventInfo) -> float:
    """Half-width of a map around the epicentre: 50 km · 2^(M - 5), within [20, 400] km."""
    if event.magnitude is None:
        return 100.0
    return float(min(400.0, max(20.0, 50.0 * 2.0 ** (event.magnitude - 5.0))))


def _new_map(event: EventInfo, longitudes: Sequence[float], latitudes: Sequence[float],
             title: str, min_radius_km: float | None) -> tuple[Figure, Any, Any]:
    """A figure with a GeoAxes around the epicentre and stations, basemap drawn.

    The frame (azimuthal equidistant about the epicentre) holds every station with a margin
    and at least ``min_radius_km`` (default :func:`_default_radius_km`) around the epicentre.
    """
    import cartopy.crs as ccrs  # imported here: heavy, and only the maps need it
    from cartopy.mpl.ticker import LongitudeLocator

    geodetic = ccrs.PlateCarree()
    projection = ccrs.AzimuthalEquidistant(central_longitude=event.longitude,
                                           central_latitude=event.latitude)
    lons = np.append(_unwrap(longitudes, event.longitude), event.longitude)
    lats = np.append(np.asarray(latitudes, dtype=float), event.latitude)
    xy = projection.transform_points(geodetic, lons, lats)[:, :2]
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    margin = 0.12 * max(x1 - x0, y1 - y0) + 10e3
    radius = 1e3 * (min_radius_km if min_radius_km is not None else _default_radius_km(event))
    west, east = min(x0 - margin, -radius), max(x1 + margin, radius)
    south, north = min(y0 - margin, -radius), max(y1 + margin, radius)
    # no frame narrower than 3/4 of its height, or flatter than 3/4 of its width
    widen = max(0.0, 0.75 * (north - south) - (east - west)) / 2
    heighten = max(0.0, 0.75 * (east - west) - (north - south)) / 2
    extent = (west - widen, east + widen, south - heighten, north + heighten)

    figure = Figure(figsize=(8.0, 7.0), dpi=_DPI)
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
    for zorder, (layer, style) in enumerate(BASEMAP_LAYERS.items(), start=1):
        geometries = clipped_layer(layer, box)
        if geometries:
            ax.add_geometries(geometries, crs=geodetic, zorder=zorder, **style)

    grid = ax.gridlines(crs=geodetic, draw_labels=True, rotate_labels=False, linewidth=0.3,
                        color="#909090", alpha=0.7, linestyle="--")
    grid.top_labels = False
    grid.right_labels = False
    grid.xlocator = LongitudeLocator(nbins=5)  # longitude labels are wider than latitudes
    _distance_rings(ax, min(extent[1], -extent[0], extent[3], -extent[2]))
    ax.set_title(title, fontsize=10)
    return figure, ax, projection


def _distance_rings(ax: Any, reach: float) -> None:
    """Circles of epicentral distance (the projection is equidistant about the epicentre)."""
    reach_km = reach / 1e3
    step = next((s for s in (10, 20, 50, 100, 200, 500, 1000) if reach_km / s <= 4), 2000)
    for radius in np.arange(step, reach_km + 1e-9, step):
        ax.add_patch(Circle((0.0, 0.0), radius * 1e3, fill=False, edgecolor="#7a7a7a",
                            linewidth=0.6, linestyle=":", zorder=6))
        ax.annotate(f"{radius:g} km", (0.0, -radius * 1e3), xytext=(0, 2),
                    textcoords="offset points", fontsize=7, color="#5a5a5a", ha="center",
                    va="bottom", zorder=6)


def _projected(projection: Any, event: EventInfo, longitudes: Sequence[float],
               latitudes: Sequence[float]) -> np.ndarray:
    import cartopy.crs as ccrs

    if not len(longitudes):
        return np.empty((0, 2))
    lons = _unwrap(longitudes, event.longitude)
    return projection.transform_points(ccrs.PlateCarree(), lons,
                                       np.asarray(latitudes, dtype=float))[:, :2]


def _epicentre(ax: Any, projection: Any, event: EventInfo) -> None:
    (x, y), = _projected(projection, event, [event.longitude], [event.latitude])
    ax.plot(x, y, marker="*", markersize=18, color="black", markeredgecolor="white",
            markeredgewidth=0.8, linestyle="none", zorder=10, label="epicentre")


def _stations(ax: Any, projection: Any, event: EventInfo, stations: Sequence[_Station],
              values: Sequence[float | None], **scatter: Any) -> Any:
    """Stations coloured by value (grey when missing); the mappable."""
    xy = _projected(projection, event, [s.longitude for s in stations],
                    [s.latitude for s in stations])
    known = np.array([v is not None for v in values], dtype=bool)
    mappable = ax.scatter(xy[known, 0], xy[known, 1],
                          c=np.array([v for v in values if v is not None], dtype=float),
                          s=70, edgecolors="black", linewidths=0.7, zorder=9,
                          marker="^", **scatter)
    if (~known).any():
        ax.scatter(xy[~known, 0], xy[~known, 1], s=55, facecolors="#bdbdbd",
                   edgecolors="black", linewidths=0.7, marker="^", zorder=8,
                   label="no value")
    return mappable


def _alignment(dx: float, dy: float) -> dict[str, str]:
    return {"ha": "left" if dx > 0.35 else "right" if dx < -0.35 else "center",
            "va": "bottom" if dy > 0.35 else "top" if dy < -0.35 else "center"}


def _label_stations(figure: Figure, ax: Any, projection: Any, event: EventInfo,
                    stations: Sequence[_Station]) -> None:
    """Write station codes beside their markers, avoiding overlaps where possible.

    A label goes first away from the epicentre (where stations crowd), then around its marker,
    farther and farther, until it overlaps neither other labels nor other markers. Call it once
    the layout is final (after the colour bar).
    """
    ax.apply_aspect()
    xy = _projected(projection, event, [s.longitude for s in stations],
                    [s.latitude for s in stations])
    renderer = FigureCanvasAgg(figure).get_renderer()
    frame = ax.get_window_extent(renderer)
    pixels = ax.transData.transform(xy) if len(xy) else np.empty((0, 2))
    taken = [Bbox.from_extents(px - 6, py - 6, px + 6, py + 6) for px, py in pixels]
    ex, ey = ax.transData.transform((0.0, 0.0))  # the epicentre's star
    star = Bbox.from_extents(ex - 9, ey - 9, ex + 9, ey + 9)
    compass = [(math.cos(a), math.sin(a)) for a in np.radians(np.arange(0, 360, 45))]
    for index, (station, (x, y)) in enumerate(zip(stations, xy, strict=True)):
        norm = math.hypot(x, y) or 1.0
        candidates = [(distance, direction) for distance in (7.0, 15.0, 24.0)
                      for direction in [(x / norm, y / norm), *compass]]
        label = ax.annotate(station.code, (x, y), textcoords="offset points", fontsize=7.5,
                            zorder=11, xytext=(0.0, 0.0))
        others = [*taken[:index], *taken[index + 1:], star]
        for distance, (dx, dy) in candidates:
            label.xyann = (distance * dx, distance * dy)
            label.set(**_alignment(dx, dy))
            box = label.get_window_extent(renderer).padded(1.0)
            inside = (frame.x0 <= box.x0 and box.x1 <= frame.x1
                      and frame.y0 <= box.y0 and box.y1 <= frame.y1)
            if inside and not any(box.overlaps(other) for other in others):
                break
        else:  # nowhere free: the first choice
            (distance, (dx, dy)) = candidates[0]
            label.xyann = (distance * dx, distance * dy)
            label.set(**_alignment(dx, dy))
            box = label.get_window_extent(renderer)
        taken.append(box)


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    figure.clear()
    return atomic_write(path, buffer.getvalue())


def _title(event: EventInfo, what: str) -> str:
    magnitude = "" if event.magnitude is None else f"  M{event.magnitude:.1f}"
    return f"{event.id}{magnitude}  {event.time[:19].replace('T', ' ')} UTC\n{what}"


@dataclass(frozen=True, slots=True)
class _Station:
    """``NET.STA``, code and coordinates (degrees) of a station on a map."""

    station: str
    code: str
    latitude: float
    longitude: float


# -- public plots --------------------------------------------------------------------------------
def plot_pga_map(
    path: str | os.PathLike[str],
    event: EventInfo | Mapping[str, Any],
    rows: Iterable[Mapping[str, Any]],
    *,
    min_radius_km: float | None = None,
) -> Path:
    """Map of the stations coloured by observed PGA (larger horizontal, %g, log scale).

    Parameters
    ----------
    path
        PNG file to write.
    event
        The event; its epicentre is drawn as a star.
    rows
        Motion rows (:mod:`dare_cli.ra.outputs`); only observed rows are used. Stations
        without an observed horizontal PGA are drawn grey.
    min_radius_km
        The map shows at least this distance around the epicentre; by default
        50 km · 2^(M - 5) within [20, 400] km (100 km when the magnitude is unknown).

    Returns
    -------
    Path
        ``path``.
    """
    info = EventInfo.coerce(event)
    motions = [StationMotion.from_row(row) for row in rows]
    if not motions:
        raise ValueError("no station rows to map")
    stations = _station_table(motions)
    peaks = station_peaks(motions, "observed")
    values: list[float | None] = []
    for station in stations:
        pga = peaks.get(station.station, {}).get("pga")
        values.append(pga / STANDARD_GRAVITY * 100.0 if pga is not None and pga > 0 else None)
    figure, ax, projection = _new_map(info, [s.longitude for s in stations],
                                      [s.latitude for s in stations],
                                      _title(info, "Observed PGA, larger horizontal component"),
                                      min_radius_km)
    present = [v for v in values if v is not None]
    low, high = (min(present), max(present)) if present else (1.0, 10.0)
    if high <= low * 1.01:
        low, high = low / 2.0, high * 2.0
    mappable = _stations(ax, projection, info, stations, values, cmap="plasma",
                         norm=LogNorm(vmin=low, vmax=high))
    _epicentre(ax, projection, info)
    bar = figure.colorbar(mappable, ax=ax, shrink=0.8, pad=0.03, label="PGA (%g)")
    # ticks at 1, 2, 5 x 10^n (1 x 10^n only, over more than three decades), plain numbers
    subs = (1.0, 2.0, 5.0) if high / low < 1e3 else (1.0,)
    bar.ax.yaxis.set_major_locator(LogLocator(subs=subs))
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    ax.legend(loc="lower left", fontsize=8, framealpha=0.85)
    _label_stations(figure, ax, projection, info, stations)
    return _save(figure, path)


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
        Channel whose misfit is mapped. ``None``: ``maxh`` when a station has it, otherwise the
        mean of its horizontal components' misfits (the log of their geometric mean ratio).
    min_radius_km
        As for :func:`plot_pga_map`.

    Returns
    -------
    Path
        ``path``.
    """
    wanted = canonical_metric(metric)
    if wanted is None:
        raise ValueError(f"unknown metric {metric!r}")
    info = EventInfo.coerce(event)
    selected = [m for m in misfits if canonical_metric(str(m.get("metric"))) == wanted]
    coordinates: dict[str, _Station] = {}
    if rows is not None:
        coordinates = {s.station: s for s in _station_table(
            [StationMotion.from_row(row) for row in rows])}
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
    if not stations:
        raise ValueError(f"no {wanted} misfits to map")
    values = [_station_misfit(by_station.get(s.station, {}), channel) for s in stations]
    present = [abs(v) for v in values if v is not None]
    half = max([0.1, *present])
    half = math.ceil(half * 10.0) / 10.0
    label = metric.upper() if psa_period(metric) is None else f"PSA({psa_period(metric):g} s)"
    figure, ax, projection = _new_map(
        info, [s.longitude for s in stations], [s.latitude for s in stations],
        _title(info, f"Misfit of the synthetics, {label} ({channel or 'larger horizontal'})"),
        min_radius_km,
    )
    mappable = _stations(ax, projection, info, stations, values, cmap="RdBu_r",
                         norm=CenteredNorm(vcenter=0.0, halfrange=half))
    _epicentre(ax, projection, info)
    figure.colorbar(mappable, ax=ax, shrink=0.8, pad=0.03,
                    label=f"log10(synthetic / observed) {label}  (red: synthetic larger)")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.85)
    _label_stations(figure, ax, projection, info, stations)
    return _save(figure, path)


def _station_misfit(channels: Mapping[str, float], channel: str | None) -> float | None:
    if channel is not None:
        return channels.get(channel)
    if "maxh" in channels:
        return channels["maxh"]
    horizontal = [v for c, v in channels.items()
                  if c != "maxh" and _role(c) == "horizontal"]
    return float(np.mean(horizontal)) if horizontal else None


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


def _component(trace_channel: str) -> str:
    return trace_channel[-1:] if trace_channel else "?"


def _component_rank(component: str) -> tuple[int, str]:
    """Z, N, E, R, T, 1, 2, 3, H first, in this order; others after, alphabetically."""
    rank = _COMPONENT_ORDER.find(component)
    return (rank if rank >= 0 else len(_COMPONENT_ORDER), component)


def plot_waveforms(
    path: str | os.PathLike[str],
    station: str,
    observed: Stream,
    synthetic: Stream,
    quantity: str = "VEL",
    *,
    origin_time: UTCDateTime | str | None = None,
) -> Path:
    """Observed versus synthetic traces of one station, one panel per component.

    Parameters
    ----------
    path
        PNG file to write.
    station
        ``"NET.STA"``, for the title.
    observed, synthetic
        Traces of the station in ``quantity`` (SI units), e.g. ``HNZ``/``HNN``/``HNE`` and
        ``HXZ``/``HXN``/``HXE``; paired by the last letter of the channel code.
    quantity
        ``"ACC"`` (m/s²), ``"VEL"`` (m/s) or ``"DISP"`` (m).
    origin_time
        Zero of the time axis (seconds after origin); by default the earliest trace start.

    Returns
    -------
    Path
        ``path``.
    """
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
    figure = Figure(figsize=(10.0, 2.3 * len(components) + 1.0), dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(components), 1, sharex=True, squeeze=False)[:, 0]
    for ax, component in zip(axes, components, strict=True):
        for stream, colour, kind, width in ((observed, "black", "observed", 0.8),
                                            (synthetic, "#d62728", "synthetic", 0.9)):
            for trace in stream:
                if _component(trace.stats.channel) == component:
                    ax.plot(trace.times(reftime=reference), trace.data, color=colour,
                            linewidth=width, label=f"{kind} {trace.id}")
        ax.axhline(0.0, color="#b0b0b0", linewidth=0.5, zorder=0)
        ax.set_ylabel(f"{component} ({units})")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        ax.grid(True, linewidth=0.3, alpha=0.6)
        ax.legend(loc="upper right", fontsize=7.5, framealpha=0.85)
    axes[-1].set_xlabel(f"time after {zero} (s)")
    figure.suptitle(f"{station}: observed and synthetic {_QUANTITY_NAMES[quantity]}"
                    + (f" (origin {reference})" if zero == "origin" else ""), fontsize=10)
    figure.tight_layout()
    return _save(figure, path)
