"""SPECFEM3D's socal1D example as the download stage leaves it: event, stations, stage folder.

The source is the example's CMTSOLUTION (2001 Hollywood M4.2); the stations are those of its
``DATA/STATIONS`` or any others a test places by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from obspy import Inventory, UTCDateTime
from obspy.core.event import (
    Catalog,
    Event,
    FocalMechanism,
    Magnitude,
    MomentTensor,
    Origin,
    ResourceIdentifier,
    Tensor,
)
from obspy.core.inventory import Channel, Network, Site, Station

SOCAL = Path(__file__).resolve().parent / "data" / "specfem" / "socal1D"
#: The origin time of the socal1D example's CMTSOLUTION.
ORIGIN_TIME = UTCDateTime("2001-09-09T23:59:17.78")
#: Station id ``NET.STA`` -> (latitude, longitude) in degrees.
Coordinates = Mapping[str, tuple[float, float]]


def socal_event() -> Event:
    """The socal1D example's source as an obspy event (its CMTSOLUTION, in SI units).

    Returns
    -------
    Event
        Origin 34.0745, -118.3792 at 5400 m, Mw 4.2 and the moment tensor in N·m, with its
        origin and focal mechanism preferred.
    """
    origin = Origin(time=ORIGIN_TIME, latitude=34.0745, longitude=-118.3792, depth=5400.0)
    scale = 1e16  # the CMTSOLUTION's 1e23 dyne·cm in N·m
    tensor = Tensor(m_rr=-0.002 * scale, m_tt=-0.064 * scale, m_pp=0.066 * scale,
                    m_rt=-0.090 * scale, m_rp=-0.002 * scale, m_tp=0.188 * scale)
    mechanism = FocalMechanism(moment_tensor=MomentTensor(tensor=tensor))
    event = Event(resource_id=ResourceIdentifier("smi:local/9703873"), origins=[origin],
                  magnitudes=[Magnitude(mag=4.2, magnitude_type="Mw")],
                  focal_mechanisms=[mechanism])
    event.preferred_origin_id = origin.resource_id
    event.preferred_focal_mechanism_id = mechanism.resource_id
    return event


def socal_stations(station_ids: Iterable[str] | None = None) -> dict[str, tuple[float, float]]:
    """Coordinates of the stations in the socal1D example's ``DATA/STATIONS``.

    Parameters
    ----------
    station_ids
        ``NET.STA`` ids to keep, in this order; all stations of the file when None.

    Returns
    -------
    dict
        Station id -> (latitude, longitude).
    """
    coordinates = {}
    for line in (SOCAL / "DATA" / "STATIONS").read_text().splitlines():
        station, network, lat, lon, *_ = line.split()
        coordinates[f"{network}.{station}"] = (float(lat), float(lon))
    if station_ids is None:
        return coordinates
    return {station_id: coordinates[station_id] for station_id in station_ids}


def socal_inventory(stations: Coordinates) -> Inventory:
    """An inventory of stations with channels HHE, HHN and HHZ, grouped by network.

    Parameters
    ----------
    stations
        Station id -> (latitude, longitude), e.g. from :func:`socal_stations`.

    Returns
    -------
    Inventory
        One network per network code, its stations in the given order, all at elevation 0
        and starting 2000-01-01.
    """
    start = UTCDateTime(2000, 1, 1)
    networks: dict[str, list[Station]] = {}
    for station_id, (lat, lon) in stations.items():
        network, code = station_id.split(".")
        channels = [Channel(f"HH{c}", "", lat, lon, 0.0, 0.0, start_date=start) for c in "ENZ"]
        networks.setdefault(network, []).append(
            Station(code, lat, lon, 0.0, channels=channels, site=Site(name=code),
                    start_date=start))
    return Inventory([Network(n, stations=s) for n, s in networks.items()], source="test")


def write_download_stage(run_dir: Path, stations: Coordinates) -> Path:
    """A finished download stage: ``event.xml``, ``stations/NET.STA.xml`` and its marker.

    Parameters
    ----------
    run_dir
        The run folder; its ``download`` folder must not exist yet.
    stations
        Station id -> (latitude, longitude), one StationXML file each.

    Returns
    -------
    Path
        The ``download`` folder.
    """
    download = run_dir / "download"
    (download / "stations").mkdir(parents=True)
    Catalog([socal_event()]).write(str(download / "event.xml"), format="QUAKEML")
    for station_id, coordinates in stations.items():
        socal_inventory({station_id: coordinates}).write(
            str(download / "stations" / f"{station_id}.xml"), format="STATIONXML")
    (download / ".stage.json").write_text(json.dumps({"fingerprint": "test", "summary": {}}))
    return download
