"""SPECFEM3D STATIONS: reading, writing, and construction from StationXML.

Fixtures: tests/ra/data/specfem (SPECFEM3D's socal1D and analytic examples, see SOURCE.md).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from obspy import Inventory, UTCDateTime, read_inventory
from obspy.core.inventory import Channel, Network, Station

from dare_cli.ra.simulate.specfem import (
    SpecfemFileError,
    StationLine,
    format_stations,
    read_stations,
    stations_from_inventory,
    write_stations,
)

DATA = Path(__file__).parent / "data" / "specfem"
SOCAL = DATA / "socal1D" / "DATA" / "STATIONS"
SOCAL_UTM = DATA / "socal1D" / "example_utm" / "STATIONS_utm"
ANALYTIC = DATA / "analytic_solution_elastic" / "DATA" / "STATIONS"
SOLVER_LOG = DATA / "socal1D" / "REF_SEIS.default" / "output_solver.txt"


def inventory_of(lines: list[StationLine], *, depth: float = 0.0) -> Inventory:
    """StationXML with the stations of ``lines`` (one accelerometer channel each), written
    and read back with ObsPy."""
    networks: dict[str, Network] = {}
    for line in lines:
        network = networks.setdefault(line.network, Network(code=line.network))
        network.stations.append(Station(
            code=line.station, latitude=line.latitude, longitude=line.longitude,
            elevation=line.elevation,
            channels=[Channel(code="HNZ", location_code="", latitude=line.latitude,
                              longitude=line.longitude, elevation=line.elevation,
                              depth=depth)]))
    buffer = io.BytesIO()
    Inventory(networks=list(networks.values()), source="dare tests").write(
        buffer, format="STATIONXML")
    buffer.seek(0)
    return read_inventory(buffer, format="STATIONXML")


def test_read_socal_example():
    stations = read_stations(SOCAL)
    assert len(stations) == 30
    assert stations[0] == StationLine("24851", "CE", 34.07, -118.346, 0.0, 0.0)
    assert stations[-1] == StationLine("TCF", "NP", 34.08377, -118.599, 0.0, 0.0)
    assert [s.id for s in stations].count("CI.BVH") == 1
    assert {s.network for s in stations} == {"CE", "CI", "FA", "NP"}


def test_read_analytic_example_with_tabs():
    stations = read_stations(ANALYTIC)
    assert [s.station for s in stations] == ["Z1", "Z2", "Z3", "Z4", "Z5", "Z6"]
    assert stations[0] == StationLine("Z1", "DB", 1000.0, 3000.0, 0.0, 4000.0)  # y, x, z (m)


def test_format_reproduces_the_example_byte_for_byte():
    assert format_stations(read_stations(SOCAL)) == SOCAL.read_text()


@pytest.mark.parametrize("path", [SOCAL, SOCAL_UTM, ANALYTIC], ids=lambda p: p.name)
def test_round_trip_every_file(path, tmp_path):
    original = read_stations(path)
    assert read_stations(write_stations(original, tmp_path / "STATIONS")) == original


def test_from_stationxml_reproduces_the_example_field_by_field():
    expected = read_stations(SOCAL)
    lines = stations_from_inventory(inventory_of(expected))
    assert lines == expected
    assert format_stations(lines) == SOCAL.read_text()


def test_from_stationxml_in_utm_as_the_old_example():
    # example_utm/STATIONS_utm was made on the Clarke 1866 ellipsoid (northing, easting in m)
    expected = read_stations(SOCAL_UTM)
    lines = stations_from_inventory(inventory_of(read_stations(SOCAL)), utm_zone=11,
                                    ellipsoid="clrk66")
    assert [s.id for s in lines] == [s.id for s in expected]
    for ours, theirs in zip(lines, expected, strict=True):
        assert ours.latitude == pytest.approx(theirs.latitude, abs=1e-3)
        assert ours.longitude == pytest.approx(theirs.longitude, abs=1e-3)


def solver_log_utm() -> dict[str, tuple[float, float]]:
    """NET.STA -> (UTM x, UTM y) that SPECFEM3D's solver printed for the stations it kept."""
    pattern = re.compile(r"station #\s+\d+\s+(\S+)\s+(\S+)\s*\n\s*original latitude:.*\n"
                         r"\s*original longitude:.*\n\s*original UTM x:\s*(\S+)\s*\n"
                         r"\s*original UTM y:\s*(\S+)")
    return {f"{net}.{sta}": (float(x), float(y))
            for net, sta, x, y in pattern.findall(SOLVER_LOG.read_text())}


def test_from_stationxml_in_utm_as_specfem_projects():
    printed = solver_log_utm()
    assert len(printed) == 28  # CI.CAB and NP.5404 are outside the mesh
    lines = {s.id: s for s in stations_from_inventory(inventory_of(read_stations(SOCAL)),
                                                      utm_zone=11)}
    for station_id, (x, y) in printed.items():  # printed in single precision (9 digits)
        assert lines[station_id].longitude == pytest.approx(x, abs=0.05), station_id
        assert lines[station_id].latitude == pytest.approx(y, abs=0.5), station_id


def test_burial_epochs_and_duplicates():
    base = read_stations(SOCAL)[:2]
    inventory = inventory_of(base, depth=12.5)
    station = inventory[0][0]
    station.channels.append(Channel(code="BHZ", location_code="10", latitude=34.07,
                                    longitude=-118.346, elevation=0.0, depth=100.0))
    later = station.copy()
    later.latitude = 35.0
    later.start_date = UTCDateTime(2030, 1, 1)
    station.end_date = UTCDateTime(2029, 12, 31)
    inventory[0].stations.append(later)
    lines = stations_from_inventory(inventory)
    assert [(s.id, s.latitude, s.burial) for s in lines] == [
        ("CE.24851", 34.07, 12.5), ("CE.24853", 34.077, 12.5)]  # shallowest channel, 1st epoch
    lines = stations_from_inventory(inventory, time=UTCDateTime(2031, 1, 1))
    assert [(s.id, s.latitude) for s in lines] == [("CE.24853", 34.077), ("CE.24851", 35.0)]


@pytest.mark.parametrize(("text", "message"), [
    ("AAA CE 34.0 -118.0 0.0\n", r"line 1: expected 6 fields .* found 5"),
    ("\n# comment\nAAA CE 34.0 -118.0 0.0 x\n", r"line 3: .*burial must be a number"),
    ("AAA CE 34.0 nan 0.0 0.0\n", r"line 1: CE.AAA: longitude must be finite"),
    ("AAA NETWORKXX 34.0 -118.0 0.0 0.0\n", r"line 1: network code 'NETWORKXX' is longer"),
])
def test_bad_lines_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "STATIONS"
    path.write_text(text)
    with pytest.raises(SpecfemFileError, match=re.escape(str(path)) + ", " + message):
        read_stations(path)


def test_station_line_validation():
    with pytest.raises(ValueError, match="station code must be non-empty without blanks"):
        StationLine("A B", "CE", 0.0, 0.0)
    with pytest.raises(ValueError, match="longer than the 32 characters"):
        StationLine("S" * 33, "CE", 0.0, 0.0)
