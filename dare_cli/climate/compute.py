"""Climate indices with icclim, whole or tile by tile, and the netCDF they are written to.

A run opens its inputs lazily, cuts them into spatial tiles (:func:`plan_tiles`), computes
each tile with ``icclim.index`` (:func:`compute_tile`) and joins the tiles again
(:func:`assemble`). The joined result is identical to icclim's result on the whole input
(:func:`compute_whole`) because tiles never split the time axis: a percentile threshold needs
the whole base period of its cell and a spell (CDD, WSDI, ...) must not be cut in two, and
icclim computes every spatial cell independently of the others.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr

from dare_cli.climate.errors import ClimateError, ClimateUsageError
from dare_cli.climate.indices import ECAD, resolve_index

__all__ = [
    "SPATIAL_DIMS",
    "STATION_DIMS",
    "TILE_BYTES",
    "IndexRequest",
    "Tile",
    "add_history",
    "assemble",
    "compute_tile",
    "compute_tile_requests",
    "compute_whole",
    "index_variables",
    "open_inputs",
    "plan_tiles",
    "write_netcdf",
]

TIME = "time"
STATION_DIMS = ("location", "station", "site")
SPATIAL_DIMS = ("lat", "lon", "y", "x", "rlat", "rlon", *STATION_DIMS)
TILE_BYTES = 64 * 2**20
"""Input bytes per tile when no tile sizes are given (all index variables, whole time axis)."""

# icclim.index keywords that IndexRequest sets through its own fields, or that dare controls.
_RESERVED = frozenset(
    {
        "in_files",
        "out_file",
        "index_name",
        "var_name",
        "slice_mode",
        "time_range",
        "base_period_time_range",
        "threshold",
        "out_unit",
        "callback",
        "indice_name",
        "user_index",
        "user_indice",
    }
)


def _files(paths: Sequence[str | os.PathLike[str]]) -> str:
    return ", ".join(str(path) for path in paths)


@dataclass(frozen=True)
class IndexRequest:
    """One index to compute, as icclim parameters.

    Attributes
    ----------
    index : str
        icclim name of the index, any case (``"SU"``, ``"tx90p"``, ``"count_occurrences"``).
    var_name : tuple of str
        Input variables; ``()`` lets icclim choose them from the index.
    slice_mode : str
        Output period: ``"year"``, ``"month"``, ``"DJF"``, ... (icclim ``slice_mode``).
    time_range : (str, str) or None
        First and last date of the studied period; None = all the data.
    base_period : (str, str) or None
        Reference period of percentile thresholds (icclim ``base_period_time_range``).
    threshold : tuple of str or None
        Thresholds of generic indices with units, e.g. ``("> 25 degC",)``.
    out_unit : str or None
        Unit of the result (e.g. ``"%"`` for percentile counts).
    extra : tuple of (str, Any)
        Other ``icclim.index`` keyword arguments, as sorted pairs.
    """

    index: str
    var_name: tuple[str, ...] = ()
    slice_mode: str = "year"
    time_range: tuple[str, str] | None = None
    base_period: tuple[str, str] | None = None
    threshold: tuple[str, ...] | None = None
    out_unit: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()

    def icclim_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``icclim.index`` for this request (without ``in_files``).

        Raises
        ------
        ClimateUsageError
            Unknown index, or an ``extra`` keyword icclim does not have or that a field of
            the request sets.
        """
        info = resolve_index(self.index)
        kwargs: dict[str, Any] = {
            "index_name": info.name,
            "slice_mode": self.slice_mode,
            "logs_verbosity": "SILENT",
        }
        if self.var_name:
            kwargs["var_name"] = list(self.var_name)
        if self.time_range is not None:
            kwargs["time_range"] = list(self.time_range)
        if self.base_period is not None:
            kwargs["base_period_time_range"] = list(self.base_period)
        if self.threshold:
            kwargs["threshold"] = (
                self.threshold[0] if len(self.threshold) == 1 else list(self.threshold)
            )
        if self.out_unit is not None:
            kwargs["out_unit"] = self.out_unit
        if self.extra:
            from icclim.main import index

            known = set(inspect.signature(index).parameters) - _RESERVED
            for key, value in self.extra:
                if key not in known:
                    raise ClimateUsageError(
                        f"index {info.name}: {key!r} is not an icclim.index option dare "
                        f"passes on (options: {', '.join(sorted(known))})"
                    )
                kwargs[key] = value
        return kwargs


