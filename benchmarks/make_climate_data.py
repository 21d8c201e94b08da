"""Write a synthetic daily maximum temperature (tasmax) netCDF for the climate benchmark.

The field is a seasonal cycle on a latitude gradient plus Gaussian noise, float32 in kelvin,
with CF attributes (``standard_name: air_temperature``, ``units: K``), 1-D ``lat``/``lon``
coordinates and a ``noleap`` (default) or ``standard`` calendar:

    tasmax = 273.15 + (30 - 0.5 (lat - 35)) + 10 cos(2 pi (doy - 200) / 365.25) + N(0, 3)  [K]

The noise of each year comes from ``numpy.random.default_rng([seed, year])``, so a file is the
same whatever the chunking. The file is written one year at a time with netCDF4 (a year of
100 x 100 cells is 15 MB), so memory stays far below 1 GB whatever the size: 30 years on
100 x 100 (noleap) make 438 MB of data.

Usage::

    python benchmarks/make_climate_data.py --years 30 --ny 100 --nx 100 --out DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cftime
import netCDF4
import numpy as np

UNITS = "days since 1950-01-01 00:00:00"


def file_name(years: int, ny: int, nx: int, start: int = 1981, calendar: str = "noleap") -> str:
    """The file name that encodes the parameters of a synthetic file."""
    return f"tasmax_day_synthetic_{start}-{start + years - 1}_{ny}x{nx}_{calendar}.nc"


def make_tasmax(out: str | Path, years: int = 30, ny: int = 100, nx: int = 100, *,
                start: int = 1981, calendar: str = "noleap", seed: int = 20240611) -> Path:
    """Write the synthetic tasmax file ``out/<file_name(...)>`` and return its path.

    Parameters
    ----------
    out
        Directory (created if missing).
    years, ny, nx
        Number of years (from 1 January ``start``), latitudes and longitudes.
    start
        First year.
    calendar
        CF calendar: ``"noleap"`` or ``"standard"``.
    seed
        Seed of the noise.
    """
    if calendar not in ("noleap", "standard"):
        raise ValueError(f"calendar must be 'noleap' or 'standard', not {calendar!r}")
    if min(years, ny, nx) < 1:
        raise ValueError("years, ny and nx must be positive")
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name(years, ny, nx, start, calendar)
    partial = path.with_name(f".{path.name}.part")
    first = cftime.date2num(cftime.datetime(start, 1, 1, calendar=calendar), UNITS, calendar)
    last = cftime.date2num(cftime.datetime(start + years, 1, 1, calendar=calendar), UNITS,
                           calendar)
    days = np.arange(first, last, dtype="f8")
    lat = np.linspace(35.0, 60.0, ny)
    lon = np.linspace(-10.0, 30.0, nx)
    climate = (273.15 + 30.0 - 0.5 * (lat - 35.0))[:, None] + np.zeros(nx)[None, :]

    with netCDF4.Dataset(partial, "w", format="NETCDF4") as nc:
        nc.createDimension("time", days.size)
        nc.createDimension("lat", ny)
        nc.createDimension("lon", nx)
        nc.setncatts({"Conventions": "CF-1.8",
                      "title": "Synthetic daily maximum near-surface air temperature",
                      "source": "dare benchmarks/make_climate_data.py (seasonal cycle + "
                                f"Gaussian noise, seed {seed})"})
        time_var = nc.createVariable("time", "f8", ("time",))
        time_var.setncatts({"standard_name": "time", "long_name": "time", "units": UNITS,
                            "calendar": calendar, "axis": "T"})
        time_var[:] = days
        for name, values, units, axis, long_name in (
                ("lat", lat, "degrees_north", "Y", "latitude"),
                ("lon", lon, "degrees_east", "X", "longitude")):
            variable = nc.createVariable(name, "f8", (name,))
            variable.setncatts({"standard_name": long_name, "long_name": long_name,
                                "units": units, "axis": axis})
            variable[:] = values
        tasmax = nc.createVariable("tasmax", "f4", ("time", "lat", "lon"),
                                   chunksizes=(365, ny, nx))
        tasmax.setncatts({"standard_name": "air_temperature", "units": "K",
                          "long_name": "Daily Maximum Near-Surface Air Temperature",
                          "cell_methods": "time: maximum"})
        for year in range(start, start + years):
            begin = cftime.date2num(cftime.datetime(year, 1, 1, calendar=calendar), UNITS,
                                    calendar)
            end = cftime.date2num(cftime.datetime(year + 1, 1, 1, calendar=calendar), UNITS,
                                  calendar)
            i0, i1 = int(begin - first), int(end - first)
            doy = np.arange(i1 - i0, dtype="f8")[:, None, None] + 1.0
            rng = np.random.default_rng([seed, year])
            block = (climate[None] + 10.0 * np.cos(2 * np.pi * (doy - 200.0) / 365.25)
                     + rng.normal(0.0, 3.0, size=(i1 - i0, ny, nx)))
            tasmax[i0:i1] = block.astype("f4")
    partial.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=30)
    parser.add_argument("--ny", type=int, default=100)
    parser.add_argument("--nx", type=int, default=100)
    parser.add_argument("--start", type=int, default=1981, help="first year (default 1981)")
    parser.add_argument("--calendar", choices=("noleap", "standard"), default="noleap")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    path = make_tasmax(args.out, args.years, args.ny, args.nx, start=args.start,
                       calendar=args.calendar, seed=args.seed)
    print(f"{path}  ({path.stat().st_size / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
