"""Tiles joined == icclim on the whole input, on real data; bad input gives clear errors."""


import cftime
import numpy as np
import pytest
import xarray as xr
from climate_helpers import CITIES, NRCAN, PR_GRID, TASMAX_GRID, assert_same_result

from dare_cli.climate.compute import (
    IndexRequest,
    Tile,
    add_history,
    assemble,
    compute_tile,
    compute_whole,
    open_inputs,
    plan_tiles,
    write_netcdf,
)
from dare_cli.climate.errors import ClimateError, ClimateUsageError


def tiled(paths, request, sizes):
    tiles = plan_tiles(paths, request, sizes)
    assert len(tiles) > 1
    # hand the parts over in reverse: assemble orders them by tile number
    parts = [(tile, compute_tile(paths, request, tile)) for tile in reversed(tiles)]
    return assemble(parts, paths, request)


# (index request, input, tile sizes, absolute tolerance). Counts (SU, TX90p, CDD, RR1,
# count_occurrences) are bitwise equal; sums and means (PRCPTOT, TG) also came out bitwise
# equal on icclim 7.2.1 because each cell's reduction runs over the same time axis in the same
# order whatever the tile; atol=0 asserts it, and 1e-6 would be the stated bound otherwise.
CASES = {
    "SU": (IndexRequest("SU"), [TASMAX_GRID], {"lat": 5, "lon": 7}, 0.0),
    "TX90p": (
        IndexRequest("tx90p", time_range=("1991-01-01", "1995-12-31"),
                     base_period=("1961-01-01", "1990-12-31")),
        [NRCAN], {"location": 1}, 0.0),
    "CDD": (IndexRequest("CDD"), [PR_GRID], {"lat": 4}, 0.0),
    "RR1": (IndexRequest("RR1", slice_mode="month"), [PR_GRID], {"lon": 5}, 0.0),
    "PRCPTOT": (IndexRequest("PRCPTOT"), [PR_GRID], {"lat": 6, "lon": 6}, 0.0),
    "TG": (IndexRequest("TG", slice_mode="JJA"), [CITIES], {"location": 2}, 0.0),
    "count_occurrences": (
        IndexRequest("count_occurrences", var_name=("tasmax",), threshold=("> 25 degC",)),
        [CITIES], {"location": 3}, 0.0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_tiles_equal_whole(name):
    request, paths, sizes, atol = CASES[name]
    whole = compute_whole(paths, request)
    joined = tiled(paths, request, sizes)
    assert_same_result(joined, whole, atol=atol)
    output = "SU" if name == "count_occurrences" else None  # icclim names generic outputs
    assert output is None or output in whole.data_vars or len(whole.data_vars) == 1
    assert np.isfinite(whole[next(iter(whole.data_vars))].values).any()


def test_su_values_match_a_direct_count():
    whole = compute_whole([TASMAX_GRID], IndexRequest("SU"))
    tasmax = xr.open_dataset(TASMAX_GRID)["tasmax"]  # kelvin
    # two cells are all NaN in the file: icclim gives NaN there (missing values policy)
    expected = (tasmax > 273.15 + 25).sum("time").where(tasmax.notnull().all("time")).values
    np.testing.assert_array_equal(whole["SU"].isel(time=0).values, expected)
    assert whole["time_bounds"].shape == (1, 2)


def test_count_occurrences_matches_a_direct_count():
    request = IndexRequest("count_occurrences", var_name=("tasmax",), threshold=("> 25 degC",))
    whole = compute_whole([CITIES], request)
    (name,) = whole.data_vars
    tasmax = xr.open_dataset(CITIES)["tasmax"]
    expected = (tasmax > 298.15).groupby("time.year").sum("time").transpose("year", "location")
    np.testing.assert_array_equal(whole[name].transpose("time", "location").values, expected.values)


def test_360_day_calendar(tmp_path):
    source = xr.open_dataset(TASMAX_GRID).isel(time=slice(0, 360)).load()
    days = xr.date_range("2095-01-01", periods=360, freq="D", calendar="360_day", use_cftime=True)
    source = source.assign_coords(time=days)
    path = str(tmp_path / "tasmax_360day.nc")
    source.to_netcdf(path)
    request = IndexRequest("SU")
    whole = compute_whole([path], request)
    assert isinstance(whole["time"].values[0], cftime.Datetime360Day)
    joined = tiled([path], request, {"lat": 7})
    assert_same_result(joined, whole)
    tasmax = source["tasmax"]
    expected = (tasmax > 298.15).sum("time").where(tasmax.notnull().all("time")).values
    np.testing.assert_array_equal(whole["SU"].isel(time=0).values, expected)


def test_plan_tiles_rules(monkeypatch):
    request = IndexRequest("SU")
    tiles = plan_tiles([TASMAX_GRID], request, {"lat": 5, "lon": 7})
    assert [t.selection for t in tiles[:3]] == [
        (("lat", 0, 5), ("lon", 0, 7)), (("lat", 0, 5), ("lon", 7, 12)),
        (("lat", 5, 10), ("lon", 0, 7))]
    assert [t.number for t in tiles] == list(range(6))
    assert plan_tiles([TASMAX_GRID], request, None) == [Tile(0, ())]  # 210 kB < 64 MiB
    # one lat row = 12 cells x 365 days x 4 bytes = 17520 bytes: 3 rows per 60 kB tile
    auto = plan_tiles([TASMAX_GRID], request, None, 60_000)
    assert [t.selection for t in auto] == [(("lat", i, i + 3),) for i in range(0, 12, 3)]
    # less than a row: cut lon too
    assert plan_tiles([TASMAX_GRID], request, None, 5_000)[0].selection == (
        ("lat", 0, 1), ("lon", 0, 3))
    assert len(plan_tiles([CITIES], IndexRequest("TG"), {"location": 2})) == 3
    with pytest.raises(ClimateUsageError, match="never time"):
        plan_tiles([TASMAX_GRID], request, {"time": 100})
    with pytest.raises(ClimateUsageError, match="'height'"):
        plan_tiles([TASMAX_GRID], request, {"height": 1})


def test_assemble_rejects_incomplete_tiles():
    request = IndexRequest("SU")
    tiles = plan_tiles([CITIES], IndexRequest("SU"), {"location": 2})
    parts = [(tile, compute_tile([CITIES], request, tile)) for tile in tiles[:2]]
    with pytest.raises(ClimateError, match="cover 4 of 5 cells along location"):
        assemble(parts, [CITIES], request)
    with pytest.raises(ClimateError, match="repeats"):
        assemble([parts[0], (Tile(5, tiles[0].selection), parts[0][1])], [CITIES], request)


def test_compute_tile_loads_only_its_tile(monkeypatch):
    loaded = []
    original = xr.Dataset.load

    def spy(self, **kwargs):
        if "tasmax" in self.data_vars and "time" in self.dims:
            loaded.append(dict(self.sizes))
        return original(self, **kwargs)

    monkeypatch.setattr(xr.Dataset, "load", spy)
    compute_tile([TASMAX_GRID], IndexRequest("SU"), Tile(0, (("lat", 0, 2), ("lon", 3, 5))))
    assert loaded[0] == {"time": 365, "lat": 2, "lon": 2}


def test_open_inputs_is_lazy_and_merges_files():
    ds = open_inputs([TASMAX_GRID, PR_GRID])
    assert set(ds.data_vars) == {"tasmax", "pr"}
    assert ds["tasmax"].chunks is not None
    assert open_inputs([TASMAX_GRID, PR_GRID], ["pr"]).data_vars.keys() == {"pr"}


def test_icclim_kwargs():
    request = IndexRequest("tx90p", var_name=("tasmax",), base_period=("1961", "1990"),
                           threshold=("> 25 degC", "> 30 degC"), extra=(("doy_window_width", 3),))
    kwargs = request.icclim_kwargs()
    assert kwargs["index_name"] == "TX90p"
    assert kwargs["base_period_time_range"] == ["1961", "1990"]
    assert kwargs["threshold"] == ["> 25 degC", "> 30 degC"]
    assert kwargs["doy_window_width"] == 3 and kwargs["var_name"] == ["tasmax"]
    with pytest.raises(ClimateUsageError, match=r"'out_file' is not an icclim\.index option"):
        IndexRequest("SU", extra=(("out_file", "x.nc"),)).icclim_kwargs()


def test_history_and_written_file(tmp_path):
    whole = compute_whole([CITIES], IndexRequest("TG"))
    stamped = add_history(whole, "TG of era5_cities_1990-1993.nc")
    lines = stamped.attrs["history"].split("\n")
    assert lines[:-1] == whole.attrs["history"].split("\n")  # appended: newest last
    assert lines[-1].endswith(" dare " + __import__("dare_cli").__version__
                              + ": TG of era5_cities_1990-1993.nc")
    assert "history" not in whole.attrs or whole.attrs["history"] != stamped.attrs["history"]
    first = write_netcdf(stamped, tmp_path / "tg.nc")
    write_netcdf(stamped, tmp_path / "again.nc")
    assert first.read_bytes()[:4] == b"\x89HDF"
    assert not list(tmp_path.glob(".*part"))
    back = xr.open_dataset(first)
    np.testing.assert_array_equal(back["TG"].values, stamped["TG"].values)
    assert back.attrs == stamped.attrs
    assert back["TG"].encoding["zlib"] and back["TG"].dtype == stamped["TG"].dtype
    np.testing.assert_array_equal(back["time_bounds"].values, stamped["time_bounds"].values)


# ---- bad input -------------------------------------------------------------------------


def test_missing_variable_is_named():
    with pytest.raises(ClimateUsageError, match=r"variable tasmin not found in .*tasmax_CanESM2"):
        compute_whole([TASMAX_GRID], IndexRequest("SU", var_name=("tasmin",)))
    with pytest.raises(ClimateUsageError, match=r"index TN needs tasmin, not found in .*era5_c"):
        plan_tiles([CITIES], IndexRequest("TN"), None)
    # a single variable is taken whatever its name (icclim's rule); its unit then fails
    with pytest.raises(ClimateUsageError, match=r"unusable unit in .*pr_CanESM2.*pr \[mm s-1\]"):
        compute_whole([PR_GRID], IndexRequest("SU"))


def test_unknown_unit_is_named(tmp_path):
    ds = xr.open_dataset(CITIES)[["tasmax"]].isel(location=[0]).load()
    ds["tasmax"].attrs["units"] = "furlongs"
    path = tmp_path / "furlongs.nc"
    ds.to_netcdf(path)
    with pytest.raises(ClimateUsageError, match=r"furlongs.nc, variables tasmax \[furlongs\]"):
        compute_whole([str(path)], IndexRequest("SU"))
    ds["tasmax"].attrs["units"] = "no_such_unit"
    ds.to_netcdf(tmp_path / "bogus.nc")
    with pytest.raises(ClimateUsageError, match=r"no_such_unit"):
        compute_tile([str(tmp_path / "bogus.nc")], IndexRequest("SU"), Tile(0, ()))


def test_corrupt_netcdf_names_the_file(tmp_path):
    path = tmp_path / "corrupt.nc"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(ClimateError, match=r"cannot read .*corrupt\.nc"):
        compute_whole([str(path)], IndexRequest("SU"))
    with pytest.raises(ClimateError, match=r"cannot read .*missing\.nc"):
        open_inputs([str(tmp_path / "missing.nc")])


def test_time_range_outside_the_data():
    request = IndexRequest("SU", time_range=("1800-01-01", "1801-12-31"))
    with pytest.raises(ClimateUsageError, match=r"time range 1800-01-01..1801-12-31 is outside "
                                                r"the data of .*\(2095-01-01..2095-12-31\)"):
        compute_whole([TASMAX_GRID], request)
    request = IndexRequest("TX90p", base_period=("1900-01-01", "1930-12-31"))
    with pytest.raises(ClimateUsageError, match=r"base period 1900-01-01\.\.1930-12-31 is outside"):
        plan_tiles([NRCAN], request, None)


def test_unknown_index_is_a_usage_error():
    with pytest.raises(ClimateUsageError, match="did you mean: TX90p"):
        compute_whole([TASMAX_GRID], IndexRequest("TX9p"))