@dataclass(frozen=True)
class Tile:
    """A block of spatial cells with the whole time axis.

    Attributes
    ----------
    number : int
        Position of the tile in the plan, from 0.
    selection : tuple of (str, int, int)
        ``(dim, start, stop)`` positional ranges along spatial dimensions; ``()`` = the
        whole input.
    """

    number: int
    selection: tuple[tuple[str, int, int], ...]

    def indexers(self) -> dict[str, slice]:
        """The selection as ``Dataset.isel`` indexers."""
        return {dim: slice(start, stop) for dim, start, stop in self.selection}


def _open_one(path: str | os.PathLike[str]) -> xr.Dataset:
    try:
        return xr.open_dataset(path, chunks={})
    except Exception as exc:  # netCDF4, h5netcdf and scipy raise many kinds
        raise ClimateError(f"cannot read {path}: {exc}") from exc


def open_inputs(
    paths: Sequence[str | os.PathLike[str]], variables: Sequence[str] = ()
) -> xr.Dataset:
    """Open netCDF files or OPeNDAP URLs lazily (dask arrays) as one dataset.

    Parameters
    ----------
    paths : sequence of str or path
        Files or URLs: several variables (``tasmax``, ``tasmin`` files) and/or successive
        periods of the same variables, combined by their coordinates.
    variables : sequence of str
        Keep only these data variables; ``()`` keeps all.

    Returns
    -------
    xarray.Dataset
        Nothing loaded yet; global attributes are those of the first file.

    Raises
    ------
    ClimateError
        A file cannot be read or the files do not combine; the message names them.
    ClimateUsageError
        A requested variable is in none of the files.
    """
    if not paths:
        raise ClimateUsageError("no input files")
    datasets = [_open_one(path) for path in paths]
    if variables:
        missing = [v for v in variables if not any(v in ds.data_vars for ds in datasets)]
        if missing:
            found = sorted({str(v) for ds in datasets for v in ds.data_vars})
            raise ClimateUsageError(
                f"variable {', '.join(missing)} not found in {_files(paths)} "
                f"(variables there: {', '.join(found)})"
            )
        datasets = [ds[[v for v in variables if v in ds.data_vars]] for ds in datasets]
    if len(datasets) == 1:
        return datasets[0]
    try:
        return xr.combine_by_coords(datasets, combine_attrs="override")  # type: ignore[return-value]
    except Exception as exc:
        raise ClimateError(f"cannot combine {_files(paths)}: {exc}") from exc


def index_variables(ds: xr.Dataset, request: IndexRequest, paths: Sequence[Any] = ()) -> list[str]:
    """The data variables icclim will use for ``request``, chosen the way icclim does.

    Raises
    ------
    ClimateUsageError
        A named variable is missing, or the index's variables are not in ``ds``.
    """
    from icclim._core.input_parsing import guess_var_names
    from icclim.ecad.registry import EcadIndexRegistry
    from icclim.exception import InvalidIcclimArgumentError

    info = resolve_index(request.index)
    where = f" in {_files(paths)}" if paths else ""
    available = ", ".join(str(v) for v in ds.data_vars)
    if request.var_name:
        missing = [v for v in request.var_name if v not in ds.data_vars]
        if missing:
            raise ClimateUsageError(
                f"index {info.name}: variable {', '.join(missing)} not found{where} "
                f"(variables there: {available})"
            )
        return list(request.var_name)
    standard = EcadIndexRegistry.lookup_no_error(info.name) if info.group == ECAD else None
    try:
        names = guess_var_names(ds, None, standard)
    except InvalidIcclimArgumentError as exc:
        needs = " + ".join(info.variables) or "a variable"
        raise ClimateUsageError(
            f"index {info.name} needs {needs}, not found{where} (variables there: "
            f"{available}); name the variable to use"
        ) from exc
    return [str(name) for name in names]


def _check_time_range(
    ds: xr.Dataset, what: str, bounds: tuple[str, str] | None, paths: Sequence[Any]
) -> None:
    if bounds is None:
        return
    if TIME not in ds.coords:
        raise ClimateUsageError(f"{_files(paths)} has no 'time' coordinate")
    try:
        inside = ds[TIME].sel({TIME: slice(*bounds)}).size
    except (ValueError, KeyError, TypeError) as exc:
        raise ClimateUsageError(f"{what} {bounds[0]}..{bounds[1]}: {exc}") from exc
    if inside == 0:
        first, last = (str(ds[TIME].values[i])[:10] for i in (0, -1))
        raise ClimateUsageError(
            f"{what} {bounds[0]}..{bounds[1]} is outside the data of {_files(paths)} "
            f"({first}..{last})"
        )


