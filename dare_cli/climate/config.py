"""The job file of ``dare climate run``: a TOML file, checked key by key and value by value.

One ``[run]`` table names the inputs and how to compute, then one ``[[index]]`` table per index
to write::

    [run]
    inputs = ["tasmax_2095.nc"]       # netCDF files, OPeNDAP URLs, webdav+https:// paths
    mapping = "multi:4"               # NAME[:N]; workers = N says the same
    tile = {lat = 12, lon = 12}       # spatial tile sizes; unset: one tile

    [[index]]
    name = "SU"                       # icclim index
    output = "su.nc"
    slice_mode = "year"               # var, time_range, base_period, threshold, out_unit,
                                      # stage_out (a WebDAV URL to upload the output to)

An unknown table or key is an error naming the file, the table and the closest known key (the
wording of :mod:`dare_cli.ra.config`); a value of the wrong type or out of range names the key,
the file and what was expected. Relative paths are resolved against the folder of the file.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dare_cli.climate.compute import IndexRequest
from dare_cli.climate.errors import ClimateUsageError
from dare_cli.climate.pipeline import IndexJob
from dare_cli.tomlfile import read_toml
from dare_cli.tomlkeys import suggestion, unknown_key
from engine.pipeline import MappingSpecError, parse_mapping, with_workers

__all__ = ["DEFAULT_MAPPING", "INDEX_KEYS", "RUN_KEYS", "load_job", "parse_job"]

#: Keys of the ``[run]`` table and of each ``[[index]]`` table.
RUN_KEYS = ("inputs", "mapping", "workers", "tile")
INDEX_KEYS = ("name", "output", "var", "slice_mode", "time_range", "base_period", "threshold",
              "out_unit", "stage_out")
TABLES = ("run", "index")
#: The mapping of a job file without ``[run] mapping``.
DEFAULT_MAPPING = "simple"

Check = Callable[[Any, str], Any]


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ClimateUsageError(f"{what} must be a non-empty string, not {value!r}")
    return value


def _date(value: Any, what: str) -> str:
    """A date as icclim reads it: a string, or a TOML date written as ``YYYY-MM-DD``."""
    if isinstance(value, datetime.date):
        return value.isoformat()
    return _string(value, what)


def _strings(value: Any, what: str, check: Check = _string) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ClimateUsageError(f"{what} must be an array of strings, not {value!r}")
    return tuple(check(item, what) for item in value)


def _period(value: Any, what: str) -> tuple[str, str]:
    dates = _strings(value, what, _date)
    if len(dates) != 2:
        raise ClimateUsageError(f"{what} must be an array of 2 dates [START, END], "
                                f"not {value!r}")
    return dates[0], dates[1]


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ClimateUsageError(f"{what} must be an integer >= 1, not {value!r}")
    return value


def _tile(value: Any, what: str) -> dict[str, int]:
    if not isinstance(value, dict) or not value:
        raise ClimateUsageError(f"{what} must be a table of DIM = size, e.g. "
                                f"{{lat = 12, lon = 12}}, not {value!r}")
    return {str(dim): _count(size, f"{what} {dim!r}") for dim, size in value.items()}


def _keys(table: Any, known: tuple[str, ...], where: str) -> Mapping[str, Any]:
    """``table`` when it is a table holding known keys only."""
    if not isinstance(table, dict):
        raise ClimateUsageError(f"{where}: must be a table, not {table!r}")
    for key in table:
        if key not in known:
            raise ClimateUsageError(unknown_key(where, key, known))
    return table


def _run_mapping(run: Mapping[str, Any], where: str) -> tuple[str, int | None]:
    """``[run] mapping`` and ``workers``: ``(name, workers)``, which must agree."""
    workers = _count(run["workers"], f"{where}: 'workers'") if "workers" in run else None
    if "mapping" not in run:
        return DEFAULT_MAPPING, workers
    text = _string(run["mapping"], f"{where}: 'mapping'")
    try:
        return with_workers(parse_mapping(text, f"{where}: 'mapping'"), workers,
                            f"{where}: 'mapping'")
    except MappingSpecError as error:
        raise ClimateUsageError(str(error)) from None


def _index(table: Any, where: str, local: Callable[[str], str]
           ) -> tuple[IndexRequest, Path, str | None]:
    """One ``[[index]]`` table: the request, its output file and its stage-out URL."""
    table = _keys(table, INDEX_KEYS, where)
    missing = [key for key in ("name", "output") if key not in table]
    if missing:
        raise ClimateUsageError(f"{where}: 'name' and 'output' are required (missing: "
                                f"{', '.join(repr(key) for key in missing)})")

    def optional(key: str, check: Check) -> Any:
        return check(table[key], f"{where}: {key!r}") if key in table else None

    request = IndexRequest(
        index=_string(table["name"], f"{where}: 'name'"),
        var_name=optional("var", _strings) or (),
        slice_mode=optional("slice_mode", _string) or IndexRequest.slice_mode,
        time_range=optional("time_range", _period),
        base_period=optional("base_period", _period),
        threshold=optional("threshold", _strings),
        out_unit=optional("out_unit", _string),
    )
    output = Path(local(_string(table["output"], f"{where}: 'output'")))
    return request, output, optional("stage_out", _string)


def parse_job(data: Mapping[str, Any], path: Path) -> IndexJob:
    """Build the :class:`~dare_cli.climate.pipeline.IndexJob` of parsed TOML read from ``path``.

    Raises
    ------
    ClimateUsageError
        An unknown table or key, a value of the wrong type or out of range, no input, no
        ``[[index]]`` table, or ``mapping``'s ``:N`` disagreeing with ``workers``.
    """
    for key in data:
        if key not in TABLES:
            raise ClimateUsageError(f"{path}: unknown table [{key}]{suggestion(key, TABLES)}; "
                                    "tables: [run], [[index]]")
    where = f"{path} [run]"
    run = _keys(data.get("run", {}), RUN_KEYS, where)
    base = path.parent

    def local(value: str) -> str:
        return value if "://" in value or Path(value).is_absolute() else str(base / value)

    inputs = tuple(local(i) for i in _strings(run.get("inputs", []), f"{where}: 'inputs'"))
    if not inputs:
        raise ClimateUsageError(f"{where}: 'inputs' lists no file")
    mapping, workers = _run_mapping(run, where)
    tables = data.get("index", [])
    if not isinstance(tables, list) or not tables:
        raise ClimateUsageError(f"{path}: no [[index]] table")
    indices = [_index(table, f"{path} [[index]] #{number}", local)
               for number, table in enumerate(tables, start=1)]
    stage = tuple(target for _, _, target in indices)
    return IndexJob(inputs=inputs, requests=tuple(request for request, _, _ in indices),
                    outputs=tuple(output for _, output, _ in indices),
                    tile=_tile(run["tile"], f"{where}: 'tile'") if "tile" in run else None,
                    mapping=mapping, workers=workers,
                    command=f"dare climate run {path.name}",
                    stage_out=stage if any(stage) else ())


def load_job(path: Path) -> IndexJob:
    """Read and check a ``dare climate run`` job file.

    Raises
    ------
    ClimateUsageError
        A missing or unreadable file, invalid TOML, or any of :func:`parse_job`'s errors.
    """
    path = Path(path)
    return parse_job(read_toml(path, ClimateUsageError), path)
