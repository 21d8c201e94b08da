"""Which stations, and which of their channels, a download delivers.

Stations of the metadata within the radius whose codes can name files (:func:`find_sites`);
for each, the channel patterns tried in priority order, one round of requests per pattern
(:func:`choose_channels`), and of the data that came, the location with the most channels
with a response (:func:`pick_location`).
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from obspy import Inventory, Stream
from obspy.geodetics import gps2dist_azimuth, kilometers2degrees, locations2degrees

from dare_cli.ra.download.channels import is_active, matches_codes, response_kind
from dare_cli.ra.download.files import first_line
from dare_cli.ra.download.sources import FileError, Source
from dare_cli.ra.names import check_code

if TYPE_CHECKING:
    from dare_cli.ra.download.run import DownloadRun

__all__ = [
    "Pick",
    "Site",
    "choose_channels",
    "find_sites",
    "pick_location",
    "station_inventory",
    "unsafe_codes",
    "unsafe_detail",
]


@dataclass
class Site:
    """A station of the metadata, with its channels active in the window."""

    network: str
    station: str
    latitude: float
    longitude: float
    elevation: float
    channels: dict[tuple[str, str], Any] = field(default_factory=dict)
    metadata: tuple[Any, Any] = (None, None)  # obspy Network and Station it came from

    @property
    def sid(self) -> str:
        """``NET.STA``."""
        return f"{self.network}.{self.station}"


@dataclass
class Pick:
    """The traces chosen for a station: one channel code pattern at one location."""

    site: Site
    pattern: str
    location: str
    stream: Stream


def find_sites(run: DownloadRun, inventory: Inventory) -> dict[str, Site]:
    """Stations of the metadata within the radius, with channels matching the patterns."""
    assert run.start is not None and run.end is not None
    config, origin = run.config, run.origin
    radius = kilometers2degrees(config.radius_km)
    sites: dict[str, Site] = {}
    for network in inventory:
        if not matches_codes(network.code, config.networks):
            continue
        for station in network:
            channels = {
                (c.location_code, c.code): c
                for c in station
                if any(fnmatch.fnmatchcase(c.code, p) for p in config.channels)
                and is_active(c, run.start, run.end)
            }
            if not channels:
                continue
            sid = f"{network.code}.{station.code}"
            unsafe = unsafe_codes(network.code, station.code, channels)
            if unsafe:
                sites.pop(sid, None)
                run.fail(sid, "unsafe_name", unsafe)
                continue
            if sid in run.failed and run.failed[sid]["reason"] == "unsafe_name":
                continue
            if sid in sites:
                for key, channel in channels.items():
                    sites[sid].channels.setdefault(key, channel)
                continue
            lat, lon = station.latitude, station.longitude
            degrees = locations2degrees(origin.latitude, origin.longitude, lat, lon)
            if degrees > radius + 1e-9:
                distance = gps2dist_azimuth(origin.latitude, origin.longitude, lat, lon)[0]
                run.fail(
                    sid,
                    "outside_radius",
                    f"{distance / 1e3:.1f} km from the epicentre (radius "
                    f"{config.radius_km:g} km)",
                )
                continue
            sites[sid] = Site(
                network.code,
                station.code,
                lat,
                lon,
                station.elevation,
                channels,
                (network, station),
            )
    return sites


def choose_channels(run: DownloadRun, source: Source, sites: dict[str, Site]
                    ) -> dict[str, Pick]:
    """Try the channel patterns of every station in priority order, one round per pattern."""
    assert run.start is not None and run.end is not None
    pending = {
        sid: [
            p
            for p in run.config.channels
            if any(fnmatch.fnmatchcase(cha, p) for _, cha in site.channels)
        ]
        for sid, site in sites.items()
    }
    why: dict[str, list[str]] = {sid: [] for sid in sites}
    picks: dict[str, Pick] = {}
    while pending:
        wanted = {sid: patterns[0] for sid, patterns in pending.items() if patterns}
        for sid in [s for s, patterns in pending.items() if not patterns]:
            del pending[sid]
            reasons = why[sid]
            reason = "no_response" if any("no response" in r for r in reasons) else "no_data"
            run.fail(sid, reason, "; ".join(reasons) or "no channel asked for")
        if not wanted:
            break
        results = source.fetch(
            [(sites[sid].network, sites[sid].station, p) for sid, p in wanted.items()]
        )
        for sid, pattern in wanted.items():
            site = sites[sid]
            result = results[(site.network, site.station, pattern)]
            if isinstance(result, FileError):
                run.fail(sid, result.reason, result.detail, file=result.file)
                del pending[sid]
                continue
            if isinstance(result, BaseException):
                run.fail(sid, "request_failed", f"{pattern}: {first_line(result)}")
                del pending[sid]
                continue
            try:
                pick = pick_location(run, site, pattern, result, why[sid])
            except Exception as exc:  # e.g. traces of one channel at two sampling rates
                run.fail(sid, "error", f"{pattern}: {type(exc).__name__}: {exc}")
                del pending[sid]
                continue
            if pick is not None:
                picks[sid] = pick
                del pending[sid]
            else:
                pending[sid].pop(0)
    return picks


def pick_location(run: DownloadRun, site: Site, pattern: str, stream: Stream,
                  why: list[str]) -> Pick | None:
    """The location whose channels of ``pattern`` have data and a response; None if none.

    Why a channel was passed over goes to ``why``; a channel of the chosen location without
    a response is dropped and flagged ``no_response``.
    """
    assert run.start is not None and run.end is not None
    stream = stream.select(network=site.network, station=site.station, channel=pattern)
    stream.trim(run.start, run.end, nearest_sample=False)
    stream = Stream([tr for tr in stream if tr.stats.npts > 0])
    if not stream:
        why.append(f"{pattern}: no data in the window")
        return None
    stream.merge(-1)  # join contiguous records only: gaps stay gaps
    usable: dict[str, list[Any]] = {}
    for location in sorted({tr.stats.location for tr in stream}):
        usable[location] = []
        for tr in stream:
            if tr.stats.location != location:
                continue
            kind, detail = response_kind(site.channels.get((location, tr.stats.channel)))
            if kind is not None:
                usable[location].append(tr)
            else:
                why.append(f"{tr.id}: {detail}")
    # the location with the most channel codes usable; on a tie the first in sorted order
    best = max(usable, key=lambda loc: len({tr.stats.channel for tr in usable[loc]}))
    if not usable[best]:
        return None
    kept = {tr.id for tr in usable[best]}
    for tid in sorted({tr.id for tr in stream if tr.stats.location == best} - kept):
        channel = site.channels.get((best, tid.split(".")[3]))
        run.flag(site.sid, tid, "no_response",
                   f"channel dropped: {response_kind(channel)[1]}")
    return Pick(site, pattern, best, Stream(usable[best]))


def station_inventory(site: Site, kept: set[tuple[str, str]]) -> Inventory:
    """StationXML of one station holding only the channels kept (their epochs in the window)."""
    network, station = (copy.copy(item) for item in site.metadata)
    station.channels = [site.channels[key] for key in sorted(kept)]
    network.stations = [station]
    return Inventory(networks=[network], source="dare ra download")


def unsafe_codes(network: str, station: str, channels: Mapping[tuple[str, str], Any]
                  ) -> str | None:
    """Why a station's codes (or one of its channels') cannot be part of a file name."""
    try:
        check_code("network", network)
        check_code("station", station)
        for location, channel in sorted(channels):
            check_code("location", location)
            check_code("channel", channel)
    except ValueError as error:
        return f"{error}: no file name is built from it"
    return None


def unsafe_detail(station_id: str) -> str:
    """Why a station id of the data cannot name a file."""
    network, _, station = station_id.partition(".")
    return unsafe_codes(network, station, {}) or f"station id {station_id!r} is not NET.STA"
