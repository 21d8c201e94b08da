"""The job file of ``dare climate run``: every key and value checked, with the file named."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dare_cli.climate.compute import IndexRequest
from dare_cli.climate.config import INDEX_KEYS, RUN_KEYS, load_job, parse_job
from dare_cli.climate.errors import ClimateUsageError
from dare_cli.climate.pipeline import IndexJob

FILE = Path("/jobs/indices.toml")
INDEX = {"name": "SU", "output": "su.nc"}


def job(run: dict | None = None, *indices: Any, **tables: object) -> IndexJob:
    data = {"run": {"inputs": ["in.nc"]} | (run or {}), "index": list(indices or [INDEX])}
    return parse_job(data | tables, FILE)


def test_a_full_file_becomes_the_job(tmp_path):
    path = tmp_path / "indices.toml"
    path.write_text('[run]\ninputs = ["tasmax.nc", "https://host/dods/pr.nc"]\n'
                    'mapping = "multi:2"\ntile = {lat = 6, lon = 6}\n'
                    '[[index]]\nname = "TX90p"\noutput = "out/tx90p.nc"\nvar = ["tasmax"]\n'
                    'slice_mode = "JJA"\ntime_range = [1991-01-01, "1995-12-31"]\n'
                    'base_period = ["1961-01-01", "1990-12-31"]\nout_unit = "%"\n'
                    'stage_out = "webdav+https://host/r/tx90p.nc"\n'
                    '[[index]]\nname = "count_occurrences"\noutput = "/abs/hot.nc"\n'
                    'threshold = ["> 25 degC"]\n')
    loaded = load_job(path)
    assert loaded.inputs == (str(tmp_path / "tasmax.nc"), "https://host/dods/pr.nc")
    assert (loaded.mapping, loaded.workers) == ("multi", 2)
    assert loaded.tile == {"lat": 6, "lon": 6}
    assert loaded.outputs == (tmp_path / "out/tx90p.nc", Path("/abs/hot.nc"))
    assert loaded.requests == (
        IndexRequest("TX90p", ("tasmax",), "JJA", ("1991-01-01", "1995-12-31"),
                     ("1961-01-01", "1990-12-31"), None, "%"),
        IndexRequest("count_occurrences", threshold=("> 25 degC",)))
    assert loaded.stage_out == ("webdav+https://host/r/tx90p.nc", None)
    assert loaded.command == "dare climate run indices.toml"


def test_defaults():
    loaded = job()
    assert (loaded.mapping, loaded.workers, loaded.tile, loaded.stage_out) == (
        "simple", None, None, ())
    assert loaded.requests == (IndexRequest("SU"),)
    assert job({"workers": 3}).workers == 3


@pytest.mark.parametrize(("run", "index", "message"), [
    ({"worker": 2}, INDEX, "/jobs/indices.toml [run]: unknown key 'worker' (did you mean "
                           "'workers'?); known keys: " + ", ".join(RUN_KEYS)),
    ({}, INDEX | {"slice": "year"}, "/jobs/indices.toml [[index]] #1: unknown key 'slice' (did "
                                    "you mean 'slice_mode'?); known keys: "
                                    + ", ".join(INDEX_KEYS)),
    ({"inputs": "in.nc"}, INDEX, "[run]: 'inputs' must be an array of strings, not 'in.nc'"),
    ({"inputs": []}, INDEX, "[run]: 'inputs' lists no file"),
    ({"workers": 0}, INDEX, "[run]: 'workers' must be an integer >= 1, not 0"),
    ({"workers": "2"}, INDEX, "[run]: 'workers' must be an integer >= 1, not '2'"),
    ({"mapping": 4}, INDEX, "[run]: 'mapping' must be a non-empty string, not 4"),
    ({"mapping": "multi:2", "workers": 3}, INDEX, "multi:2 and --workers 3 disagree"),
    ({"tile": 10}, INDEX, "[run]: 'tile' must be a table of DIM = size"),
    ({"tile": {"lat": 0}}, INDEX, "[run]: 'tile' 'lat' must be an integer >= 1, not 0"),
    ({}, {"name": "SU"}, "[[index]] #1: 'name' and 'output' are required (missing: 'output')"),
    ({}, INDEX | {"name": 7}, "[[index]] #1: 'name' must be a non-empty string, not 7"),
    ({}, INDEX | {"time_range": ["1991"]}, "[[index]] #1: 'time_range' must be an array of 2 "
                                           "dates [START, END], not ['1991']"),
    ({}, INDEX | {"threshold": "> 25 degC"}, "'threshold' must be an array of strings"),
    ({}, INDEX | {"var": ["tasmax", 3]}, "[[index]] #1: 'var' must be a non-empty string, "
                                         "not 3"),
])
def test_a_bad_key_or_value_names_the_key_and_the_file(run, index, message):
    with pytest.raises(ClimateUsageError, match=re.escape(message)) as caught:
        job(run, index)
    assert str(caught.value).startswith("/jobs/indices.toml")


def test_tables_are_checked():
    with pytest.raises(ClimateUsageError, match=re.escape(
            "/jobs/indices.toml: unknown table [indx] (did you mean 'index'?); "
            "tables: [run], [[index]]")):
        job(indx=[INDEX])
    with pytest.raises(ClimateUsageError, match=re.escape("/jobs/indices.toml: no [[index]]")):
        parse_job({"run": {"inputs": ["in.nc"]}}, FILE)
    with pytest.raises(ClimateUsageError, match=re.escape("[[index]] #2: must be a table")):
        job(None, INDEX, "SU")


def test_an_unreadable_file_is_named(tmp_path):
    with pytest.raises(ClimateUsageError, match="cannot read config file"):
        load_job(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\n")
    with pytest.raises(ClimateUsageError, match=f"config file '{re.escape(str(bad))}' is not "
                                                "valid TOML"):
        load_job(bad)
