"""Station list (ShakeMap-style GeoJSON) and PGM table (CSV) of the Rapid Assessment.

Expected values are worked out by hand from g = 9.80665 m/s²: 0.980665 m/s² = 10 %g,
0.05 m/s = 5 cm/s, 0.02 m = 2 cm. Relative tolerance 1e-12 (only float rounding).
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
from datetime import UTC, datetime
from typing import Any

import geojson
import numpy as np
import pytest
from obspy import UTCDateTime

from dare_cli.ra import outputs
from dare_cli.ra.errors import StationError
from dare_cli.ra.outputs import EventInfo, write_pgm_csv, write_stationlist

G = 9.80665
EVENT = {"id": "ci38457511", "time": "2019-07-06 03:19:53", "latitude": 35.770,
         "longitude": -117.599, "depth_km": 8.0, "magnitude": 7.1}
CCC = {"station": "CI.CCC", "network": "CI", "code": "CCC",
       "name": "Christmas Canyon China Lake", "latitude": 35.52495, "longitude": -117.36453,
       "distance_km": 34.498, "location": ""}
WBM = {"station": "CI.WBM", "network": "CI", "code": "WBM", "name": "Bowman Road",
       "latitude": 35.60839, "longitude": -117.89049, "distance_km": 31.901, "location": ""}


def motion(station: dict[str, Any], channel: str, kind: str = "observed",
           band: str | None = None, **values: Any) -> dict[str, Any]:
    """A motion row; observed rows are the record's by default, synthetic ones common."""
    band = band or ("record" if kind == "observed" else "common")
    row = dict(station, channel=channel, kind=kind, band=band)
    row.update({key.replace("_", "."): v for key, v in values.items()})
    return row


