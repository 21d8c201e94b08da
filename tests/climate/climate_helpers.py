"""Shared helpers of the climate tests: fixture paths and result comparison."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import xarray as xr

DATA = Path(__file__).parent / "data"
TASMAX_GRID = str(DATA / "tasmax_CanESM2_2095_12x12.nc")
PR_GRID = str(DATA / "pr_CanESM2_2095_12x12.nc")
NRCAN = str(DATA / "nrcan_tasmax_1961-1995.nc")
CITIES = str(DATA / "era5_cities_1990-1993.nc")

# icclim writes "[YYYY-mm-dd HH:MM:SS]" into the global history when it computes: each tile
# and the whole run get their own time, so it is the one thing normalised before comparing.
_STAMP = re.compile(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]")


def normalised_attrs(attrs: dict) -> dict:
    return {k: _STAMP.sub("[TIME]", v) if k == "history" else v for k, v in attrs.items()}


def assert_same_result(tiled: xr.Dataset, whole: xr.Dataset, atol: float = 0.0) -> None:
    """Tiled == whole: values (bitwise unless atol), coords, time bounds, attrs, dtypes."""
    assert set(tiled.variables) == set(whole.variables)
    assert dict(tiled.sizes) == dict(whole.sizes)
    np.testing.assert_equal(normalised_attrs(tiled.attrs), normalised_attrs(whole.attrs))
    for name in whole.variables:
        a, b = tiled[name], whole[name]
        assert a.dims == b.dims, name
        assert a.dtype == b.dtype, name
        np.testing.assert_equal(a.attrs, b.attrs, err_msg=name)
        assert a.encoding.get("units") == b.encoding.get("units"), name
        assert a.encoding.get("calendar") == b.encoding.get("calendar"), name
        if atol and np.issubdtype(b.dtype, np.floating):
            np.testing.assert_allclose(a.values, b.values, rtol=0, atol=atol, err_msg=name)
        else:
            np.testing.assert_array_equal(a.values, b.values, err_msg=name)
    xr.testing.assert_identical(tiled.drop_attrs(deep=False), whole.drop_attrs(deep=False))
