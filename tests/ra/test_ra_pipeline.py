"""The Rapid Assessment end to end on the bundled Ridgecrest records, and on bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geojson
import numpy as np
import pytest
from obspy import UTCDateTime, read, read_inventory
from obspy.core.event import Catalog, Event, Magnitude, Origin
from ra_helpers import EXAMPLE, example_config

from dare_cli.ra.config import load_config
from dare_cli.ra.pipeline import run_assessment

HAWAII = Path(__file__).resolve().parent / "data" / "hv70907436"
ALL_STAGES_MULTI = {s: ("multi", 2) for s in ("simulate", "preprocess", "norm", "match", "pgm",
                                                  "plot")}
ALL_STAGES_SIMPLE = {s: ("simple", None) for s in ALL_STAGES_MULTI}


@pytest.fixture(scope="module")
def simple_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("simple")
    config = load_config(example_config(folder, folder / "run"))
    config = config.with_overrides(mappings=ALL_STAGES_SIMPLE)
    return folder / "run", run_assessment(config)


def test_the_example_runs_every_stage(simple_run):
    run_dir, report = simple_run
    assert report["ok"] and report["failed_stage"] is None
    assert [s["name"] for s in report["stages"]] == [
        "download", "simulate", "preprocess", "norm", "match", "pgm", "geojson", "plot"]
    stations = report["stations"]
    assert sorted(stations) == ["CI.CCC", "CI.JRC2", "CI.LRL", "CI.MPM", "CI.SLA", "CI.WBM",
                                "CI.WCS2", "CI.WNM", "CI.WRV2", "CI.WVP2"]
    # CI.SLA fails the signal-to-noise check on its north channel (gmprocess rejects it too):
    # a quality decision, reported, not an error of the run
    sla = stations.pop("CI.SLA")
    assert (sla["status"], sla["stage"], sla["category"]) == ("rejected", "preprocess",
                                                             "quality")
    assert "CI.SLA..HNN: signal-to-noise ratio 1.6" in sla["reason"]
    assert all(entry["status"] == "processed" for entry in stations.values())
    assert any("partial" in flag for flag in stations["CI.MPM"]["flags"])  # the short record
    assert not any(stations[s]["flags"] for s in stations if s != "CI.MPM")
    for name in ("report.json", "pgm.csv", "stationlist.json", "pga_map.png", "misfit_map.png"):
        assert (run_dir / name).stat().st_size > 1000, name
    assert len(list((run_dir / "plot" / "waveforms").glob("*.png"))) == 9
    assert not list(run_dir.glob(".*.partial"))


def test_pgm_values_match_an_independent_obspy_computation(simple_run):
    """PGA/PGV of CI.CCC, HNN, recomputed here with plain obspy calls on the raw record, with
    the corners the pipeline chose (the values of gmprocess itself: see
    test_gmprocess_reference.py)."""
    run_dir, _ = simple_run
    pgm = json.loads((run_dir / "pgm" / "pgm.json").read_text())
    row = next(r for r in pgm["rows"] if r["station"] == "CI.CCC" and r["kind"] == "observed"
               and r["band"] == "record" and r["channel"] == "HNN")
    inventory = read_inventory(str(EXAMPLE / "stations" / "CI.CCC.xml"))
    origin = UTCDateTime(2019, 7, 6, 3, 19, 53)
    peaks = {}
    for output in ("ACC", "VEL"):
        trace = read(str(EXAMPLE / "waveforms" / "CI.CCC..HNN.mseed"))[0]
        trace.detrend("linear")
        trace.remove_response(inventory, output=output, pre_filt=(0.002, 0.005, 40.0, 45.0),
                              water_level=60)
        trace.trim(origin - 30, origin + 300)
        trace.taper(0.05, type="hann")
        trace.filter("bandpass", freqmin=row["freqmin"], freqmax=row["freqmax"], corners=4,
                     zerophase=True)
        peaks[output] = float(np.abs(trace.data).max())
    # Independent path: obspy's cosine pre-filter and time-domain Butterworth, so allow 5%.
    assert row["pga"] == pytest.approx(peaks["ACC"], rel=0.05)
    assert row["pgv"] == pytest.approx(peaks["VEL"], rel=0.05)
    assert 4.0 < row["pga"] < 6.0  # about 0.47 g at 34 km from an Mw 7.1


def test_stationlist_is_valid_geojson_with_every_station(simple_run):
    run_dir, _ = simple_run
    collection = geojson.loads((run_dir / "stationlist.json").read_text())
    assert collection.is_valid and collection["type"] == "FeatureCollection"
    features = {feature["id"]: feature for feature in collection["features"]}
    assert len(features) == 9
    assert [r["id"] for r in collection["rejected"]] == ["CI.SLA"]
    ccc = features["CI.CCC"]
    assert ccc["geometry"]["coordinates"][:2] == pytest.approx([-117.36453, 35.52495])
    assert ccc["properties"]["pga"] == pytest.approx(50.0, abs=0.1)  # %g, larger horizontal


def test_rerun_skips_every_stage(simple_run):
    run_dir, _ = simple_run
    config = load_config(run_dir.parent / "data" / "ra.toml").with_overrides(
        mappings=ALL_STAGES_SIMPLE)
    report = run_assessment(config)
    assert {s["status"] for s in report["stages"]} == {"skipped"}
    assert report["ok"]


@pytest.mark.slow
def test_outputs_are_identical_under_simple_and_multi(simple_run, tmp_path):
    run_dir, _ = simple_run
    config = load_config(example_config(tmp_path, tmp_path / "run")).with_overrides(
        mappings=ALL_STAGES_MULTI)
    report = run_assessment(config)
    assert report["ok"]
    assert {s["mapping"] for s in report["stages"] if s["name"] != "download"} >= {"multi"}
    for name in ("pgm.csv", "stationlist.json", "match/pairs.json", "pgm/pgm.json"):
        assert (tmp_path / "run" / name).read_bytes() == (run_dir / name).read_bytes(), name
    for path in sorted((run_dir / "preprocess").rglob("*.mseed")):
        other = tmp_path / "run" / path.relative_to(run_dir)
        assert other.read_bytes() == path.read_bytes(), path.name


def test_bad_files_reject_their_station_and_the_others_go_on(tmp_path):
    stations = ["CI.CCC", "CI.JRC2", "CI.LRL", "CI.SLA", "CI.WBM"]
    config_path = example_config(tmp_path, tmp_path / "run", stations)
    data = tmp_path / "data"
    (data / "waveforms" / "CI.JRC2..HNZ.mseed").write_bytes(b"\x00garbage" * 100)  # corrupt
    (data / "waveforms" / "CI.LRL..HNZ.mseed").write_bytes(b"")  # empty
    nan = read(str(data / "waveforms" / "CI.SLA..HNZ.mseed"))
    nan[0].data = np.full(nan[0].stats.npts, np.nan)
    nan.write(str(data / "waveforms" / "CI.SLA..HNZ.mseed"), format="MSEED")
    inventory = read_inventory(str(data / "stations" / "CI.WBM.xml"))
    for channel in inventory[0][0]:
        channel.response = None
    inventory.write(str(data / "stations" / "CI.WBM.xml"), format="STATIONXML")
    report = run_assessment(load_config(config_path))
    stations_report = report["stations"]
    assert stations_report["CI.CCC"]["status"] == "processed"
    for station in ("CI.JRC2", "CI.LRL", "CI.SLA", "CI.WBM"):
        assert stations_report[station]["status"] == "rejected", station
    reasons = {s: e.get("reason", "") for s, e in stations_report.items()}
    assert "CI.JRC2..HNZ.mseed" in reasons["CI.JRC2"]
    assert "CI.LRL..HNZ.mseed" in reasons["CI.LRL"] and "empty" in reasons["CI.LRL"]
    assert "NaN" in reasons["CI.SLA"]
    assert "response" in reasons["CI.WBM"]
    assert not report["ok"]
    csv = (tmp_path / "run" / "pgm.csv").read_text()
    assert "CI.CCC" in csv and "CI.SLA" not in csv and "CI.WBM" not in csv
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["stations"]["CI.SLA"]["status"] == "rejected"


def test_clipped_records_are_rejected_not_turned_into_pgm(tmp_path):
    data = tmp_path / "data"
    (data / "waveforms").mkdir(parents=True)
    (data / "stations").mkdir()
    for path in HAWAII.glob("*.mseed"):
        shutil.copy(path, data / "waveforms" / path.name)
    for path in HAWAII.glob("*.xml"):
        shutil.copy(path, data / "stations" / path.name)
    info = json.loads((HAWAII / "event.json").read_text())
    origin = Origin(time=UTCDateTime(info["time"]), latitude=info["latitude"],
                    longitude=info["longitude"], depth=info["depth_km"] * 1000)
    event = Event(origins=[origin], magnitudes=[Magnitude(mag=info["magnitude"],
                                                          magnitude_type="Mw")])
    Catalog([event]).write(str(data / "event.xml"), format="QUAKEML")
    config = data / "ra.toml"
    config.write_text(
        f'[run]\nout = "{tmp_path / "run"}"\n'
        '[download]\nsource = "local"\ndirectory = "."\nquakeml = "event.xml"\n'
        'before = 30.0\nafter = 300.0\nchannels = ["HH?"]\n'
        '[source]\nstrike = 0.0\ndip = 45.0\nrake = 90.0\n'
    )
    # every station rejected: every stage still runs, the report has every reason, not ok
    report = run_assessment(load_config(config))
    assert report["failed_stage"] is None and not report["ok"]
    for station in ("HV.HOVE", "HV.MLOD"):
        entry = report["stations"][station]
        assert entry["status"] == "rejected" and entry["stage"] == "preprocess"
        assert entry["category"] == "quality" and "clipped" in entry["reason"]
    assert not list((tmp_path / "run" / "preprocess" / "observed").glob("*.mseed"))
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert sorted(saved["stations"]) == ["HV.HOVE", "HV.MLOD"]
    assert (tmp_path / "run" / "pgm.csv").read_text().count("\n") == 1  # the header only
    stationlist = json.loads((tmp_path / "run" / "stationlist.json").read_text())
    assert stationlist["features"] == []
    assert [r["id"] for r in stationlist["rejected"]] == ["HV.HOVE", "HV.MLOD"]


def test_a_missing_event_fails_the_download_stage(tmp_path):
    config = tmp_path / "ra.toml"
    config.write_text(f'[run]\nout = "{tmp_path / "run"}"\n[download]\nsource = "local"\n'
                      f'directory = "{EXAMPLE}"\nquakeml = "nowhere.xml"\n')
    report = run_assessment(load_config(config))
    failed = report["failed_stage"]
    assert failed is not None and failed.name == "download"
    assert "nowhere.xml" in failed.error
    assert not (tmp_path / "run" / "download").exists()
    assert [s["status"] for s in report["stages"]] == ["failed"]


def test_stage_alone_needs_earlier_stages(tmp_path):
    config = load_config(example_config(tmp_path, tmp_path / "run", ["CI.CCC"]))
    report = run_assessment(config, only=["pgm"])
    assert report["failed_stage"].error == (
        "needs the output of stage(s) download, preprocess, norm, match: run them first")


def test_synthetic_traces_carry_real_codes_and_absolute_times(simple_run):
    run_dir, _ = simple_run
    synthetic = read(str(run_dir / "simulate" / "CI.WBM.mseed"))
    assert sorted(tr.id for tr in synthetic) == ["CI.WBM..HXE", "CI.WBM..HXN", "CI.WBM..HXZ"]
    assert all(tr.stats.starttime == UTCDateTime(2019, 7, 6, 3, 19, 53) for tr in synthetic)
    sidecar = json.loads((run_dir / "preprocess" / "observed" / "CI.WBM.ACC.mseed.json")
                         .read_text())
    steps = sidecar["CI.WBM..HNZ"]["processing"]
    assert any("remove_response" in step for step in steps)
    assert any("filter" in step for step in steps)


