"""Inputs as users have them: flat local folders, sensitivity-only metadata, damaged miniSEED,
and codes that must never become file names. Every damaged or crafted file is a copy of the
bundled Ridgecrest files, made in tmp_path with obspy or by patching bytes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import obspy
import pytest
from fdsn_server import EXAMPLE
from obspy import Inventory, Stream, UTCDateTime

from dare_cli.ra.download import DownloadConfig, download
from dare_cli.ra.mseedcheck import DamagedFileError, check_framing, read_checked
from dare_cli.ra.names import (
    OutsideRunFolderError,
    UnsafeNameError,
    check_code,
    check_station_id,
    contained_path,
    station_path,
)
from dare_cli.ra.runfolder import RUN_MARKER

T0 = UTCDateTime("2019-07-06T03:19:53")
BEFORE, AFTER = 30.0, 360.0
STATIONS = ("CI.CCC", "CI.JRC2", "CI.LRL", "CI.MPM", "CI.SLA", "CI.WBM", "CI.WCS2", "CI.WNM",
            "CI.WRV2", "CI.WVP2")
RECORD = 4096  # record length of the bundled miniSEED files


def local(directory: Path, **kw: Any) -> DownloadConfig:
    return DownloadConfig(source="local", directory=str(directory), before=BEFORE,
                          after=AFTER, **kw)


def copy_example(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest, copy_function=shutil.copyfile)
    return dest


def failures(result: Any) -> dict[str, tuple[str, str]]:
    return {f["station"]: (f["reason"], f["detail"]) for f in result.manifest["failed"]}


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# -- flat local folders -----------------------------------------------------------------------


def flat_folder(root: Path) -> Path:
    """The example's data in another layout: two miniSEED files of several stations under
    odd names in sub-folders, one StationXML of every station, and other files beside."""
    (root / "raw" / "day1").mkdir(parents=True)
    (root / "meta").mkdir()
    stream = obspy.read(str(EXAMPLE / "waveforms" / "*.mseed"))
    first = Stream([tr for tr in stream if tr.stats.station in ("CCC", "JRC2", "LRL")])
    rest = Stream([tr for tr in stream if tr not in first])
    first.write(str(root / "raw" / "part-1.bin"), format="MSEED")
    rest.write(str(root / "raw" / "day1" / "stream"), format="MSEED")  # no suffix at all
    inventory = Inventory(networks=[])
    for path in sorted((EXAMPLE / "stations").glob("*.xml")):
        inventory += obspy.read_inventory(str(path))
    inventory.write(str(root / "meta" / "network.stationxml"), format="STATIONXML")
    shutil.copyfile(EXAMPLE / "event.xml", root / "event.xml")
    shutil.copyfile(EXAMPLE / "README.md", root / "README.md")
    (root / "meta" / "notes.json").write_text('{"operator": "me"}')
    (root / ".DS_Store").write_bytes(b"\x00\x01garbage")  # hidden: skipped, not reported
    (root / "raw" / "._part-1.bin").write_bytes(b"AppleDouble garbage")
    return root


def test_a_flat_folder_in_any_layout_gives_the_same_download(tmp_path):
    reference = download(local(EXAMPLE), tmp_path / "reference").manifest
    folder = flat_folder(tmp_path / "flat")
    result = download(local(folder), tmp_path / "out")
    manifest = result.manifest
    assert result.stations == STATIONS
    assert manifest["failed"] == [] and manifest["bad_files"] == []
    assert sorted(manifest["ignored_files"]) == [str(folder / "README.md"),
                                                 str(folder / "meta" / "notes.json")]
    assert manifest["event"]["source"] == {"file": str(folder / "event.xml"),
                                           "format": "quakeml"}
    for sid in STATIONS:
        ours, theirs = manifest["stations"][sid], reference["stations"][sid]
        for key in ("distance_km", "channel_pattern", "location", "stationxml"):
            assert ours[key] == theirs[key], (sid, key)
        assert [(c["id"], c["npts"], c["covered_s"], c["file"]) for c in ours["channels"]] == \
            [(c["id"], c["npts"], c["covered_s"], c["file"]) for c in theirs["channels"]]
    for channel in manifest["stations"]["CI.LRL"]["channels"]:  # bytes of the data identical
        got = obspy.read(str(tmp_path / "out" / channel["file"]))
        want = obspy.read(str(tmp_path / "reference" / channel["file"]))
        np.testing.assert_array_equal(got[0].data, want[0].data)
    assert obspy.read_inventory(str(tmp_path / "out" / "stations" / "CI.WNM.xml"))[0][0].code \
        == "WNM"


def test_a_flat_folder_skips_dare_run_folders_inside_it_and_honours_stationxml(tmp_path):
    folder = flat_folder(tmp_path / "flat")
    run = folder / "ra-run"  # a dare run folder inside the data folder, with altered data
    (run / "download" / "waveforms").mkdir(parents=True)
    (run / RUN_MARKER).write_text('{"format": "dare-run/1"}')
    altered = obspy.read(str(EXAMPLE / "waveforms" / "CI.CCC..HNZ.mseed"))
    altered[0].data = altered[0].data * 0 + 1
    altered.write(str(run / "download" / "waveforms" / "CI.CCC..HNZ.mseed"), format="MSEED")
    only_two = Inventory(networks=[])
    for name in ("CI.CCC.xml", "CI.WNM.xml"):
        only_two += obspy.read_inventory(str(EXAMPLE / "stations" / name))
    only_two.write(str(tmp_path / "two.xml"), format="STATIONXML")
    result = download(local(folder, stationxml=str(tmp_path / "two.xml")), tmp_path / "out")
    assert result.stations == ("CI.CCC", "CI.WNM")
    assert str(folder / "meta" / "network.stationxml") in result.manifest["ignored_files"]
    no_metadata = {s for s, (reason, _) in failures(result).items() if reason == "no_metadata"}
    assert no_metadata == set(STATIONS) - {"CI.CCC", "CI.WNM"}
    got = obspy.read(str(tmp_path / "out" / "waveforms" / "CI.CCC..HNZ.mseed"))[0]
    assert got.data.max() > 1  # the real record, not the copy in the run folder


def test_a_flat_folder_reports_bad_data_files_by_station(tmp_path):
    folder = flat_folder(tmp_path / "flat")
    (folder / "raw" / "CI.WNM.extra.mseed").write_bytes(b"not miniSEED\n" * 100)
    (folder / "meta" / "CI.SLA.xml").write_text("<?xml version='1.0'?><FDSNStationXML><Net")
    (folder / "raw" / "empty.msd").write_bytes(b"")
    result = download(local(folder), tmp_path / "out")
    bad = {Path(b["file"]).name: (b["station"], b["reason"], b["detail"])
           for b in result.manifest["bad_files"]}
    assert bad == {
        "CI.WNM.extra.mseed": ("CI.WNM", "corrupt_file",
                               f"{folder / 'raw' / 'CI.WNM.extra.mseed'}: not miniSEED (no "
                               "valid record header at byte 0)"),
        "CI.SLA.xml": ("CI.SLA", "corrupt_file", f"{folder / 'meta' / 'CI.SLA.xml'}: Couldn't "
                                                 "find end of Start Tag Net line 1, line 1, "
                                                 "column 42 (CI.SLA.xml, line 1)"),
        "empty.msd": (None, "empty_file", f"{folder / 'raw' / 'empty.msd'}: empty file"),
    }
    # a broken file named for a station rejects it, even with its metadata elsewhere too
    assert {s: r for s, (r, _) in failures(result).items()} == {
        "CI.WNM": "corrupt_file", "CI.SLA": "corrupt_file"}
    assert len(result.stations) == 8


# -- sensitivity-only metadata ----------------------------------------------------------------


def strip_stages(path: Path, *, rename_to: str | None = None) -> None:
    """Keep only the InstrumentSensitivity of every channel (and rename HN? if asked)."""
    inventory = obspy.read_inventory(str(path))
    for channel in inventory[0][0]:
        channel.response.response_stages = []
        if rename_to:
            channel.code = rename_to + channel.code[2]
    inventory.write(str(path), format="STATIONXML")


def test_sensitivity_only_accelerometers_are_kept_and_flagged(tmp_path):
    folder = copy_example(tmp_path / "in")
    original = obspy.read_inventory(str(EXAMPLE / "stations" / "CI.WBM.xml"))
    strip_stages(folder / "stations" / "CI.WBM.xml")
    result = download(local(folder), tmp_path / "out")
    assert "CI.WBM" in result.stations and result.manifest["failed"] == []
    channels = {c["channel"]: c for c in result.manifest["stations"]["CI.WBM"]["channels"]}
    for code, channel in channels.items():
        want = original.select(channel=code, location="")[0][0][0].response
        want = want.instrument_sensitivity
        assert channel["response"] == "sensitivity_only"
        assert channel["sensitivity"] == {"value": want.value, "frequency_hz": want.frequency,
                                          "input_units": "M/S**2", "output_units": "COUNTS"}
    flags = [(f["channel"], f["flag"], f["detail"]) for f in result.manifest["flags"]
             if f["station"] == "CI.WBM"]
    value = channels["HNZ"]["sensitivity"]["value"]
    assert flags[2] == ("CI.WBM..HNZ", "sensitivity_only",
                        f"kept: sensitivity only ({value:g} COUNTS per M/S**2 at 1 Hz), no "
                        "response stages: the preprocessing divides by the sensitivity")
    assert [f[:2] for f in flags] == [(f"CI.WBM..HN{c}", "sensitivity_only") for c in "ENZ"]
    assert {c["response"] for c in result.manifest["stations"]["CI.CCC"]["channels"]} == {"full"}
    written = obspy.read_inventory(str(tmp_path / "out" / "stations" / "CI.WBM.xml"))
    response = written[0][0][0].response
    assert response.response_stages == [] and response.instrument_sensitivity.value > 0


def test_sensitivity_only_is_not_enough_for_other_instruments(tmp_path):
    folder = copy_example(tmp_path / "in")
    strip_stages(folder / "stations" / "CI.WBM.xml", rename_to="HH")
    inventory = obspy.read_inventory(str(folder / "stations" / "CI.WBM.xml"))
    for channel in inventory[0][0]:  # a broadband sensor: velocity units
        channel.response.instrument_sensitivity.input_units = "M/S"
    inventory.write(str(folder / "stations" / "CI.WBM.xml"), format="STATIONXML")
    for path in sorted((folder / "waveforms").glob("CI.WBM..HN?.mseed")):
        stream = obspy.read(str(path))
        stream[0].stats.channel = "HH" + stream[0].stats.channel[2]
        path.unlink()
        stream.write(str(folder / "waveforms" / f"{stream[0].id}.mseed"), format="MSEED")
    result = download(local(folder, channels=("HH?",)), tmp_path / "out")
    reason, detail = failures(result)["CI.WBM"]
    assert reason == "no_response"
    assert detail == "; ".join(
        f"CI.WBM..HH{c}: sensitivity only, no response stages (only accelerometers are "
        "accepted so)" for c in "ENZ")


def test_the_download_stage_summary_lists_sensitivity_only_channels(tmp_path):
    from ra_helpers import example_config

    from dare_cli.ra.config import load_config
    from dare_cli.ra.pipeline import run_assessment

    config_path = example_config(tmp_path, tmp_path / "run", ["CI.CCC", "CI.WBM"])
    strip_stages(tmp_path / "data" / "stations" / "CI.WBM.xml")
    report = run_assessment(load_config(config_path), only=["download"])
    summary = report["stages"][0]["summary"]
    assert summary["sensitivity_only"] == ["CI.WBM..HNE", "CI.WBM..HNN", "CI.WBM..HNZ"]
    assert [f["flag"].split(":")[0] for f in summary["flags"]] == [
        "CI.WBM..HNE sensitivity_only", "CI.WBM..HNN sensitivity_only",
        "CI.WBM..HNZ sensitivity_only"]
    assert report["stations"]["CI.WBM"]["status"] == "processed"


# -- damaged miniSEED -------------------------------------------------------------------------


def patch(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset:offset + len(data)] = data
    path.write_bytes(bytes(raw))


def test_damaged_files_reject_their_station_with_the_reason(tmp_path):
    folder = copy_example(tmp_path / "in")
    waveforms = folder / "waveforms"
    sla = waveforms / "CI.SLA..HNE.mseed"  # 512-byte records, cut 2 bytes into the last one
    obspy.read(str(sla)).write(str(sla), format="MSEED", reclen=512)
    size = sla.stat().st_size
    sla.write_bytes(sla.read_bytes()[: size - 510])
    wcs2 = waveforms / "CI.WCS2..HNN.mseed"  # cut in the middle of a 4096-byte record
    wcs2.write_bytes(wcs2.read_bytes()[:-1000])
    last_wcs2 = wcs2.stat().st_size // RECORD * RECORD
    patch(waveforms / "CI.JRC2..HNE.mseed", 5 * RECORD + 6, b"X")  # quality indicator
    patch(waveforms / "CI.LRL..HNZ.mseed", 2 * RECORD + 22, b"\x03\xe7")  # day of year 999
    patch(waveforms / "CI.CCC..HNN.mseed", 5 * RECORD + 164, bytes(range(256)))  # Steim frames
    result = download(local(folder), tmp_path / "out")
    got = failures(result)
    assert got == {
        "CI.SLA": ("corrupt_file", f"{sla}: truncated: 2 of 512 bytes of the last record "
                                   f"(at byte {size - 512})"),
        "CI.WCS2": ("corrupt_file", f"{wcs2}: truncated: 3096 of 4096 bytes of the last record "
                                    f"(at byte {last_wcs2})"),
        "CI.JRC2": ("corrupt_file", f"{waveforms / 'CI.JRC2..HNE.mseed'}: corrupted record "
                                    "header at byte 20480: not a miniSEED record"),
        "CI.LRL": ("corrupt_file", f"{waveforms / 'CI.LRL..HNZ.mseed'}: corrupted record header "
                                   "at byte 8192: start time year 2019, day of year 999 is not a "
                                   "date"),
        "CI.CCC": ("corrupt_file", f"{waveforms / 'CI.CCC..HNN.mseed'}: libmseed: CI_CCC__HNN_D: "
                                   "Impossible Steim2 dnib=00 for nibble=10"),
    }
    assert result.stations == ("CI.MPM", "CI.WBM", "CI.WNM", "CI.WRV2", "CI.WVP2")
    assert {f["file"] for f in result.manifest["failed"]} == {
        str(p) for p in (sla, wcs2, waveforms / "CI.JRC2..HNE.mseed",
                         waveforms / "CI.LRL..HNZ.mseed", waveforms / "CI.CCC..HNN.mseed")}
    out = tmp_path / "out"
    assert not [p for p in out.rglob("*") if p.name.startswith(("CI.SLA", "CI.CCC", "CI.LRL"))]


def test_obspy_alone_reads_these_damaged_files_without_a_word(tmp_path):
    """Why the checks exist: obspy returns a shorter trace, or moves a record by years."""
    path = tmp_path / "short.mseed"
    path.write_bytes((EXAMPLE / "waveforms" / "CI.CCC..HNN.mseed").read_bytes()[:-1000])
    assert obspy.read(str(path))[0].stats.npts < 39000  # the last record silently dropped
    assert check_framing(path).detail == ("truncated: 3096 of 4096 bytes of the last record "
                                          "(at byte 81920)")
    moved = tmp_path / "moved.mseed"
    moved.write_bytes((EXAMPLE / "waveforms" / "CI.CCC..HNN.mseed").read_bytes())
    patch(moved, 5 * RECORD + 22, b"\x03\xe7")
    assert {tr.stats.starttime.year for tr in obspy.read(str(moved))} == {2019, 2021}
    assert check_framing(moved).station == "CI.CCC"
    padded = tmp_path / "padded.mseed"  # NUL padding after the last record is not damage
    padded.write_bytes((EXAMPLE / "waveforms" / "CI.CCC..HNN.mseed").read_bytes() + bytes(4096))
    assert check_framing(padded) is None
    assert read_checked(padded)[0].stats.npts == 39000
    broken = tmp_path / "broken.mseed"
    broken.write_bytes((EXAMPLE / "waveforms" / "CI.CCC..HNN.mseed").read_bytes())
    patch(broken, 5 * RECORD + 6, b"X")
    with pytest.raises(DamagedFileError, match=r"Not a SEED record\. Will skip bytes 20480 to "
                                               r"20607\. \(\+31 more\)"):
        read_checked(broken)


def test_a_damaged_record_in_a_file_of_several_stations_rejects_only_its_station(tmp_path):
    folder = tmp_path / "in"
    (folder / "stations").mkdir(parents=True)
    (folder / "waveforms").mkdir()
    shutil.copyfile(EXAMPLE / "event.xml", folder / "event.xml")
    for sid in ("CI.CCC", "CI.JRC2"):
        shutil.copyfile(EXAMPLE / "stations" / f"{sid}.xml", folder / "stations" / f"{sid}.xml")
    both = obspy.read(str(EXAMPLE / "waveforms" / "CI.CCC..*.mseed")) + \
        obspy.read(str(EXAMPLE / "waveforms" / "CI.JRC2..*.mseed"))
    path = folder / "waveforms" / "all.mseed"
    both.write(str(path), format="MSEED", reclen=512)
    path.write_bytes(path.read_bytes()[:-400])  # the last record is CI.JRC2's
    result = download(local(folder), tmp_path / "out")
    assert result.stations == ("CI.CCC",)
    reason, detail = failures(result)["CI.JRC2"]
    assert reason == "corrupt_file" and detail.startswith(f"{path}: truncated: 112 of 512 bytes")
    [bad] = result.manifest["bad_files"]
    assert (bad["station"], bad["stations"]) == ("CI.JRC2", ["CI.JRC2"])


def test_a_truncated_file_in_an_sds_archive_is_found(tmp_path):
    root = tmp_path / "sds"
    for path in sorted((EXAMPLE / "waveforms").glob("CI.[CW]*.mseed")):
        stream = obspy.read(str(path))
        tr = stream[0]
        folder = root / "2019" / "CI" / tr.stats.station / f"{tr.stats.channel}.D"
        folder.mkdir(parents=True, exist_ok=True)
        stream.write(str(folder / f"{tr.id}.D.2019.187"), format="MSEED")
    shutil.copytree(EXAMPLE / "stations", root / "stations", copy_function=shutil.copyfile)
    day = root / "2019" / "CI" / "WNM" / "HNZ.D" / "CI.WNM..HNZ.D.2019.187"
    day.write_bytes(day.read_bytes()[:-100])
    last = day.stat().st_size // RECORD * RECORD
    config = DownloadConfig(source="sds", directory=str(root), event=str(EXAMPLE / "event.json"),
                            radius_km=36.0, before=BEFORE, after=AFTER)
    result = download(config, tmp_path / "out")
    reason, detail = failures(result)["CI.WNM"]
    assert (reason, detail) == ("corrupt_file", f"{day}: truncated: 3996 of 4096 bytes of the "
                                                f"last record (at byte {last})")
    assert "CI.CCC" in result.stations and "CI.WBM" in result.stations


# -- safe names -------------------------------------------------------------------------------


CRAFTED = [("/", "LRL", "LRL"), ("..", "SLA", "SLA"), ("CI", "/abs/", "WBM"),
           ("CI", "../x", "WNM"), ("CI", "a b", "MPM")]


def crafted_folder(root: Path) -> Path:
    """CI.CCC and CI.JRC2 as they are, and stations whose codes climb out of any folder."""
    (root / "waveforms").mkdir(parents=True)
    (root / "stations").mkdir()
    shutil.copyfile(EXAMPLE / "event.xml", root / "event.xml")
    for sid in ("CI.CCC", "CI.JRC2"):
        shutil.copyfile(EXAMPLE / "stations" / f"{sid}.xml", root / "stations" / f"{sid}.xml")
        for path in (EXAMPLE / "waveforms").glob(f"{sid}..*.mseed"):
            shutil.copyfile(path, root / "waveforms" / path.name)
    for index, (network, station, source) in enumerate(CRAFTED):
        inventory = obspy.read_inventory(str(EXAMPLE / "stations" / f"CI.{source}.xml"))
        inventory[0].code, inventory[0][0].code = network, station
        inventory.write(str(root / "stations" / f"crafted{index}.xml"), format="STATIONXML")
        stream = obspy.read(str(EXAMPLE / "waveforms" / f"CI.{source}..HN?.mseed"))
        for tr in stream:
            tr.stats.network, tr.stats.station = network, station
        stream.write(str(root / "waveforms" / f"crafted{index}.mseed"), format="MSEED")
    return root


def test_stations_with_unsafe_codes_are_rejected_and_nothing_is_written_outside(tmp_path):
    folder = crafted_folder(tmp_path / "in")
    # the crafted miniSEED really carries these codes (obspy writes and reads them)
    assert {tr.id for tr in obspy.read(str(folder / "waveforms" / "crafted3.mseed"))} == {
        "CI.../x..HNE", "CI.../x..HNN", "CI.../x..HNZ"}
    before = files_under(tmp_path)
    out = tmp_path / "deep" / "run" / "download"
    result = download(local(folder), out)
    assert result.stations == ("CI.CCC", "CI.JRC2")
    got = failures(result)
    assert got == {
        "/.LRL": ("unsafe_name", "network code '/' is not a SEED network code (1-2 letters or "
                                 "digits): no file name is built from it"),
        "...SLA": ("unsafe_name", "network code '..' is not a SEED network code (1-2 letters or "
                                  "digits): no file name is built from it"),
        "CI./abs/": ("unsafe_name", "station code '/abs/' is not a SEED station code (1-5 "
                                    "letters, digits or '-'): no file name is built from it"),
        "CI.../x": ("unsafe_name", "station code '../x' is not a SEED station code (1-5 "
                                   "letters, digits or '-'): no file name is built from it"),
        "CI.a b": ("unsafe_name", "station code 'a b' is not a SEED station code (1-5 letters, "
                                  "digits or '-'): no file name is built from it"),
    }
    written = files_under(tmp_path) - before
    assert all(name.startswith("deep/run/download/") for name in written)
    assert {name.split("/")[-1] for name in written} == {
        "event.xml", "manifest.json", "CI.CCC.xml", "CI.JRC2.xml",
        *(f"{sid}..HN{c}.mseed" for sid in ("CI.CCC", "CI.JRC2") for c in "ENZ")}
    assert not Path("/abs").exists() and not Path("/.LRL.xml").exists()


def test_unsafe_trace_codes_in_data_without_metadata_are_named(tmp_path):
    folder = crafted_folder(tmp_path / "in")
    for path in (folder / "stations").glob("crafted*.xml"):
        path.unlink()
    result = download(local(folder), tmp_path / "out")
    got = failures(result)
    assert got["CI.../x"] == ("unsafe_name", "station code '../x' is not a SEED station code "
                                             "(1-5 letters, digits or '-'): no file name is "
                                             "built from it")
    assert got["/.LRL"][0] == "unsafe_name"


@pytest.mark.parametrize(("kind", "code"), [
    ("network", "CI"), ("network", "1A"), ("station", "WRV2"), ("station", "AB-CD"),
    ("location", ""), ("location", "00"), ("location", "2C"), ("location", "-1"),
    ("channel", "HNZ"), ("station", "ccc"),
])
def test_seed_codes_that_pass(kind, code):
    check_code(kind, code)


@pytest.mark.parametrize(("kind", "code", "rule"), [
    ("network", "", "1-2 letters or digits"), ("network", "ABC", "1-2 letters or digits"),
    ("network", "/", "1-2 letters or digits"), ("network", "..", "1-2 letters or digits"),
    ("network", "C-", "1-2 letters or digits"), ("station", "../x", "1-5 letters"),
    ("station", "/abs/", "1-5 letters"), ("station", "ABCDEF", "1-5 letters"),
    ("station", ".CCC", "1-5 letters"), ("station", "C\\C", "1-5 letters"),
    ("station", "C\x00C", "1-5 letters"), ("station", "C C", "1-5 letters"),
    ("station", "CC\t", "1-5 letters"), ("station", "CC*", "1-5 letters"),
    ("station", "CCÇ", "1-5 letters"), ("location", "--", "not '--'"),
    ("location", "000", "0-2 letters"), ("channel", "HN", "3 letters or digits"),
    ("channel", "H/Z", "3 letters or digits"),
])
def test_seed_codes_that_are_refused(kind, code, rule):
    with pytest.raises(ValueError, match=rf"^{kind} code .* is not a SEED {kind} code \(.*"
                                          rf"{rule}"):
        check_code(kind, code)


def test_station_path_builds_only_safe_paths_inside_the_root(tmp_path):
    run = tmp_path / "run"
    (run / "observed").mkdir(parents=True)
    assert station_path(run / "observed", "CI.CCC", ".ACC.mseed", root=run) == \
        run / "observed" / "CI.CCC.ACC.mseed"
    assert station_path(run / "waveforms", "CI.CCC..HNZ", ".mseed", root=run).name == \
        "CI.CCC..HNZ.mseed"
    assert check_station_id("CI.CCC.00.HNZ") == ("CI", "CCC", "00", "HNZ")
    for station_id, reason in [
        ("/.LRL", "network code '/' is not a SEED network code"),
        ("CI../x", "not a station id NET.STA or a trace id NET.STA.LOC.CHA"),
        ("CI.CCC.HNZ", "not a station id NET.STA or a trace id NET.STA.LOC.CHA"),
        ("CI.CCC.../.HNZ", "not a station id"),
    ]:
        with pytest.raises(UnsafeNameError, match=reason) as error:
            station_path(run / "observed", station_id, ".mseed", root=run)
        assert error.value.station == repr(station_id)
    with pytest.raises(UnsafeNameError, match=r"unsafe file name suffix '/\.\./x'"):
        station_path(run / "observed", "CI.CCC", "/../x", root=run)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (run / "linked").symlink_to(outside)  # a folder of the run that leads out of it
    with pytest.raises(UnsafeNameError, match=rf"resolves to {outside}/CI\.CCC\.png, outside "
                                              rf"{run}"):
        station_path(run / "linked", "CI.CCC", ".png", root=run)
    with pytest.raises(OutsideRunFolderError, match="refusing to write"):
        contained_path(run / ".." / "x.json", run)
    assert not list(outside.iterdir())


def test_the_download_never_writes_through_a_link_out_of_its_folder(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "waveforms").symlink_to(outside)
    result = download(local(EXAMPLE, radius_km=31.0), out)
    assert result.stations == ()
    assert {f["reason"] for f in result.manifest["failed"] if f["reason"] != "outside_radius"} \
        == {"unsafe_name"}
    assert not list(outside.iterdir())
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
    assert os.readlink(out / "waveforms") == str(outside)
