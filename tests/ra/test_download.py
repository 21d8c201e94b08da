"""The download stage: FDSN (against a local FDSN service), local folders and SDS archives.

Expected values are computed here independently: station distances with
``obspy.geodetics.gps2dist_azimuth`` from the bundled StationXML, samples and coverage from
the bundled miniSEED files sliced to the window.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import obspy
import pytest
from fdsn_server import EXAMPLE, FDSNServer
from obspy import Stream, UTCDateTime
from obspy.geodetics import gps2dist_azimuth

import dare_cli.ra.download.deliver as dl
from dare_cli.ra.download import DownloadConfig, download
from dare_cli.ra.errors import ConfigError, RAError

T0 = UTCDateTime("2019-07-06T03:19:53")  # origin time (event.json)
EPICENTRE = (35.770, -117.599)
BEFORE, AFTER = 30.0, 360.0  # the bundled records span origin - 30 s .. origin + 360 s
T1, T2 = T0 - BEFORE, T0 + AFTER
WINDOW_S = BEFORE + AFTER


@functools.cache
def coordinates() -> dict[str, tuple[float, float]]:
    """``NET.STA`` -> (latitude, longitude) from the bundled StationXML."""
    out = {}
    for path in sorted((EXAMPLE / "stations").glob("*.xml")):
        station = obspy.read_inventory(str(path))[0][0]
        out[path.stem] = (station.latitude, station.longitude)
    return out


def within(radius_km: float) -> set[str]:
    return {
        sid
        for sid, (lat, lon) in coordinates().items()
        if gps2dist_azimuth(*EPICENTRE, lat, lon)[0] / 1e3 <= radius_km
    }


@functools.cache
def original(tid: str) -> obspy.Trace:
    """A bundled trace sliced to the window (samples inside [T1, T2])."""
    tr = obspy.read(str(EXAMPLE / "waveforms" / f"{tid}.mseed"))[0]
    return tr.slice(T1, T2, nearest_sample=False)


def covered_s(tr: obspy.Trace) -> float:
    return float(min(tr.stats.endtime + tr.stats.delta, T2) - max(tr.stats.starttime, T1))


def files_on_disk(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def assert_clean(root: Path, manifest: dict[str, Any]) -> None:
    """No temporary file left, and the manifest lists exactly the files there."""
    assert not [p for p in root.rglob("*") if p.name.startswith(".") or p.suffix == ".part"]
    assert files_on_disk(root) == set(manifest["files"]) | {"manifest.json"}


def copy_example(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest, copy_function=shutil.copyfile)
    return dest


def local(directory: Path = EXAMPLE, **kw: Any) -> DownloadConfig:
    return DownloadConfig(
        source="local", directory=str(directory), before=BEFORE, after=AFTER, **kw
    )


def fdsn(url: str, **kw: Any) -> DownloadConfig:
    kw.setdefault("event_id", "ci38457511")
    return DownloadConfig(source="fdsn", provider=url, before=BEFORE, after=AFTER, **kw)


# -- FDSN ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("radius_km", "count"), [(31.0, 3), (36.0, 9)])
def test_fdsn_event_stations_within_radius_and_waveforms(
    fdsn_service: FDSNServer, tmp_path: Path, radius_km: float, count: int
) -> None:
    result = download(fdsn(fdsn_service.url, radius_km=radius_km), tmp_path)
    expected = within(radius_km)
    assert len(expected) == count  # radii chosen >= 0.5 km away from every station distance
    assert set(result.stations) == expected
    assert result.failed == ()

    event = obspy.read_events(str(tmp_path / "event.xml"))[0]
    origin = event.preferred_origin()
    assert origin.time == T0
    assert (origin.latitude, origin.longitude, origin.depth) == (35.770, -117.599, 8000.0)
    assert event.preferred_magnitude().mag == 7.1

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["event"]["id"].endswith("ci38457511")
    assert manifest["event"]["magnitude_type"] == "Mw"
    assert manifest["request"]["window"] == {
        "start": "2019-07-06T03:19:23.000000Z",
        "end": "2019-07-06T03:25:53.000000Z",
        "duration_s": WINDOW_S,
    }
    # maxradius in degrees on a sphere of radius 6371 km
    assert manifest["request"]["region"]["maxradius_deg"] == pytest.approx(
        np.degrees(radius_km / 6371.0), rel=1e-9
    )
    assert manifest["request"]["config"]["channels"] == ["HN?", "HH?", "BH?"]

    for sid in expected:
        entry = manifest["stations"][sid]
        distance, azimuth, back_azimuth = gps2dist_azimuth(*EPICENTRE, *coordinates()[sid])
        assert entry["distance_km"] == pytest.approx(distance / 1e3, abs=1e-3)
        assert entry["azimuth_deg"] == pytest.approx(azimuth, abs=1e-3)
        assert entry["back_azimuth_deg"] == pytest.approx(back_azimuth, abs=1e-3)
        assert (entry["channel_pattern"], entry["location"]) == ("HN?", "")

        inventory = obspy.read_inventory(str(tmp_path / entry["stationxml"]))
        channels = inventory.select(network="CI", station=sid.split(".")[1])
        ids = sorted(f"{sid}.{c.location_code}.{c.code}" for n in channels for s in n for c in s)
        assert ids == [f"{sid}..HNE", f"{sid}..HNN", f"{sid}..HNZ"]  # location 2C not kept
        assert inventory.get_response(f"{sid}..HNZ", T0).response_stages

        for channel in entry["channels"]:
            want = original(channel["id"])
            got = obspy.read(str(tmp_path / channel["file"]))
            assert len(got) == 1
            assert got[0].stats.starttime == want.stats.starttime
            np.testing.assert_array_equal(got[0].data, want.data)
            assert channel["npts"] == want.stats.npts
            assert channel["covered_s"] == pytest.approx(covered_s(want), abs=1e-6)
            assert channel["coverage"] == pytest.approx(covered_s(want) / WINDOW_S, abs=1e-6)
            assert channel["gaps"] == []

    partial = sorted(f["channel"] for f in manifest["flags"] if f["flag"] == "partial_coverage")
    assert partial == (
        ["CI.MPM..HNE", "CI.MPM..HNN", "CI.MPM..HNZ"] if "CI.MPM" in expected else []
    )
    posts = [r for r in fdsn_service.requests if r[0] == "POST"]
    assert [r[1] for r in posts] == ["/fdsnws/dataselect/1/query"]  # one bulk request
    assert_clean(tmp_path, manifest)


def _add_channels(server: FDSNServer, station: str, *, data: bool) -> None:
    """Give ``CI.<station>`` HH? channels (copies of its HN? ones), with or without data."""
    for network in server.data.inventory:
        for sta in network:
            if sta.code == station:
                extra = [copy.deepcopy(c) for c in sta.channels if c.code.startswith("HN")]
                for c in extra:
                    c.code = "HH" + c.code[2]
                sta.channels.extend(extra)
    if data:
        for tr in server.data.stream.select(station=station, channel="HN?").copy():
            tr.stats.channel = "HH" + tr.stats.channel[2]
            server.data.stream += tr


def test_fdsn_channel_priority(fdsn_service: FDSNServer, tmp_path: Path) -> None:
    _add_channels(fdsn_service, "WNM", data=True)  # HH? with data: wins
    _add_channels(fdsn_service, "JRC2", data=False)  # HH? metadata only: falls back to HN?
    result = download(fdsn(fdsn_service.url, radius_km=31.0, channels=("HH?", "HN?")), tmp_path)
    stations = result.manifest["stations"]
    assert {s: e["channel_pattern"] for s, e in stations.items()} == {
        "CI.JRC2": "HN?",
        "CI.WNM": "HH?",
        "CI.WVP2": "HN?",
    }
    assert [c["id"] for c in stations["CI.WNM"]["channels"]] == [
        "CI.WNM..HHE",
        "CI.WNM..HHN",
        "CI.WNM..HHZ",
    ]
    assert sorted(p.name for p in result.waveform_files["CI.WNM"]) == [
        "CI.WNM..HHE.mseed",
        "CI.WNM..HHN.mseed",
        "CI.WNM..HHZ.mseed",
    ]
    bulk = [r[2] for r in fdsn_service.requests if r[0] == "POST"]
    assert len(bulk) == 2  # a second round only for the station whose first choice had no data
    assert "CI JRC2 * HN?" in bulk[1] and "WNM" not in bulk[1]


def test_fdsn_only_lower_priority_code_exists(fdsn_server: str, tmp_path: Path) -> None:
    result = download(fdsn(fdsn_server, radius_km=31.0, channels=("HH?", "HN?")), tmp_path)
    assert {e["channel_pattern"] for e in result.manifest["stations"].values()} == {"HN?"}
    assert len(result.stations) == 3


def test_fdsn_location_with_most_usable_channels(fdsn_service: FDSNServer, tmp_path: Path) -> None:
    data = fdsn_service.data
    for tr in data.stream.select(station="LRL").copy():
        tr.stats.location = "2C"  # CI.LRL.2C.HN? has StationXML with responses
        data.stream += tr
    for network in data.inventory:
        for station in network:
            for channel in station:
                if (station.code, channel.location_code, channel.code) in {
                    ("LRL", "", "HNZ"),
                    ("WNM", "", "HNZ"),
                }:
                    channel.response = None
    result = download(fdsn(fdsn_service.url, radius_km=34.0), tmp_path)
    stations = result.manifest["stations"]
    assert stations["CI.LRL"]["location"] == "2C"  # 3 usable channels there, 2 at ""
    assert [c["id"] for c in stations["CI.LRL"]["channels"]] == [
        "CI.LRL.2C.HNE",
        "CI.LRL.2C.HNN",
        "CI.LRL.2C.HNZ",
    ]
    assert [c["channel"] for c in stations["CI.WNM"]["channels"]] == ["HNE", "HNN"]
    flags = [(f["channel"], f["flag"]) for f in result.manifest["flags"]]
    assert [f for f in flags if f[1] != "partial_coverage"] == [("CI.WNM..HNZ", "no_response")]
    wnm = obspy.read_inventory(str(result.station_files["CI.WNM"]))
    assert sorted(c.code for c in wnm[0][0]) == ["HNE", "HNN"]


def test_fdsn_unknown_event_id(fdsn_server: str, tmp_path: Path) -> None:
    with pytest.raises(RAError, match=r"event 'ci00000000' not found at FDSN provider 'http"):
        download(fdsn(fdsn_server, event_id="ci00000000"), tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert "ci00000000" in manifest["error"]
    assert manifest["stations"] == {} and not (tmp_path / "event.xml").exists()


def test_fdsn_station_without_data_or_response(fdsn_service: FDSNServer, tmp_path: Path) -> None:
    data = fdsn_service.data
    data.stream = Stream([tr for tr in data.stream if tr.stats.station != "SLA"])
    for network in data.inventory:
        for station in network:
            if station.code == "WBM":
                for channel in station:
                    channel.response = None
    result = download(fdsn(fdsn_service.url, radius_km=36.0), tmp_path)
    failed = {f["station"]: f["reason"] for f in result.manifest["failed"]}
    assert failed == {"CI.SLA": "no_data", "CI.WBM": "no_response"}
    assert set(result.stations) == within(36.0) - {"CI.SLA", "CI.WBM"}
    assert not list(tmp_path.rglob("CI.SLA*")) and not list(tmp_path.rglob("CI.WBM*"))
    assert_clean(tmp_path, dict(result.manifest))


def test_fdsn_failing_requests_fall_back_per_station(
    fdsn_service: FDSNServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve = fdsn_service.dataselect

    def broken(params: dict[str, str], lines: list[list[str]]) -> Any:
        if lines:
            raise RuntimeError("bulk requests are broken today")
        if params.get("station") == "WNM":
            raise RuntimeError("WNM is broken")
        return serve(params, lines)

    monkeypatch.setattr(fdsn_service, "dataselect", broken)
    result = download(fdsn(fdsn_service.url, radius_km=31.0), tmp_path)
    assert result.stations == ("CI.JRC2", "CI.WVP2")
    [failure] = result.manifest["failed"]
    assert (failure["station"], failure["reason"]) == ("CI.WNM", "request_failed")
    assert "Internal server error" in failure["detail"]


# -- local folders ---------------------------------------------------------------------------


def test_local_bundled_example(tmp_path: Path) -> None:
    result = download(local(), tmp_path)
    assert set(result.stations) == set(coordinates())  # all 10 (radius 200 km)
    manifest = result.manifest
    assert manifest["failed"] == [] and manifest["bad_files"] == []
    flags = {(f["channel"], f["flag"]) for f in manifest["flags"]}
    assert flags == {(f"CI.MPM..HN{c}", "partial_coverage") for c in "ENZ"}
    for sid, entry in manifest["stations"].items():
        for channel in entry["channels"]:
            want = covered_s(original(channel["id"]))
            assert channel["covered_s"] == pytest.approx(want, abs=1e-6)
            if sid != "CI.MPM":
                assert channel["coverage"] > 0.999
    mpm = {c["channel"]: c for c in manifest["stations"]["CI.MPM"]["channels"]}
    assert mpm["HNE"]["covered_s"] == pytest.approx(67.22, abs=1e-6)  # of 390 s
    assert mpm["HNE"]["coverage"] == pytest.approx(67.22 / 390.0, abs=1e-6)
    lrl = obspy.read_inventory(str(result.station_files["CI.LRL"]))
    assert {c.location_code for c in lrl[0][0]} == {""}
    assert_clean(tmp_path, dict(manifest))


def test_local_corrupt_truncated_and_empty_files(tmp_path: Path) -> None:
    folder = copy_example(tmp_path / "in")
    (folder / "waveforms" / "CI.SLA..HNE.mseed").write_bytes(b"not miniSEED at all\n" * 300)
    (folder / "waveforms" / "CI.WBM..HNZ.mseed").write_bytes(b"")
    truncated = folder / "waveforms" / "CI.CCC..HNN.mseed"
    truncated.write_bytes(truncated.read_bytes()[:3000])
    (folder / "waveforms" / "unnamed.mseed").write_bytes(b"\x00garbage" * 100)
    result = download(local(folder), tmp_path / "out")

    failed = {f["station"]: f for f in result.manifest["failed"]}
    assert {s: f["reason"] for s, f in failed.items()} == {
        "CI.CCC": "corrupt_file",
        "CI.SLA": "corrupt_file",
        "CI.WBM": "empty_file",
    }
    for sid, name in [
        ("CI.CCC", "CI.CCC..HNN"),
        ("CI.SLA", "CI.SLA..HNE"),
        ("CI.WBM", "CI.WBM..HNZ"),
    ]:
        assert failed[sid]["file"] == str(folder / "waveforms" / f"{name}.mseed")
        assert f"{name}.mseed" in failed[sid]["detail"]
    bad = {Path(b["file"]).name: b["station"] for b in result.manifest["bad_files"]}
    assert bad == {
        "CI.CCC..HNN.mseed": "CI.CCC",
        "CI.SLA..HNE.mseed": "CI.SLA",
        "CI.WBM..HNZ.mseed": "CI.WBM",
        "unnamed.mseed": None,
    }
    assert set(result.stations) == set(coordinates()) - {"CI.CCC", "CI.SLA", "CI.WBM"}
    out = tmp_path / "out"
    assert not [p for p in out.rglob("*") if p.name.startswith(("CI.CCC", "CI.SLA", "CI.WBM"))]
    assert_clean(out, dict(result.manifest))


def test_min_coverage_drops_partial_records(tmp_path: Path) -> None:
    result = download(local(min_coverage=0.5, radius_km=34.0), tmp_path)
    assert set(result.stations) == within(34.0) - {"CI.MPM"}
    failed = {f["station"]: f["reason"] for f in result.manifest["failed"]}
    assert failed == {
        "CI.MPM": "insufficient_coverage",
        "CI.CCC": "outside_radius",
        "CI.WRV2": "outside_radius",
    }
    assert set(coordinates()) - within(34.0) == {"CI.CCC", "CI.WRV2"}
    assert not list(tmp_path.rglob("CI.MPM*"))


# -- SDS archives ----------------------------------------------------------------------------


def write_sds(root: Path, stream: Stream) -> None:
    for tid in sorted({tr.id for tr in stream}):
        traces = stream.select(id=tid)
        net, sta, _, cha = tid.split(".")
        t = traces[0].stats.starttime
        folder = root / f"{t.year}" / net / sta / f"{cha}.D"
        folder.mkdir(parents=True, exist_ok=True)
        traces.write(str(folder / f"{tid}.D.{t.year}.{t.julday:03d}"), format="MSEED")


def test_sds_archive_with_a_gap_and_a_station_without_metadata(tmp_path: Path) -> None:
    root = tmp_path / "sds"
    stream = obspy.read(str(EXAMPLE / "waveforms" / "*.mseed"))
    sla = stream.select(id="CI.SLA..HNZ")[0]
    first, second = sla.copy(), sla.copy()
    first.data = sla.data[:10000]
    second.data = sla.data[11000:]  # 1000 samples (10 s at 100 Hz) missing
    second.stats.starttime = sla.stats.starttime + 11000 * sla.stats.delta
    stream.remove(sla)
    stream += Stream([first, second])
    stranger = stream.select(station="CCC").copy()
    for tr in stranger:
        tr.stats.station = "XXX"  # data, but no StationXML
    write_sds(root, stream + stranger)
    shutil.copytree(EXAMPLE / "stations", root / "stations", copy_function=shutil.copyfile)

    config = DownloadConfig(
        source="sds",
        directory=str(root),
        quakeml=str(EXAMPLE / "event.xml"),
        radius_km=36.0,
        before=BEFORE,
        after=AFTER,
    )
    result = download(config, tmp_path / "out")
    assert set(result.stations) == within(36.0)
    assert [(f["station"], f["reason"]) for f in result.manifest["failed"]] == [
        ("CI.WRV2", "outside_radius"),  # 37.3 km
        ("CI.XXX", "no_metadata"),
    ]
    channel = next(
        c for c in result.manifest["stations"]["CI.SLA"]["channels"] if c["channel"] == "HNZ"
    )
    assert channel["segments"] == 2
    [gap] = channel["gaps"]
    assert (gap["missing_samples"], gap["missing_s"]) == (1000, 10.0)
    want = covered_s(original("CI.SLA..HNZ")) - 10.0
    assert channel["covered_s"] == pytest.approx(want, abs=1e-6)
    written = obspy.read(str(tmp_path / "out" / channel["file"]))
    assert len(written) == 2  # not merged, not filled
    gaps = [f for f in result.manifest["flags"] if f["flag"] == "gaps"]
    assert [f["channel"] for f in gaps] == ["CI.SLA..HNZ"]
    got = obspy.read(str(tmp_path / "out" / "waveforms" / "CI.WNM..HNE.mseed"))[0]
    np.testing.assert_array_equal(got.data, original("CI.WNM..HNE").data)


# -- files are whole or absent ----------------------------------------------------------------


def _failing_write(monkeypatch: pytest.MonkeyPatch, channel: str, exc: BaseException) -> None:
    """Make the write of one channel's miniSEED fail half-way."""
    write = dl._write_mseed

    def half_then_fail(stream: Stream, path: str) -> None:
        if channel in Path(path).name:
            Path(path).write_bytes(b"\x00" * 1000)
            raise exc
        write(stream, path)

    monkeypatch.setattr(dl, "_write_mseed", half_then_fail)


