"""Plots of climate indices: a map of one time step of a gridded index, or one line per location.

Figures are :class:`matplotlib.figure.Figure` objects drawn on their own
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg` (no pyplot, no global state), so
plotting works the same in worker processes; PNGs are written atomically.

Maps are drawn offline with the Natural Earth layers of :mod:`dare_cli.maps`, shared with the
seismology maps; nothing here calls cartopy's downloading features.
"""

from __future__ import annotations

import io
import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import CenteredNorm
from matplotlib.figure import Figure

from dare_cli.maps import draw_basemap
from engine.files import write_atomic

__all__ = ["LOCATION_DIMS", "plot_index", "plot_index_map", "plot_index_series"]

#: Dimensions that make a dataset station-like (one series per location).
LOCATION_DIMS = ("location", "station", "site")
_LATITUDE_NAMES = ("lat", "latitude", "nav_lat")
_LONGITUDE_NAMES = ("lon", "longitude", "nav_lon")
_BACKGROUND = "#f7f5f0"
_DPI = 110


# -- selection -----------------------------------------------------------------------------------
def _is_bounds(ds: xr.Dataset, name: Hashable) -> bool:
    referenced = {v.attrs.get("bounds") for v in ds.variables.values()}
    return name in referenced or str(name).endswith(("_bounds", "_bnds"))


def select_variable(ds: xr.Dataset, variable: str | None = None) -> xr.DataArray:
    """The data variable to plot: ``variable``, or the first one that is not a cell bound.

    Raises
    ------
    ValueError
        ``variable`` is not in ``ds`` (the message lists its data variables), or ``ds`` has no
        data variable.
    """
    candidates = [name for name in ds.data_vars if not _is_bounds(ds, name)]
    if variable is None:
        if not candidates:
            raise ValueError("the dataset has no data variable to plot")
        return ds[candidates[0]]
    if variable not in ds.data_vars:
        listed = ", ".join(str(name) for name in candidates) or "none"
        raise ValueError(f"no variable {variable!r} in the dataset; its variables: {listed}")
    return ds[variable]


def _coordinate(da: xr.DataArray, names: tuple[str, ...], standard_name: str,
                units: str) -> xr.DataArray | None:
    """A latitude or longitude coordinate of ``da``, by CF attributes or by name."""
    for name, coord in da.coords.items():
        if (coord.attrs.get("standard_name") == standard_name
                or coord.attrs.get("units") == units or str(name).lower() in names):
            return coord
    return None


def _location_dim(da: xr.DataArray) -> Hashable | None:
    return next((dim for dim in da.dims if str(dim).lower() in LOCATION_DIMS), None)


def _date(value: Any) -> str:
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d"))
    return str(np.datetime_as_string(np.datetime64(value, "D")))


def _period(ds: xr.Dataset, step: xr.DataArray) -> str:
    """``"first to last"`` day of the time step ``step`` of ``ds``.

    From the time bounds of ``ds`` when it has them, otherwise the step's time value.
    """
    value = step["time"].values
    names = (ds["time"].attrs.get("bounds"), "time_bounds", "time_bnds")
    bounds = next((ds[n] for n in names if n is not None and n in ds.variables), None)
    if bounds is not None and bounds.dims[0] == "time":
        position = int(np.nonzero(ds["time"].values == value)[0][0])
        start, end = bounds.isel(time=position).values.ravel()[[0, -1]]
        return f"{_date(start)} to {_date(end)}"
    return _date(value.ravel()[0])


def _title_name(da: xr.DataArray) -> str:
    name = str(da.name)
    long_name = da.attrs.get("long_name")
    return f"{name}: {long_name}" if long_name and long_name != name else name


def _bar_label(da: xr.DataArray) -> str:
    long_name = da.attrs.get("long_name") or da.attrs.get("standard_name") or str(da.name)
    units = da.attrs.get("units")
    return f"{long_name} ({units})" if units not in (None, "") else str(long_name)


