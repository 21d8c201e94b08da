"""The climate pipeline: a job computed on a mapping, then each file staged out to its target."""

from __future__ import annotations

from pathlib import Path

import xarray as xr
from climate_helpers import TASMAX_GRID
from webdav_server import WebDAVServer

from dare_cli.climate.compute import IndexRequest
from dare_cli.climate.pipeline import IndexJob, plan_job, run_job


def test_each_output_is_staged_out_to_its_own_target(webdav_credentials: WebDAVServer,
                                                      tmp_path: Path) -> None:
    # outputs listed out of name order: the records come back sorted, the targets must follow
    outputs = (tmp_path / "txx.nc", tmp_path / "su.nc")
    targets = (webdav_credentials.ref("r/txx.nc"), webdav_credentials.ref("r/su.nc"))
    job = IndexJob(inputs=(TASMAX_GRID,), requests=(IndexRequest("TXx"), IndexRequest("SU")),
                   outputs=outputs, stage_out=targets)
    records = run_job(plan_job(job, job.inputs))
    assert [(Path(r["output"]).name, r["index"], r["staged_out"]) for r in records] == [
        ("su.nc", "SU", targets[1]), ("txx.nc", "TXx", targets[0])]
    for output in outputs:
        assert (webdav_credentials.root / "r" / output.name).read_bytes() == output.read_bytes()
    with xr.open_dataset(outputs[1]) as su:
        assert "SU" in su.data_vars and int(su["SU"].count()) > 0
