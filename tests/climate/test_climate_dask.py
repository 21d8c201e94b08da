"""``dare climate index`` on the dask mapping writes what the simple mapping writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from climate_helpers import TASMAX_GRID, normalised_attrs
from test_climate_cli import dare

pytestmark = [pytest.mark.dask, pytest.mark.slow]


def load(path: Path) -> xr.Dataset:
    with xr.open_dataset(path) as opened:
        return opened.load()


def without_our_history(dataset: xr.Dataset) -> dict[str, object]:
    """Global attributes but the last history line (ours, which names the mapping)."""
    attrs = dict(dataset.attrs)
    lines = attrs["history"].rstrip().splitlines()
    assert "icclim index SU" in lines[-1]
    attrs["history"] = "\n".join(lines[:-1])
    return normalised_attrs(attrs)


@pytest.mark.parametrize("cluster", ["started by the mapping", "DARE_DASK_SCHEDULER"])
def test_su_on_dask_equals_simple(tmp_path, cluster, request, monkeypatch):
    if cluster == "DARE_DASK_SCHEDULER":  # the session's LocalCluster, by its address
        monkeypatch.setenv("DARE_DASK_SCHEDULER", request.getfixturevalue("dask_scheduler"))
    else:
        monkeypatch.delenv("DARE_DASK_SCHEDULER", raising=False)
    outputs = {}
    for mapping in ("simple", "dask:2"):
        out = tmp_path / f"su-{mapping.replace(':', '-')}.nc"
        result = dare("climate", "index", "SU", "--input", TASMAX_GRID, "--output", out,
                      "--tile", "lat=5,lon=7", "--mapping", mapping)
        assert result.exit_code == 0, result.stderr
        assert result.stdout.strip() == str(out)
        outputs[mapping] = load(out)
    simple, dask = outputs["simple"], outputs["dask:2"]
    assert "(mapping dask)" in dask.attrs["history"].rstrip().splitlines()[-1]
    assert without_our_history(dask) == without_our_history(simple)
    assert set(dask.variables) == set(simple.variables)
    for name in simple.variables:
        assert dask[name].dims == simple[name].dims, name
        assert dask[name].dtype == simple[name].dtype, name
        np.testing.assert_equal(dask[name].attrs, simple[name].attrs, err_msg=name)
        np.testing.assert_array_equal(dask[name].values, simple[name].values, err_msg=name)
