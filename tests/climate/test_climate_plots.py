"""Plots of climate indices: offline maps of gridded indices, series of station-like indices."""

from __future__ import annotations

import re
from pathlib import Path

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.image import imread

from dare_cli.climate import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path: Path, minimum_bytes: int = 10_000) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > minimum_bytes
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left
    return (imread(path)[..., :3] * 255).round().astype(int)


def gridded(years: int = 3) -> xr.Dataset:
    """A yearly index on a 0.5-degree grid over Italy, icclim-like (time bounds, CF attrs)."""
    lat = np.arange(36.0, 47.5, 0.5)
    lon = np.arange(6.0, 19.0, 0.5)
    time = [cftime.DatetimeNoLeap(1991 + year, 7, 2) for year in range(years)]
    starts = xr.date_range("1991-01-01", periods=years, freq="YS", calendar="noleap",
                           use_cftime=True)
    ends = xr.date_range("1991-12-31", periods=years, freq="YE", calendar="noleap",
                         use_cftime=True)
    # more summer days in the south, and more every year
    values = (np.arange(years)[:, None, None] * 5.0 + 120.0 - 4.0 * (lat[None, :, None] - 36.0)
              + 0.0 * lon[None, None, :])
    su = xr.DataArray(values.astype("f4"), dims=("time", "lat", "lon"),
                      attrs={"units": "d", "long_name": "Number of Summer Days (Tmax > 25C)",
                             "standard_name": "number_of_days_with_air_temperature_above_"
                                              "threshold"})
    ds = xr.Dataset({"SU": su}, coords={"time": time, "lat": lat, "lon": lon})
    ds["lat"].attrs = {"units": "degrees_north", "standard_name": "latitude"}
    ds["lon"].attrs = {"units": "degrees_east", "standard_name": "longitude"}
    ds["time"].attrs["bounds"] = "time_bounds"
    ds = ds.assign_coords(time_bounds=(("time", "bounds"),
                                       np.stack([starts, ends], axis=1)))
    return ds


def stations() -> xr.Dataset:
    time = pd.date_range("1990-07-01", periods=4, freq="YS-JUL") + pd.Timedelta(days=1)
    names = ["Halifax", "Montréal", "Victoria"]
    values = np.array([[10, 12, 9, 14], [20, 25, 22, 28], [3, 1, 4, 2]], dtype="f4")
    ds = xr.Dataset({"SU": (("location", "time"), values,
                            {"units": "d", "long_name": "Number of Summer Days"})},
                    coords={"location": names, "time": time,
                            "lat": ("location", [44.6, 45.5, 48.4]),
                            "lon": ("location", [-63.6, -73.6, -123.4])})
    return ds


def test_map_offline(tmp_path, offline):
    path = tmp_path / "out" / "su_map.png"
    assert plots.plot_index_map(path, gridded()) == path
    image = check_png(path)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 100
    # viridis: the north (few days) is dark purple, the south (many) yellow
    yellow = (image[..., 0] > 200) & (image[..., 1] > 200) & (image[..., 2] < 100)
    purple = (image[..., 0] > 50) & (image[..., 0] < 90) & (image[..., 2] > 100) & (
        image[..., 1] < 40)
    assert yellow.sum() > 500 and purple.sum() > 500
    rows_yellow = np.nonzero(yellow)[0].mean()
    rows_purple = np.nonzero(purple)[0].mean()
    assert rows_purple < rows_yellow  # purple (north) above yellow (south)
    # coastlines drawn in their blue over the map
    coast = (np.abs(image - np.array([43, 93, 138])) < 25).all(axis=-1)
    assert coast.sum() > 200
    assert not any(p.is_file() for p in offline.rglob("*"))  # nothing cached by cartopy