def _one_time_step(da: xr.DataArray, time: str | int | None) -> xr.DataArray:
    if "time" not in da.dims:
        if time not in (None, 0):
            raise ValueError(f"{da.name}: no time dimension to select {time!r} from")
        return da
    steps = da.sizes["time"]
    if time is None or isinstance(time, (int, np.integer)):
        position = 0 if time is None else int(time)
        if not -steps <= position < steps:
            raise ValueError(f"{da.name}: time index {position} out of range "
                             f"(the variable has {steps} time steps)")
        return da.isel(time=position)
    first, last = _date(da["time"].values[0]), _date(da["time"].values[-1])
    try:
        selected = da.sel(time=time)
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"{da.name}: no time step at {time!r} (time runs from {first} "
                         f"to {last})") from error
    if "time" in selected.dims:
        if selected.sizes["time"] == 0:
            raise ValueError(f"{da.name}: no time step at {time!r} (time runs from {first} "
                             f"to {last})")
        selected = selected.isel(time=0)
    return selected


def _grid_coordinates(da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """The latitude and longitude coordinates of a variable to map.

    Raises
    ------
    ValueError
        No latitude/longitude coordinates, or dimensions other than time and the grid's.
    """
    lat = _coordinate(da, _LATITUDE_NAMES, "latitude", "degrees_north")
    lon = _coordinate(da, _LONGITUDE_NAMES, "longitude", "degrees_east")
    if lat is None or lon is None:
        raise ValueError(f"{da.name}: no latitude/longitude coordinates to map; its dimensions "
                         f"are {tuple(str(d) for d in da.dims)}")
    grid_dims = set(lat.dims) | set(lon.dims)
    extra = [str(d) for d in da.dims if d != "time" and d not in grid_dims]
    if extra:
        raise ValueError(f"{da.name}: cannot map dimensions {extra} besides time and "
                         f"{sorted(str(d) for d in grid_dims)}; select one value of each first")
    return lat, lon


def _map_box(lons: np.ndarray, lats: np.ndarray) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` degrees around the grid: a 5 % margin, at least 0.5°."""
    west, east = float(np.nanmin(lons)), float(np.nanmax(lons))
    south, north = float(np.nanmin(lats)), float(np.nanmax(lats))
    margin_x = max(0.05 * (east - west), 0.5)
    margin_y = max(0.05 * (north - south), 0.5)
    return (west - margin_x, max(south - margin_y, -90.0), east + margin_x,
            min(north + margin_y, 90.0))


# -- plots ---------------------------------------------------------------------------------------
def plot_index_map(
    path: str | os.PathLike[str],
    ds: xr.Dataset,
    variable: str | None = None,
    time: str | int | None = None,
) -> Path:
    """Map of one time step of an index on a latitude/longitude grid.

    Parameters
    ----------
    path
        PNG file to write.
    ds
        The index dataset (e.g. icclim's output): a variable with ``time`` (optional) and two
        spatial dimensions carrying latitude/longitude coordinates in degrees (1-D, or 2-D on
        curvilinear grids).
    variable
        Variable to map; by default the first data variable that is not a cell bound.
    time
        Time step: a position (``0`` is the first, ``-1`` the last) or a date string that
        xarray can select (``"1990"``, ``"1990-07"``; the first matching step). Default: the
        first.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        Unknown variable (the message lists the variables), no latitude/longitude coordinates,
        dimensions other than time and the grid's (named), or no such time step.
    """
    import cartopy.crs as ccrs  # heavy, and only the maps need it

    da = select_variable(ds, variable)
    lat, lon = _grid_coordinates(da)
    step = _one_time_step(da, time)
    order = lat.dims if lat.ndim == 2 else (*lat.dims, *lon.dims)  # (y, x) or (lat, lon)
    values = np.ma.masked_invalid(np.asarray(step.transpose(*order).values, dtype=float))
    lats = np.asarray(lat.values, dtype=float)
    lons = np.asarray(lon.values, dtype=float)
    box = _map_box(lons, lats)
    projection = ccrs.PlateCarree(central_longitude=0.5 * (box[0] + box[2]))
    geodetic = ccrs.PlateCarree()

    aspect = (box[3] - box[1]) / max(box[2] - box[0], 1e-6)
    figure = Figure(figsize=(9.0, float(np.clip(7.5 * aspect + 1.5, 4.0, 9.0))), dpi=_DPI)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1, projection=projection)
    ax.set_facecolor(_BACKGROUND)
    if box[2] - box[0] >= 359.0:
        ax.set_global()
    else:
        ax.set_extent((box[0], box[2], box[1], box[3]), crs=geodetic)

    finite = values.compressed()
    scale: dict[str, Any] = {"cmap": "viridis"}
    if finite.size and finite.min() < 0.0 < finite.max():
        scale = {"cmap": "RdBu_r", "norm": CenteredNorm(vcenter=0.0)}
    mesh = ax.pcolormesh(lons, lats, values, transform=geodetic, shading="auto", zorder=1,
                         **scale)
    draw_basemap(ax, box, geodetic, first_zorder=2)
    grid = ax.gridlines(crs=geodetic, draw_labels=True, linewidth=0.3, color="#909090",
                        alpha=0.7, linestyle="--")
    grid.top_labels = False
    grid.right_labels = False
    figure.colorbar(mesh, ax=ax, shrink=0.85, pad=0.04, label=_bar_label(da))
    period = f"\n{_period(ds, step)}" if "time" in step.coords else ""
    ax.set_title(f"{_title_name(da)}{period}", fontsize=10)
    return _save(figure, path)


def plot_index_series(
    path: str | os.PathLike[str],
    ds: xr.Dataset,
    variable: str | None = None,
) -> Path:
    """One line per location of an index over time, for station-like data.

    Parameters
    ----------
    path
        PNG file to write.
    ds
        The index dataset with a ``time`` dimension and a ``location``, ``station`` or
        ``site`` dimension; lines are labelled by that dimension's coordinate values.
    variable
        Variable to plot; by default the first data variable that is not a cell bound.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        Unknown variable, no time or location dimension, or other dimensions (all named).
    """
    da = select_variable(ds, variable)
    location = _location_dim(da)
    if location is None or "time" not in da.dims:
        raise ValueError(f"{da.name}: a series plot needs 'time' and one of "
                         f"{list(LOCATION_DIMS)} dimensions; its dimensions are "
                         f"{tuple(str(d) for d in da.dims)}")
    extra = [str(d) for d in da.dims if d not in ("time", location)]
    if extra:
        raise ValueError(f"{da.name}: cannot plot dimensions {extra} besides time and "
                         f"{location}; select one value of each first")
    # decimal years: works for numpy and cftime calendars alike, with no extra dependency
    time = da["time"]
    years = np.asarray(time.dt.year + (time.dt.dayofyear - 1) / time.dt.days_in_year,
                       dtype=float)
    labels = (da[location].values if location in da.coords
              else np.arange(da.sizes[location]))

    figure = Figure(figsize=(10.0, 5.5), dpi=_DPI)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1)
    series = da.transpose(location, "time").values
    for label, values in zip(labels, series, strict=True):
        ax.plot(years, values, marker="o" if years.size <= 60 else None, markersize=3.5,
                linewidth=1.2, label=str(label))
    ax.set_xlabel("year")
    ax.set_ylabel(_bar_label(da))
    ax.grid(True, linewidth=0.3, alpha=0.6)
    if len(labels) <= 15:
        ax.legend(fontsize=8, framealpha=0.85, title=str(location))
    first, last = _date(time.values[0]), _date(time.values[-1])
    ax.set_title(f"{_title_name(da)}\n{first} to {last}, {len(labels)} {location}(s)",
                 fontsize=10)
    figure.tight_layout()
    return _save(figure, path)


def plot_index(
    path: str | os.PathLike[str],
    ds: xr.Dataset,
    variable: str | None = None,
    time: str | int | None = None,
) -> Path:
    """A series plot for station-like data (see :data:`LOCATION_DIMS`), otherwise a map.

    ``time`` applies to maps only. Raises :class:`ValueError` naming the dimensions when the
    variable has neither a location dimension nor latitude/longitude coordinates.
    """
    da = select_variable(ds, variable)
    if _location_dim(da) is not None:
        return plot_index_series(path, ds, str(da.name))
    return plot_index_map(path, ds, str(da.name), time)


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight", pad_inches=0.15)
    figure.clear()
    return write_atomic(path, buffer.getvalue())