def with_common_copies(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each observed record row again as a common-band row (what the misfits compare)."""
    return rows + [dict(r, band="common") for r in rows
                   if r["kind"] == "observed" and r["band"] == "record"]


def example_rows() -> list[dict[str, Any]]:
    """CI.CCC with three components (the vertical the largest), CI.WBM with only ``maxh``;
    the observed rows both as recorded and in the common band."""
    return with_common_copies([
        motion(CCC, "HNE", pga=0.980665, pgv=0.05, pgd=0.02, psa0_3=2.941995,
               psa1_0=0.4903325, psa3_0=0.0980665),
        motion(CCC, "HNN", pga=1.96133, pgv=0.12, pgd=0.01, psa0_3=0.980665,
               psa1_0=0.980665, psa3_0=0.0490333),
        motion(CCC, "HNZ", pga=3.92266, pgv=0.30, pgd=0.05, psa0_3=5.0, psa1_0=5.0,
               psa3_0=5.0),
        motion(CCC, "maxh", pga=1.96133, pgv=0.12, pgd=0.02),
        motion(CCC, "HNH", pga=2.0, pgv=0.125, pgd=0.021),
        motion(CCC, "HNE", "synthetic", pga=0.4903325, pgv=0.1, pgd=0.04),
        motion(CCC, "HNN", "synthetic", pga=0.980665, pgv=0.01, pgd=0.03),
        motion(WBM, "maxh", pga=0.4903325, pgv=0.021),
        motion(WBM, "maxh", "synthetic", pga=0.980665, pgv=0.042),
    ])


def example_misfits() -> list[dict[str, Any]]:
    return [
        {"station": "CI.CCC", "channel": "HNE", "metric": "pga", "misfit": math.log10(0.5)},
        {"station": "CI.CCC", "channel": "HNN", "metric": "pga", "misfit": math.log10(0.5)},
        {"station": "CI.CCC", "channel": "HNN", "metric": "pgv", "misfit": -1.0815},
        {"station": "CI.WBM", "channel": "maxh", "metric": "pga", "misfit": math.log10(2.0)},
    ]


def feature(collection: Any, station: str) -> dict[str, Any]:
    (found,) = [f for f in collection["features"] if f["id"] == station]
    return found


def amplitudes(channel: dict[str, Any]) -> dict[str, tuple[float, str, str]]:
    return {a["name"]: (a["value"], a["units"], a["flag"]) for a in channel["amplitudes"]}


# -- the station list ----------------------------------------------------------------------------
def test_stationlist_is_valid_geojson_with_hand_checked_values(tmp_path):
    path = tmp_path / "stationlist.json"
    collection = write_stationlist(path, EVENT, example_rows(), example_misfits())

    assert isinstance(collection, geojson.FeatureCollection)
    assert collection.is_valid, collection.errors()
    assert not collection.errors()
    on_disk = geojson.loads(path.read_text())
    assert on_disk.is_valid
    assert json.loads(path.read_text()) == json.loads(geojson.dumps(collection))

    assert [f["id"] for f in collection["features"]] == ["CI.CCC", "CI.WBM"]
    ccc = feature(on_disk, "CI.CCC")
    assert ccc["geometry"] == {"type": "Point", "coordinates": [-117.36453, 35.52495]}
    props = ccc["properties"]
    assert (props["code"], props["name"], props["network"], props["source"]) == (
        "CCC", "Christmas Canyon China Lake", "CI", "CI")
    assert props["distance"] == 34.498
    # maxima over the horizontals only: 20 %g and 12 cm/s, although HNZ has 40 %g, 30 cm/s
    assert props["pga"] == pytest.approx(20.0, rel=1e-12)
    assert props["pgv"] == pytest.approx(12.0, rel=1e-12)
    assert props["pgd"] == pytest.approx(2.0, rel=1e-12)

    channels = {c["name"]: c for c in props["channels"]}
    assert list(channels) == ["--.HNE", "--.HNN", "--.HNZ"]
    hne = amplitudes(channels["--.HNE"])
    assert list(hne) == ["pga", "pgv", "sa(0.3)", "sa(1.0)", "sa(3.0)"]
    expected = {"pga": (10.0, "%g"), "pgv": (5.0, "cm/s"), "sa(0.3)": (30.0, "%g"),
                "sa(1.0)": (5.0, "%g"), "sa(3.0)": (1.0, "%g")}
    for name, (value, units) in expected.items():
        assert hne[name][0] == pytest.approx(value, rel=1e-12)
        assert hne[name][1:] == (units, "0")
    assert amplitudes(channels["--.HNZ"])["pga"][0] == pytest.approx(40.0, rel=1e-12)
    # pgd is not a ShakeMap amplitude: it goes into our extension
    assert channels["--.HNE"]["extra_amplitudes"] == [
        {"name": "pgd", "value": pytest.approx(2.0, rel=1e-12), "units": "cm", "flag": "0"}]

    derived = {c["name"]: amplitudes(c) for c in props["derived_channels"]}
    assert list(derived) == ["--.HNH", "--.maxh"]
    assert derived["--.HNH"]["pga"][0] == pytest.approx(2.0 / G * 100, rel=1e-12)

    synthetic = props["synthetic"]
    assert synthetic["pga"] == pytest.approx(10.0, rel=1e-12)
    assert synthetic["pgv"] == pytest.approx(10.0, rel=1e-12)
    assert synthetic["pgd"] == pytest.approx(4.0, rel=1e-12)
    assert [c["name"] for c in synthetic["channels"]] == ["--.HNE", "--.HNN"]
    assert synthetic["derived_channels"] == []

    misfit = props["misfit"]
    assert misfit["units"] == "log10(synthetic/observed)"
    assert misfit["channels"] == [
        {"name": "--.HNE", "values": {"pga": pytest.approx(-0.30103, abs=1e-5)}},
        {"name": "--.HNN", "values": {"pga": pytest.approx(-0.30103, abs=1e-5),
                                      "pgv": -1.0815}},
    ]

    assert on_disk["event"] == {"id": "ci38457511", "time": "2019-07-06T03:19:53.000000Z",
                                "latitude": 35.77, "longitude": -117.599, "depth_km": 8.0,
                                "magnitude": 7.1}
    assert on_disk["rejected"] == []


def test_station_with_only_maxh_takes_its_values(tmp_path):
    collection = write_stationlist(tmp_path / "s.json", EVENT, example_rows(), example_misfits())
    props = feature(collection, "CI.WBM")["properties"]
    assert props["channels"] == []
    assert props["pga"] == pytest.approx(5.0, rel=1e-12)
    assert props["pgv"] == pytest.approx(2.1, rel=1e-12)
    assert props["pgd"] is None
    assert props["synthetic"]["pga"] == pytest.approx(10.0, rel=1e-12)
    assert props["misfit"]["channels"] == [
        {"name": "--.maxh", "values": {"pga": pytest.approx(0.30103, abs=1e-5)}}]


def test_station_peaks_prefers_components_over_maxh_and_ignores_vertical():
    peaks = outputs.station_peaks(example_rows(), "observed")
    assert peaks["CI.CCC"]["pga"] == pytest.approx(1.96133)
    assert peaks["CI.CCC"]["psa0.3"] == pytest.approx(2.941995)  # HNE, not HNZ's 5.0
    assert peaks["CI.WBM"] == {"pga": 0.4903325, "pgv": 0.021}
    assert outputs.station_peaks(example_rows(), "synthetic")["CI.CCC"]["pgv"] == 0.1


def test_channel_roles():
    assert [outputs.channel_role(c) for c in ("HNE", "HHN", "HN1", "BH2", "HNR", "HNT")] == [
        "horizontal"] * 6
    assert outputs.channel_role("HNZ") == "vertical"
    assert [outputs.channel_role(c) for c in ("maxh", "HNH", "HN3")] == ["derived"] * 3
    with pytest.raises(ValueError, match="unknown channel 'HNX'"):
        outputs.channel_role("HNX")


def _shakemap_ingest(document: dict[str, Any]) -> dict[str, dict[str, float]]:
    """What a ShakeMap 4 station-list reader takes from a file (written from its documented
    layout and the keys shakelib's ``StationList`` JSON reader accesses): per station, the
    largest unflagged amplitude in ln(g) or ln(cm/s) over channels whose last letter is N or E.
    """
    assert document["type"] == "FeatureCollection"
    result: dict[str, dict[str, float]] = {}
    for item in document["features"]:
        station_id = item["id"]
        lon, lat = item["geometry"]["coordinates"]
        assert -180 <= lon <= 180 and -90 <= lat <= 90
        props = item["properties"]
        network = props["network"]
        assert station_id.startswith(network + ".")
        assert props["code"] == station_id[len(network) + 1:]
        for key in ("name", "source", "distance", "pga", "pgv", "channels"):
            assert key in props
        per_imt = result.setdefault(station_id, {})
        for channel in props["channels"]:
            assert re.fullmatch(r"[A-Z0-9-]{1,2}\.[A-Z0-9]{3}", channel["name"])
            orientation = channel["name"][-1]
            assert orientation in "NEZ"
            for amp in channel["amplitudes"]:
                assert set(amp) >= {"name", "value", "units", "flag"}
                imt = amp["name"].upper()
                assert imt in ("PGA", "PGV") or re.fullmatch(r"SA\(\d+\.\d+\)", imt)
                value = float(amp["value"])
                assert math.isfinite(value) and value > 0
                if imt == "PGV":
                    assert amp["units"] == "cm/s"
                    ln = math.log(value)
                else:
                    assert amp["units"] == "%g"
                    ln = math.log(value / 100.0)
                if amp["flag"] == "0" and orientation in "NE":
                    per_imt[imt] = max(ln, per_imt.get(imt, -math.inf))
    return result


def test_stationlist_has_what_a_shakemap_reader_needs(tmp_path):
    path = tmp_path / "stationlist.json"
    write_stationlist(path, EVENT, example_rows(), example_misfits())
    ingested = _shakemap_ingest(json.loads(path.read_text()))
    assert ingested["CI.CCC"]["PGA"] == pytest.approx(math.log(0.2), rel=1e-12)
    assert ingested["CI.CCC"]["PGV"] == pytest.approx(math.log(12.0), rel=1e-12)
    assert ingested["CI.CCC"]["SA(0.3)"] == pytest.approx(math.log(0.3), rel=1e-12)
    assert ingested["CI.WBM"] == {}  # only derived channels: nothing ShakeMap would ingest


def test_missing_or_nan_metrics_are_left_out(tmp_path):
    rows = [motion(CCC, "HNE", pga=0.980665, pgv=None, pgd=float("nan")),
            motion(CCC, "HNN", pga=np.float64(1.96133))]
    collection = write_stationlist(tmp_path / "s.json", EVENT, rows)
    props = feature(collection, "CI.CCC")["properties"]
    assert props["pga"] == pytest.approx(20.0, rel=1e-12)
    assert props["pgv"] is None and props["pgd"] is None
    for channel in props["channels"]:
        assert [a["name"] for a in channel["amplitudes"]] == ["pga"]
        assert channel["extra_amplitudes"] == []
    assert "NaN" not in (tmp_path / "s.json").read_text()


def test_rejected_stations_are_listed_not_featured(tmp_path):
    rejected = [{"station": "CI.SLA", "reason": "signal-to-noise ratio below 3"},
                ("CI.WBM", "clipped"), StationError("CI.MPM", "record too short")]
    collection = write_stationlist(tmp_path / "s.json", EVENT, example_rows(),
                                   example_misfits(), rejected)
    assert [f["id"] for f in collection["features"]] == ["CI.CCC"]  # CI.WBM's rows left out
    assert collection["rejected"] == [
        {"id": "CI.MPM", "reason": "record too short"},
        {"id": "CI.SLA", "reason": "signal-to-noise ratio below 3"},
        {"id": "CI.WBM", "reason": "clipped"},
    ]
    assert collection.is_valid


@pytest.mark.parametrize("time", [
    "2019-07-06T03:19:53Z", UTCDateTime(2019, 7, 6, 3, 19, 53),
    datetime(2019, 7, 6, 3, 19, 53, tzinfo=UTC), datetime(2019, 7, 6, 3, 19, 53),
])
def test_event_time_forms(time):
    info = EventInfo.coerce(dict(EVENT, time=time))
    assert info.time == "2019-07-06T03:19:53.000000Z"
    other = EventInfo.coerce({k: v for k, v in EVENT.items() if k != "time"} | {
        "origin_time": time})
    assert other == info


def test_event_without_position_is_an_error():
    with pytest.raises(ValueError, match="event information"):
        EventInfo.coerce({"id": "x", "time": "2019-07-06T03:19:53"})


@pytest.mark.parametrize(("row", "message"), [
    ({k: v for k, v in motion(CCC, "HNE", pga=1.0).items() if k != "latitude"},
     "CI.CCC lacks the key 'latitude'"),
    (motion(CCC, "HNE", "simulated", pga=1.0), "CI.CCC is wrong: kind must be"),
    (motion(CCC, "HNX", pga=1.0), "CI.CCC is wrong: unknown channel 'HNX'"),
    (motion(CCC, "HNE", pga="a lot"), "CI.CCC is wrong"),
])
def test_bad_rows_name_the_station(tmp_path, row, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        write_stationlist(tmp_path / "s.json", EVENT, [row])
    with pytest.raises(ValueError, match=re.escape(message)):
        write_pgm_csv(tmp_path / "p.csv", [row])
    assert not list(tmp_path.iterdir())


def test_misfit_without_motion_row_is_an_error(tmp_path):
    misfits = [{"station": "CI.CCC", "channel": "HNZ", "metric": "pgv", "misfit": 0.1}]
    message = "misfit of CI.CCC channel HNZ (pgv) has no motion row"
    # a misfit is of the common band: the record row of the same channel does not take it
    with pytest.raises(ValueError, match=re.escape(message)):
        write_pgm_csv(tmp_path / "p.csv", [motion(CCC, "HNZ", pga=1.0)], misfits)
    with pytest.raises(ValueError, match=re.escape(message)):
        write_stationlist(tmp_path / "s.json", EVENT, [motion(CCC, "HNE", pga=1.0)], misfits)
    bad_metric = [{"station": "CI.CCC", "channel": "HNE", "metric": "pgz", "misfit": 0.1}]
    message = "misfit row of CI.CCC is wrong: unknown metric 'pgz'"
    with pytest.raises(ValueError, match=re.escape(message)):
        write_pgm_csv(tmp_path / "p.csv", [motion(CCC, "HNE", pga=1.0)], bad_metric)


def test_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "stationlist.json"
    path.write_text("previous")

    def fail(*_args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(outputs.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_stationlist(path, EVENT, example_rows())
    assert path.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stationlist.json"]
    monkeypatch.undo()
    write_stationlist(path, EVENT, example_rows())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stationlist.json"]
    assert json.loads(path.read_text())["type"] == "FeatureCollection"


# -- the PGM table -------------------------------------------------------------------------------
HEADER = ["station", "network", "code", "location", "channel", "kind", "band", "name",
          "latitude_deg", "longitude_deg", "distance_km", "freqmin_hz", "freqmax_hz", "flags",
          "pga_m_s2", "pgv_m_s", "pgd_m", "psa0.3_m_s2",
          "psa1.0_m_s2", "psa3.0_m_s2", "misfit_pga_log10", "misfit_pgv_log10",
          "misfit_pgd_log10", "misfit_psa0.3_log10", "misfit_psa1.0_log10",
          "misfit_psa3.0_log10"]


def test_csv_is_byte_identical_whatever_the_row_order(tmp_path):
    rows, misfits = example_rows(), example_misfits()
    header = write_pgm_csv(tmp_path / "a.csv", rows, misfits)
    assert header == HEADER
    reference = (tmp_path / "a.csv").read_bytes()
    generator = random.Random(20190706)
    for attempt in range(5):
        generator.shuffle(rows)
        generator.shuffle(misfits)
        write_pgm_csv(tmp_path / f"b{attempt}.csv", [dict(r) for r in rows], misfits)
        assert (tmp_path / f"b{attempt}.csv").read_bytes() == reference
    # numpy scalars give the same bytes as Python floats
    as_numpy = [{k: np.float64(v) if isinstance(v, float) else v for k, v in r.items()}
                for r in rows]
    write_pgm_csv(tmp_path / "c.csv", as_numpy, misfits)
    assert (tmp_path / "c.csv").read_bytes() == reference


def test_csv_content(tmp_path):
    path = tmp_path / "pgm.csv"
    write_pgm_csv(path, example_rows(), example_misfits())
    text = path.read_text()
    assert text.endswith("\n") and "\r" not in text
    lines = list(csv.DictReader(io.StringIO(text)))
    keys = [(r["station"], r["channel"], r["kind"], r["band"]) for r in lines]
    assert keys == [
        ("CI.CCC", "HNE", "observed", "common"), ("CI.CCC", "HNE", "observed", "record"),
        ("CI.CCC", "HNE", "synthetic", "common"),
        ("CI.CCC", "HNH", "observed", "common"), ("CI.CCC", "HNH", "observed", "record"),
        ("CI.CCC", "HNN", "observed", "common"), ("CI.CCC", "HNN", "observed", "record"),
        ("CI.CCC", "HNN", "synthetic", "common"),
        ("CI.CCC", "HNZ", "observed", "common"), ("CI.CCC", "HNZ", "observed", "record"),
        ("CI.CCC", "maxh", "observed", "common"), ("CI.CCC", "maxh", "observed", "record"),
        ("CI.WBM", "maxh", "observed", "common"), ("CI.WBM", "maxh", "observed", "record"),
        ("CI.WBM", "maxh", "synthetic", "common"),
    ]
    hne = lines[0]
    assert float(hne["pga_m_s2"]) == 0.980665  # exact round trip, SI units unchanged
    assert float(hne["psa0.3_m_s2"]) == 2.941995
    assert float(hne["latitude_deg"]) == 35.52495
    assert hne["name"] == "Christmas Canyon China Lake"
    assert float(hne["misfit_pga_log10"]) == math.log10(0.5)
    assert hne["misfit_pgv_log10"] == ""
    # the misfit of a channel is on its observed and synthetic common-band lines only
    assert lines[2]["misfit_pga_log10"] == hne["misfit_pga_log10"]
    assert lines[1]["misfit_pga_log10"] == ""
    assert lines[7]["misfit_pgv_log10"] == "-1.0815"
    assert lines[12]["pgd_m"] == "" and lines[12]["psa1.0_m_s2"] == ""


def test_csv_other_periods_and_awkward_names(tmp_path):
    row = motion(dict(CCC, name='Canyon, "China" Lake', location="10"), "HNE", pga=1.0,
                 psa0_75=2.0, psa10_0=0.5)
    header = write_pgm_csv(tmp_path / "p.csv", [row])
    assert header[17:19] == ["psa0.75_m_s2", "psa10.0_m_s2"]
    (line,) = csv.DictReader(io.StringIO((tmp_path / "p.csv").read_text()))
    assert line["name"] == 'Canyon, "China" Lake'
    assert line["location"] == "10"
    assert (line["psa0.75_m_s2"], line["psa10.0_m_s2"]) == ("2.0", "0.5")


def test_csv_duplicate_rows_are_an_error(tmp_path):
    rows = [motion(CCC, "HNE", pga=1.0), motion(CCC, "HNE", pga=2.0)]
    with pytest.raises(ValueError, match=re.escape("two observed record rows for CI.CCC --.HNE")):
        write_pgm_csv(tmp_path / "p.csv", rows)


def test_pipeline_style_rows(tmp_path):
    """Rows as the pipeline builds them: extra keys, synthetic channels HX?, ``psa1`` for 1 s,
    misfits keyed by the observed channel."""
    extra = {"elevation": 680.0, "azimuth": 137.5}
    rows = []
    for kind, band, scale in (("observed", "HN", 1.0), ("synthetic", "HX", 0.5)):
        for comp, pga in (("E", 0.980665), ("N", 1.96133), ("Z", 0.5)):
            rows.append(dict(CCC, **extra, kind=kind, band="common", channel=band + comp,
                             component=comp, pga=pga * scale,
                             **{"psa0.3": 2 * pga * scale, "psa1": pga, "psa3": pga / 10}))
        rows.append(dict(CCC, **extra, kind=kind, band="common", channel="maxh",
                         component="maxh", pga=1.96133 * scale))
    rows += [dict(r, band="record") for r in rows if r["kind"] == "observed"]
    misfits = [{"station": "CI.CCC", "channel": ch, "component": ch[-1] if ch != "maxh" else ch,
                "metric": metric, "misfit": value}
               for ch in ("HNE", "HNN", "HNZ", "maxh")
               for metric, value in (("pga", math.log10(0.5)), ("psa1", 0.0))
               if not (ch == "maxh" and metric == "psa1")]
    rejected = [{"station": "CI.SLA", "stage": "preprocess", "reason": "SNR below 3"}]

    collection = write_stationlist(tmp_path / "s.json", EVENT, rows, misfits, rejected)
    props = feature(collection, "CI.CCC")["properties"]
    assert list(amplitudes(props["channels"][0])) == ["pga", "sa(0.3)", "sa(1.0)", "sa(3.0)"]
    assert [c["name"] for c in props["synthetic"]["channels"]] == ["--.HXE", "--.HXN", "--.HXZ"]
    assert props["synthetic"]["pga"] == pytest.approx(10.0, rel=1e-12)
    assert [c["name"] for c in props["misfit"]["channels"]] == [
        "--.HNE", "--.HNN", "--.HNZ", "--.maxh"]
    assert props["misfit"]["channels"][0]["values"] == {
        "pga": pytest.approx(-0.30103, abs=1e-5), "sa(1.0)": 0.0}
    assert collection["rejected"] == [
        {"id": "CI.SLA", "reason": "SNR below 3", "stage": "preprocess"}]

    header = write_pgm_csv(tmp_path / "p.csv", rows, misfits)
    assert header[17:] == ["psa0.3_m_s2", "psa1.0_m_s2", "psa3.0_m_s2", "misfit_pga_log10",
                           "misfit_pgv_log10", "misfit_pgd_log10", "misfit_psa0.3_log10",
                           "misfit_psa1.0_log10", "misfit_psa3.0_log10"]
    lines = {(r["channel"], r["kind"]): r
             for r in csv.DictReader(io.StringIO((tmp_path / "p.csv").read_text()))
             if r["band"] == "common"}
    # the synthetic HXE line carries the misfit given for HNE (same component)
    assert lines[("HXE", "synthetic")]["misfit_pga_log10"] == repr(math.log10(0.5))
    assert lines[("HXE", "synthetic")]["misfit_psa1.0_log10"] == "0.0"
    assert lines[("maxh", "synthetic")]["misfit_pga_log10"] == repr(math.log10(0.5))
    assert float(lines[("HNN", "observed")]["psa1.0_m_s2"]) == 1.96133


def test_misfits_do_not_jump_between_observed_channels(tmp_path):
    rows = [motion(CCC, "HNE", band="common", pga=1.0),
            motion(CCC, "HHE", band="common", pga=1.1),
            motion(CCC, "HXE", "synthetic", pga=0.5)]
    misfits = [{"station": "CI.CCC", "channel": "HNE", "metric": "pga", "misfit": -0.3}]
    write_pgm_csv(tmp_path / "p.csv", rows, misfits)
    lines = {(r["channel"], r["kind"]): r["misfit_pga_log10"]
             for r in csv.DictReader(io.StringIO((tmp_path / "p.csv").read_text()))}
    assert lines == {("HHE", "observed"): "", ("HNE", "observed"): "-0.3",
                     ("HXE", "synthetic"): "-0.3"}


def test_flagged_amplitudes_carry_shakemap_letters(tmp_path):
    """dare's flags become the amplitude flags ShakeMap knows (shakelib's station.py):
    I incomplete, G glitch, T outlier, M review; an SNR-limited PSA period only flags itself."""
    rows = [motion(CCC, "HNE", pga=0.980665, pgv=0.05, psa0_3=1.0, psa3_0=0.1,
                   flags=["partial", "snr_limited"], unusable=["psa3"]),
            motion(CCC, "HNN", pga=1.96133, pgv=0.12, psa0_3=1.0, psa3_0=0.2,
                   flags=["sensitivity_only", "anomalous"]),
            motion(CCC, "HNZ", pga=0.5, pgv=0.1, psa0_3=1.0, psa3_0=0.1, flags=["clipped"])]
    assert outputs.shakemap_flag(["partial"], "pga") == "I"
    assert outputs.shakemap_flag(["snr_limited"], "pga", ["psa3.0"]) == "0"
    assert outputs.shakemap_flag(["snr_limited"], "psa3.0", ["psa3.0"]) == "G"
    collection = write_stationlist(tmp_path / "s.json", EVENT, rows)
    channels = {c["name"]: c for c in feature(collection, "CI.CCC")["properties"]["channels"]}
    hne = {a["name"]: a for a in channels["--.HNE"]["amplitudes"]}
    assert (hne["pga"]["flag"], hne["pga"]["reasons"]) == ("I", ["partial"])
    assert (hne["sa(3.0)"]["flag"], hne["sa(3.0)"]["reasons"]) == ("GI",
                                                                    ["partial", "snr_limited"])
    hnn = amplitudes(channels["--.HNN"])
    assert {name: flag for name, (_, _, flag) in hnn.items()} == dict.fromkeys(
        ["pga", "pgv", "sa(0.3)", "sa(3.0)"], "MT")
    assert amplitudes(channels["--.HNZ"])["pga"][2] == "G"
    # a ShakeMap reader uses no flagged amplitude: nothing of CI.CCC is ingested
    assert _shakemap_ingest(json.loads((tmp_path / "s.json").read_text()))["CI.CCC"] == {}
    header = write_pgm_csv(tmp_path / "p.csv", rows)
    assert "flags" in header
    lines = {r["channel"]: r for r in csv.DictReader(io.StringIO(
        (tmp_path / "p.csv").read_text()))}
    assert lines["HNE"]["flags"] == "partial;snr_limited;unusable:psa3.0"
    assert lines["HNN"]["flags"] == "anomalous;sensitivity_only"