def test_map_time_selection(tmp_path, offline):
    ds = gridded()
    first = check_png(plots.plot_index_map(tmp_path / "a.png", ds))
    by_date = check_png(plots.plot_index_map(tmp_path / "b.png", ds, "SU", "1993"))
    by_index = check_png(plots.plot_index_map(tmp_path / "c.png", ds, time=-1))
    assert np.array_equal(by_date, by_index)
    assert not np.array_equal(first, by_date)  # title and values differ
    with pytest.raises(ValueError, match=re.escape("time runs from 1991-07-02 to 1993-07-02")):
        plots.plot_index_map(tmp_path / "d.png", ds, time="2050")
    with pytest.raises(ValueError, match="time index 3 out of range"):
        plots.plot_index_map(tmp_path / "d.png", ds, time=3)


def test_map_anomalies_and_nans(tmp_path):
    ds = gridded(1)
    ds["SU"] = ds["SU"] - 90.0
    ds["SU"][0, :3, :3] = np.nan
    image = check_png(plots.plot_index_map(tmp_path / "anomaly.png", ds))
    red = (image[..., 0] - image[..., 2] > 60) & (image[..., 1] < 200)
    blue = (image[..., 2] - image[..., 0] > 60) & (image[..., 1] < 200)
    assert red.sum() > 500 and blue.sum() > 500  # diverging colours for both signs


def test_series(tmp_path, offline):
    path = plots.plot_index_series(tmp_path / "series.png", stations())
    image = check_png(path)
    tab_blue = (np.abs(image - np.array([31, 119, 180])) < 20).all(axis=-1)
    tab_orange = (np.abs(image - np.array([255, 127, 14])) < 20).all(axis=-1)
    tab_green = (np.abs(image - np.array([44, 160, 44])) < 20).all(axis=-1)
    assert tab_blue.sum() > 100 and tab_orange.sum() > 100 and tab_green.sum() > 100


def test_plot_index_chooses(tmp_path, offline):
    series = check_png(plots.plot_index(tmp_path / "s.png", stations()))
    expected = check_png(plots.plot_index_series(tmp_path / "s2.png", stations()))
    assert np.array_equal(series, expected)  # station data has lat/lon too: still a series
    grid = check_png(plots.plot_index(tmp_path / "g.png", gridded(), time=1))
    expected = check_png(plots.plot_index_map(tmp_path / "g2.png", gridded(), time=1))
    assert np.array_equal(grid, expected)


def test_bad_input(tmp_path):
    ds = xr.Dataset({"SU": (("time", "x"), np.zeros((2, 3)))})
    with pytest.raises(ValueError, match=re.escape("its dimensions are ('time', 'x')")):
        plots.plot_index(tmp_path / "x.png", ds)
    with pytest.raises(ValueError, match=re.escape("its variables: SU, TX90p")):
        plots.plot_index(tmp_path / "x.png", gridded().assign(TX90p=gridded()["SU"]), "TG")
    with pytest.raises(ValueError, match=re.escape("dimensions ['percentiles'] besides")):
        plots.plot_index_map(tmp_path / "x.png",
                             gridded().expand_dims(percentiles=[90]).transpose("time", ...))
    with pytest.raises(ValueError, match="no data variable"):
        plots.plot_index(tmp_path / "x.png", xr.Dataset())
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_map_of_icclim_output(tmp_path, offline):
    icclim = pytest.importorskip("icclim")
    rng = np.random.default_rng(1)
    time = xr.date_range("1991-01-01", periods=730, freq="D", calendar="noleap",
                         use_cftime=True)
    lat = np.linspace(40.0, 50.0, 6)
    lon = np.linspace(0.0, 12.0, 7)
    doy = np.arange(730) % 365
    tasmax = (288.0 + 12.0 * np.cos(2 * np.pi * (doy - 200) / 365))[:, None, None] \
        - 0.6 * (lat[None, :, None] - 40.0) + rng.normal(0, 3, (730, 6, 7))
    ds = xr.Dataset({"tasmax": (("time", "lat", "lon"), tasmax.astype("f4"),
                                {"units": "K", "standard_name": "air_temperature"})},
                    coords={"time": time, "lat": ("lat", lat, {"units": "degrees_north"}),
                            "lon": ("lon", lon, {"units": "degrees_east"})})
    result = icclim.index(in_files=ds, index_name="SU").load()
    path = plots.plot_index(tmp_path / "icclim_su.png", result, time="1992")
    image = check_png(path)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 100