def test_write_failure_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_write(monkeypatch, "CI.WNM..HNN", OSError(28, "No space left on device"))
    result = download(local(radius_km=31.0), tmp_path)
    assert result.stations == ("CI.JRC2", "CI.WVP2")
    [failure] = [f for f in result.manifest["failed"] if f["reason"] != "outside_radius"]
    assert (failure["station"], failure["reason"]) == ("CI.WNM", "write_failed")
    assert "No space left on device" in failure["detail"]
    assert not list(tmp_path.rglob("*WNM*"))  # HNE was written, then removed with the station
    assert_clean(tmp_path, dict(result.manifest))


def test_interrupted_run_still_writes_its_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_write(monkeypatch, "CI.WNM..HNN", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        download(local(radius_km=31.0), tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error"].startswith("KeyboardInterrupt")
    assert list(manifest["stations"]) == ["CI.JRC2"]  # done before the interruption
    assert not list(tmp_path.rglob("*WNM*")) and not list(tmp_path.rglob("*WVP2*"))
    assert_clean(tmp_path, manifest)


def test_rerun_replaces_the_previous_download(tmp_path: Path) -> None:
    download(local(radius_km=31.0), tmp_path)
    result = download(local(radius_km=29.5), tmp_path)
    assert result.stations == ("CI.WNM", "CI.WVP2")
    assert not list(tmp_path.rglob("CI.JRC2*"))
    jrc2 = next(f for f in result.manifest["failed"] if f["station"] == "CI.JRC2")
    assert jrc2["reason"] == "outside_radius" and jrc2["detail"].startswith("30.2 km")
    assert_clean(tmp_path, dict(result.manifest))


# -- bad configuration and events ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "ftp"}, "source must be one of fdsn, local, sds"),
        ({"radius_km": 0.0}, "radius_km must be > 0"),
        ({"min_coverage": 1.5}, "min_coverage must be within 0..1"),
        ({"before": -1.0}, "before and after must be >= 0"),
        ({"channels": ()}, "channels must be channel codes"),
    ],
)
def test_bad_configuration(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DownloadConfig(**kwargs)


def test_channels_may_be_a_comma_separated_string() -> None:
    assert DownloadConfig(channels="HN?, HH?").channels == ("HN?", "HH?")  # type: ignore[arg-type]


def test_missing_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="source 'local' needs 'directory'"):
        download(DownloadConfig(), tmp_path)
    with pytest.raises(RAError, match=r"event file .*nowhere\.xml does not exist"):
        download(local(quakeml=str(tmp_path / "nowhere.xml")), tmp_path / "out")
    with pytest.raises(RAError, match=r"has no event 'us1000abcd'"):
        download(local(quakeml=str(EXAMPLE / "event.xml"), event_id="us1000abcd"), tmp_path / "o")


def test_rerun_removes_only_regular_files_inside_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    download(local(radius_km=31.0), out)
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"] += ["../keep.txt", str(keep), "link.txt"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "link.txt").symlink_to(keep)  # listed, but a link: dare never wrote it
    result = download(local(radius_km=29.5), out)
    assert keep.read_text() == "mine" and (out / "link.txt").is_symlink()
    assert result.stations == ("CI.WNM", "CI.WVP2")