def _prepare(paths: Sequence[Any], request: IndexRequest) -> xr.Dataset:
    """Open the inputs lazily, keep the index's variables and check the time ranges."""
    ds = open_inputs(paths)
    names = index_variables(ds, request, paths)
    ds = ds[names]
    _check_time_range(ds, "time range", request.time_range, paths)
    _check_time_range(ds, "base period", request.base_period, paths)
    return ds


def _run_icclim(ds: xr.Dataset, request: IndexRequest, paths: Sequence[Any]) -> xr.Dataset:
    """Call ``icclim.index`` on a dataset; load the result; translate icclim's errors."""
    import icclim
    from icclim.exception import InvalidIcclimArgumentError
    from pint.errors import DimensionalityError, UndefinedUnitError

    kwargs = request.icclim_kwargs()
    name = kwargs["index_name"]
    units = ", ".join(f"{v} [{ds[v].attrs.get('units', 'no units')}]" for v in ds.data_vars)
    try:
        result: xr.Dataset = icclim.index(in_files=ds, **kwargs)
        return result.load()
    except (UndefinedUnitError, DimensionalityError) as exc:
        raise ClimateUsageError(
            f"index {name}: unusable unit in {_files(paths)}, variables {units}: {exc}"
        ) from exc
    except InvalidIcclimArgumentError as exc:
        raise ClimateUsageError(f"index {name} on {_files(paths)}: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ClimateError(f"index {name} failed on {_files(paths)} ({units}): {exc}") from exc


def _spatial_dims(ds: xr.Dataset) -> list[str]:
    """Spatial dimensions of the data variables, in the order they appear."""
    dims: list[str] = []
    for var in ds.data_vars.values():
        dims.extend(str(d) for d in var.dims if d in SPATIAL_DIMS and d not in dims)
    return dims


def plan_tiles(
    paths: Sequence[Any],
    request: IndexRequest,
    tile_sizes: Mapping[str, int] | None = None,
    tile_bytes: int = TILE_BYTES,
) -> list[Tile]:
    """Cut the input into spatial tiles, each with the whole time axis.

    Parameters
    ----------
    paths : sequence of str or path
        Input files or URLs (only their metadata is read).
    request : IndexRequest
        The index; its variables decide which dimensions are spatial.
    tile_sizes : mapping of str to int, optional
        Cells per tile along spatial dimensions (``{"lat": 6, "lon": 6}``,
        ``{"location": 2}``); dimensions not named stay whole. If None, the rule is: tiles
        of about ``tile_bytes`` of input (all index variables, whole time axis), made of
        whole slabs along the first spatial dimension (rows of a grid,
        groups of stations); only if one slab is larger is the next dimension cut too.
    tile_bytes : int
        Input bytes per automatic tile (default :data:`TILE_BYTES`, 64 MiB).

    Returns
    -------
    list of Tile
        Numbered from 0, row-major over the tiled dimensions.

    Raises
    ------
    ClimateUsageError
        A size names the time axis, a dimension the data lacks, or is not positive.
    """
    ds = _prepare(paths, request)
    spatial = _spatial_dims(ds)
    if tile_sizes is None:
        sizes = _automatic_sizes(ds, spatial, tile_bytes)
    else:
        for dim, size in tile_sizes.items():
            if dim == TIME or dim not in spatial:
                raise ClimateUsageError(
                    f"cannot tile along {dim!r}: tiles cut only spatial dimensions "
                    f"({', '.join(spatial) or 'none in the data'}), never time"
                )
            if size < 1:
                raise ClimateUsageError(f"tile size along {dim!r} must be positive, not {size}")
        sizes = dict(tile_sizes)
    tiled = [dim for dim in spatial if dim in sizes]
    ranges = [
        [(a, min(a + sizes[dim], ds.sizes[dim])) for a in range(0, ds.sizes[dim], sizes[dim])]
        for dim in tiled
    ]
    tiles: list[Tile] = []
    for combination in _product(ranges):
        selection = tuple((dim, a, b) for dim, (a, b) in zip(tiled, combination, strict=True))
        tiles.append(Tile(number=len(tiles), selection=selection))
    return tiles


def _product(ranges: list[list[tuple[int, int]]]) -> list[list[tuple[int, int]]]:
    combos: list[list[tuple[int, int]]] = [[]]
    for options in ranges:
        combos = [[*combo, option] for combo in combos for option in options]
    return combos


def _automatic_sizes(
    ds: xr.Dataset, spatial: list[str], tile_bytes: int = TILE_BYTES
) -> dict[str, int]:
    """Tile sizes giving about ``tile_bytes`` of input per tile (see :func:`plan_tiles`)."""
    if not spatial:
        return {}
    per_cell = sum(
        var.dtype.itemsize * math.prod(n for d, n in var.sizes.items() if d not in spatial)
        for var in ds.data_vars.values()
    )
    sizes: dict[str, int] = {}
    budget = max(tile_bytes // max(per_cell, 1), 1)  # cells per tile
    # a slab along a dimension: one index of it, all cells of the dimensions after it
    for position, dim in enumerate(spatial):
        slab = math.prod(ds.sizes[d] for d in spatial[position + 1 :])
        if slab <= budget:
            sizes[dim] = max(budget // slab, 1)
            break
        sizes[dim] = 1
    return {dim: size for dim, size in sizes.items() if size < ds.sizes[dim]}


def compute_tile(paths: Sequence[Any], request: IndexRequest, tile: Tile) -> xr.Dataset:
    """Compute the index on one tile: open lazily, select the tile, load only it.

    icclim builds a dask graph even on loaded data; it runs here with dask's synchronous
    scheduler, since the parallelism comes from the engine's workers (one tile each).

    Returns
    -------
    xarray.Dataset
        icclim's result for the tile, loaded, with icclim's metadata.

    Raises
    ------
    ClimateUsageError, ClimateError
        Bad request, unreadable input or icclim failure; the message names the files.
    """
    ds = _prepare(paths, request)
    for dim, start, stop in tile.selection:
        if dim not in ds.dims or not 0 <= start < stop <= ds.sizes[dim]:
            raise ClimateError(
                f"tile {tile.number}: {dim}[{start}:{stop}] is not in {_files(paths)}"
            )
    # Synchronous dask throughout: the engine's workers are forked processes, and a dask
    # thread pool created before the fork does not exist in the child (a load would wait on
    # it forever); HDF5 is not thread-safe either.
    with dask.config.set(scheduler="synchronous"):
        try:
            part = ds.isel(tile.indexers()).load()
        except Exception as exc:
            raise ClimateError(
                f"cannot read tile {tile.number} of {_files(paths)}: {exc}") from exc
        return _run_icclim(part, request, paths)


def compute_tile_requests(
    paths: Sequence[Any], requests: Sequence[IndexRequest], tile: Tile
) -> list[xr.Dataset]:
    """Compute several indices on one tile, reading the tile once.

    The tile is loaded with the union of the variables the requests need; each request then
    runs on its own variables, exactly as :func:`compute_tile` would.

    Returns
    -------
    list of xarray.Dataset
        One result per request, in order.
    """
    if len(requests) == 1:
        return [compute_tile(paths, requests[0], tile)]
    ds = open_inputs(paths)
    needed = [index_variables(ds, request, paths) for request in requests]
    for request in requests:
        _check_time_range(ds, "time range", request.time_range, paths)
        _check_time_range(ds, "base period", request.base_period, paths)
    union = list(dict.fromkeys(name for names in needed for name in names))
    ds = ds[union]
    for dim, start, stop in tile.selection:
        if dim not in ds.dims or not 0 <= start < stop <= ds.sizes[dim]:
            raise ClimateError(
                f"tile {tile.number}: {dim}[{start}:{stop}] is not in {_files(paths)}"
            )
    with dask.config.set(scheduler="synchronous"):  # see compute_tile
        try:
            part = ds.isel(tile.indexers()).load()
        except Exception as exc:
            raise ClimateError(
                f"cannot read tile {tile.number} of {_files(paths)}: {exc}") from exc
        return [_run_icclim(part[names], request, paths)
                for names, request in zip(needed, requests, strict=True)]


def compute_whole(paths: Sequence[Any], request: IndexRequest) -> xr.Dataset:
    """Compute the index on the whole input with icclim, the same way (the reference).

    The input stays lazy: icclim's own dask graph reads it, with dask's synchronous
    scheduler (HDF5 is not thread-safe: threaded reads crashed once in our tests).

    Returns
    -------
    xarray.Dataset
        icclim's result, loaded.
    """
    ds = _prepare(paths, request)
    with dask.config.set(scheduler="synchronous"):
        return _run_icclim(ds, request, paths)


def assemble(
    parts: Sequence[tuple[Tile, xr.Dataset]], paths: Sequence[Any], request: IndexRequest
) -> xr.Dataset:
    """Join the tiles' results into the result of the whole input.

    Variables without a tiled dimension (``time_bounds``) and global attributes are taken
    from the first tile (icclim's ``history`` therefore carries that tile's timestamp).

    Raises
    ------
    ClimateError
        Tiles are missing, repeated, or do not cover the input.
    """
    if not parts:
        raise ClimateError("no tiles to assemble")
    ordered = sorted(parts, key=lambda part: part[0].number)
    dims = [dim for dim, _, _ in ordered[0][0].selection]
    if not dims:
        if len(ordered) != 1:
            raise ClimateError(f"{len(ordered)} tiles cover the whole input, expected one")
        return ordered[0][1]
    by_start: dict[tuple[int, ...], xr.Dataset] = {}
    for tile, result in ordered:
        if [dim for dim, _, _ in tile.selection] != dims:
            raise ClimateError(f"tile {tile.number} is cut along other dimensions than tile 0")
        key = tuple(start for _, start, _ in tile.selection)
        if key in by_start:
            raise ClimateError(f"tile {tile.number} repeats another tile")
        by_start[key] = result
    starts = [sorted({key[i] for key in by_start}) for i in range(len(dims))]

    def nest(level: int, prefix: tuple[int, ...]) -> Any:
        if level == len(dims):
            if prefix not in by_start:
                raise ClimateError(f"tile at {dict(zip(dims, prefix, strict=True))} is missing")
            return by_start[prefix]
        return [nest(level + 1, (*prefix, start)) for start in starts[level]]

    combined = xr.combine_nested(
        nest(0, ()),
        concat_dim=dims,
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="exact",
        combine_attrs="override",
    )
    expected = xr.open_dataset(paths[0], chunks={}) if len(paths) == 1 else open_inputs(paths)
    for dim in dims:
        if combined.sizes[dim] != expected.sizes[dim]:
            raise ClimateError(
                f"tiles cover {combined.sizes[dim]} of {expected.sizes[dim]} cells along {dim}"
            )
    return combined


def add_history(ds: xr.Dataset, entry: str) -> xr.Dataset:
    """Append ``"<UTC ISO time> dare <version>: <entry>"`` to the global ``history``.

    CF asks applications to *append* a line to ``history``, so the newest line is the last
    (icclim does the same). Returns a new dataset; ``ds`` is unchanged.
    """
    from dare_cli import __version__

    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    line = f"{stamp} dare {__version__}: {entry}"
    old = str(ds.attrs.get("history", ""))
    out = ds.copy()
    out.attrs = {**ds.attrs, "history": f"{old}\n{line}" if old.strip() else line}
    return out


def _is_cftime(var: xr.Variable) -> bool:
    import cftime

    return var.size > 0 and isinstance(var.values.flat[0], cftime.datetime)


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike[str]) -> Path:
    """Write ``ds`` to netCDF-4 atomically with an encoding that depends only on the data.

    Input encodings (chunk sizes, source file, compression) are dropped; floating-point
    variables are written zlib-compressed (level 4, shuffled) with NaN as fill value;
    coordinates get no fill value; times and time bounds share the time axis' units and
    calendar (``hours since 1850-01-01 00:00:00`` if it has none).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from engine.files import atomic_path

    out = ds.copy()
    encoding: dict[str, dict[str, Any]] = {}
    # times and their bounds share the time axis' units (CF); a default if it has none
    time_enc = out[TIME].encoding if TIME in out.variables else {}
    shared = {"units": time_enc.get("units", "hours since 1850-01-01 00:00:00")}
    if "calendar" in time_enc:
        shared["calendar"] = time_enc["calendar"]
    for name, var in out.variables.items():
        old = var.encoding
        enc: dict[str, Any] = {k: old[k] for k in ("units", "calendar") if k in old}
        if var.dtype.kind == "M" or (var.dtype.kind == "O" and _is_cftime(var)):
            enc = dict(shared)
        if np.issubdtype(var.dtype, np.floating):
            enc.update(zlib=True, complevel=4, shuffle=True)
            enc["_FillValue"] = None if name in out.coords else np.nan
        elif name in out.coords or var.dtype.kind in "OMmU":
            enc["_FillValue"] = None
        var.encoding = {}
        encoding[str(name)] = enc
    target = Path(path)
    with atomic_path(target) as temporary:
        out.to_netcdf(temporary, format="NETCDF4", engine="netcdf4", encoding=encoding)
    return target
