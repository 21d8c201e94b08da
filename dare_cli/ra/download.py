"""Download stage of the Rapid Assessment: the event, station metadata and waveforms of a window.

Three sources fill the same folder:

``fdsn``
    An FDSN web service provider through obspy's :class:`obspy.clients.fdsn.Client`: the event
    by id (event service), stations within the radius with responses (station service,
    ``level="response"``), waveforms in one bulk request per round (dataselect service).
``sds``
    A SeisComP Data Structure archive read with :class:`obspy.clients.filesystem.sds.Client`,
    with StationXML in ``<root>/stations/*.xml`` or the ``stationxml`` path.
``local``
    A folder with ``waveforms/*.mseed`` (any names, any number of traces per file) and
    ``stations/*.xml`` (or the ``stationxml`` path).

The output folder holds::

    event.xml                       QuakeML of the event
    stations/NET.STA.xml            StationXML with responses of the channels kept
    waveforms/NET.STA.LOC.CHA.mseed the window, every segment as recorded (gaps are not filled)
    manifest.json                   what was asked, what came, what failed and why

A station's StationXML is written after its waveforms, so a ``stations/NET.STA.xml`` marks a
complete station. Every file is written under a temporary name in its folder and renamed into
place, so no partial file is ever left; when the run stops on an exception, the manifest of
what was done is still written. One station failing never stops the others.

The manifest (``MANIFEST_FORMAT``) holds ``status`` ("complete" or "failed", with ``error``),
``request`` (config, window, region), ``event``, ``stations`` (per ``NET.STA``: coordinates,
``distance_km``, ``azimuth_deg``, ``back_azimuth_deg``, the channel code and location chosen,
and per channel: start, end, npts, segments, ``covered_s``, ``coverage``, gaps, file),
``failed`` (stations not delivered: ``{station, reason, detail[, file]}`` with reason one of
``outside_radius``, ``no_data``, ``no_response``, ``no_metadata``, ``insufficient_coverage``,
``corrupt_file``, ``empty_file``, ``request_failed``, ``write_failed``, ``error``), ``flags``
(delivered but marked: ``{station, channel, flag, detail}`` with flag ``partial_coverage``,
``gaps``, ``no_response`` or ``insufficient_coverage`` for a channel dropped), ``bad_files``
(every unreadable input file, attributed to a station when its name starts ``NET.STA.``) and
``files`` (every file written, relative to the folder).

Channel choice: for each station the first code of ``channels`` (in priority order) with data in
the window and a response in the metadata wins; of its location codes, the one with the most
such channels (on a tie the first in sorted order, so ``""`` before ``"00"``). Data of a chosen
channel without a response is dropped and flagged ``no_response``.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import functools
import glob
import importlib.metadata
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import obspy
from obspy import Catalog, Inventory, Stream, UTCDateTime
from obspy.clients.fdsn.header import FDSNException, FDSNNoDataException
from obspy.core.event import Event
from obspy.geodetics import gps2dist_azimuth, kilometers2degrees, locations2degrees

from dare_cli.ra.errors import ConfigError, RAError
from dare_cli.ra.files import atomic_path

__all__ = [
    "MANIFEST_FORMAT",
    "PARTIAL_BELOW",
    "SOURCES",
    "DownloadConfig",
    "DownloadResult",
    "coverage",
    "download",
    "select_event",
]

SOURCES = ("fdsn", "local", "sds")
#: File name endings read as miniSEED in a local folder.
MSEED_SUFFIXES = (".mseed", ".miniseed", ".ms", ".msd")
#: A kept trace covering less than this fraction of the window is flagged ``partial_coverage``.
PARTIAL_BELOW = 0.99
#: Seconds before an FDSN request is abandoned.
FDSN_TIMEOUT_S = 60.0
MANIFEST_FORMAT = "dare-ra-download/1"


@dataclass(frozen=True)
class DownloadConfig:
    """What to download, and from where.

    Attributes
    ----------
    source
        ``"fdsn"``, ``"local"`` or ``"sds"``.
    provider
        obspy FDSN client name (``"IRIS"``, ``"USGS"``, ``"INGV"``, ``"EARTHSCOPE+USGS"``...) or
        base URL; used for ``fdsn`` and for ``event_id`` without ``quakeml``.
    event_id
        Event id at the provider's event service; with ``quakeml``, the event to pick from the
        file.
    quakeml
        QuakeML file of the event. For ``local``/``sds`` without ``event_id`` or ``quakeml``,
        ``<directory>/event.xml`` is read.
    directory
        ``local``: folder with ``waveforms/`` and ``stations/``; ``sds``: the archive root.
    stationxml
        StationXML file or folder of ``*.xml`` files (``local``/``sds``), replacing
        ``<directory>/stations``.
    radius_km
        Stations within this epicentral distance (km; great circle on the sphere, as FDSN
        station services compute ``maxradius``).
    channels
        Channel code patterns in priority order; the first available at a station wins.
    networks
        Network code pattern(s), comma-separated.
    before, after
        Window around the origin time (s before, s after).
    min_coverage
        Fraction of the window a trace must cover to be kept (0 keeps any partial trace,
        flagged).
    """

    source: str = "local"
    provider: str = "EARTHSCOPE+USGS"
    event_id: str | None = None
    quakeml: str | None = None
    directory: str | None = None
    stationxml: str | None = None
    radius_km: float = 200.0
    channels: tuple[str, ...] = ("HN?", "HH?", "BH?")
    networks: str = "*"
    before: float = 60.0
    after: float = 300.0
    min_coverage: float = 0.0

    def __post_init__(self) -> None:
        channels = self.channels
        if isinstance(channels, str):
            channels = tuple(c.strip() for c in channels.split(",") if c.strip())
        object.__setattr__(self, "channels", tuple(channels))
        if self.source not in SOURCES:
            raise ConfigError(
                f"[download] source must be one of {', '.join(SOURCES)}, not {self.source!r}"
            )
        if not self.channels or not all(isinstance(c, str) and c for c in self.channels):
            raise ConfigError(f"[download] channels must be channel codes, not {self.channels!r}")
        if not self.radius_km > 0:
            raise ConfigError(f"[download] radius_km must be > 0 km, not {self.radius_km}")
        if self.before < 0 or self.after < 0 or self.before + self.after <= 0:
            raise ConfigError(
                f"[download] before and after must be >= 0 s with a positive window, not "
                f"before={self.before}, after={self.after}"
            )
        if not 0.0 <= self.min_coverage <= 1.0:
            raise ConfigError(
                f"[download] min_coverage must be within 0..1, not {self.min_coverage}"
            )
        if not self.networks.strip():
            raise ConfigError("[download] networks must not be empty (use '*' for all)")


@dataclass(frozen=True)
class DownloadResult:
    """The files a download wrote, and its manifest.

    Attributes
    ----------
    out_dir
        The output folder.
    event
        The event (preferred origin and magnitude are those of ``event.xml``).
    event_file, manifest_file
        ``out_dir/event.xml`` and ``out_dir/manifest.json``.
    station_files
        ``NET.STA`` -> its StationXML file.
    waveform_files
        ``NET.STA`` -> its miniSEED files, one per channel.
    manifest
        The content of ``manifest.json``.
    """

    out_dir: Path
    event: Event
    event_file: Path
    manifest_file: Path
    station_files: Mapping[str, Path]
    waveform_files: Mapping[str, tuple[Path, ...]]
    manifest: Mapping[str, Any]

    @property
    def stations(self) -> tuple[str, ...]:
        """``NET.STA`` of the stations delivered, sorted."""
        return tuple(sorted(self.station_files))

    @property
    def failed(self) -> tuple[str, ...]:
        """``NET.STA`` of the stations that failed, sorted."""
        return tuple(sorted({f["station"] for f in self.manifest["failed"]}))


# -- public helpers -----------------------------------------------------------------------------


def select_event(catalog: Catalog, event_id: str | None = None, *, where: str = "") -> Event:
    """Pick one event from a catalog, by id if given.

    Parameters
    ----------
    catalog
        Events (e.g. from a QuakeML file or an event service).
    event_id
        Matches the whole resource id or its last part (after ``/``, ``=`` or ``:``), e.g.
        ``ci38457511`` for ``quakeml:us.anss.org/event/ci38457511``.
    where
        Where the catalog came from, for error messages.

    Raises
    ------
    RAError
        No event, no match, several events and no id, or an event without origin.
    """
    events = list(catalog)
    if event_id is not None:
        events = [e for e in events if _id_matches(str(e.resource_id), event_id)]
    if not events:
        wanted = f"event {event_id!r}" if event_id else "an event"
        raise RAError(f"{where or 'catalog'} has no {wanted}")
    if len(events) > 1:
        ids = ", ".join(str(e.resource_id) for e in events[:5])
        raise RAError(f"{where or 'catalog'} has {len(events)} events ({ids}); set event_id")
    if not events[0].origins:
        raise RAError(f"event {events[0].resource_id} in {where or 'catalog'} has no origin")
    return events[0]


def coverage(
    traces: Iterable[obspy.Trace], start: UTCDateTime, end: UTCDateTime
) -> tuple[float, float]:
    """Time of a window covered by traces, counted once where they overlap.

    Each trace covers ``[starttime, endtime + delta)``.

    Parameters
    ----------
    traces
        Segments of one channel.
    start, end
        The window.

    Returns
    -------
    covered_s, fraction
        Covered time (s) and its fraction of the window (0..1).
    """
    length = float(end - start)
    spans = sorted(
        (
            max(float(tr.stats.starttime - start), 0.0),
            min(float(tr.stats.endtime - start) + tr.stats.delta, length),
        )
        for tr in traces
    )
    covered, reach = 0.0, 0.0
    for lo, hi in spans:
        lo = max(lo, reach)
        if hi > lo:
            covered += hi - lo
            reach = hi
    return covered, (covered / length if length > 0 else 0.0)


# -- the stage ----------------------------------------------------------------------------------


def download(config: DownloadConfig, out_dir: Path) -> DownloadResult:
    """Fetch the event, stations within the radius and their waveforms into ``out_dir``.

    Parameters
    ----------
    config
        What to fetch and from where.
    out_dir
        Output folder (created). Files listed by an earlier ``manifest.json`` there are
        removed first, so the folder holds this run only.

    Returns
    -------
    DownloadResult
        Paths written and the manifest.

    Raises
    ------
    ConfigError
        The configuration misses what its source needs (a folder, an event).
    RAError
        The event cannot be had (unknown id, no data, missing or unreadable QuakeML), or the
        station metadata cannot be had at all. The manifest is still written.
    """
    out_dir = Path(out_dir)
    _check_inputs(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_previous(out_dir)
    run = _Run(config, out_dir)
    try:
        run.execute()
    except BaseException as exc:
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
        _write_json(out_dir / "manifest.json", run.manifest())
        raise
    manifest = run.manifest()
    _write_json(out_dir / "manifest.json", manifest)
    assert run.event is not None
    return DownloadResult(
        out_dir=out_dir,
        event=run.event,
        event_file=out_dir / "event.xml",
        manifest_file=out_dir / "manifest.json",
        station_files={s: out_dir / e["stationxml"] for s, e in run.stations.items()},
        waveform_files={
            s: tuple(out_dir / c["file"] for c in e["channels"]) for s, e in run.stations.items()
        },
        manifest=manifest,
    )


def _check_inputs(config: DownloadConfig) -> None:
    if config.source in ("local", "sds"):
        if not config.directory:
            raise ConfigError(f"[download] source {config.source!r} needs 'directory'")
        if not Path(config.directory).is_dir():
            raise ConfigError(f"[download] directory {config.directory!r} is not a folder")
    if config.source == "fdsn" and not (config.event_id or config.quakeml):
        raise ConfigError("[download] source 'fdsn' needs 'event_id' or 'quakeml'")


@dataclass
class _Site:
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
        return f"{self.network}.{self.station}"


@dataclass
class _Pick:
    """The traces chosen for a station: one channel code pattern at one location."""

    site: _Site
    pattern: str
    location: str
    stream: Stream


class _Run:
    """State of one download: what was asked, done and failed."""

    def __init__(self, config: DownloadConfig, out_dir: Path) -> None:
        self.config = config
        self.out_dir = out_dir
        self.started = time.time()
        self.event: Event | None = None
        self.origin: Any = None
        self.start: UTCDateTime | None = None
        self.end: UTCDateTime | None = None
        self.stations: dict[str, dict[str, Any]] = {}
        self.failed: dict[str, dict[str, Any]] = {}
        self.flags: list[dict[str, Any]] = []
        self.bad_files: list[dict[str, Any]] = []
        self.files: list[str] = []
        self.status = "running"
        self.error: str | None = None
        self._client: Any = None

    # -- steps ----------------------------------------------------------------------------

    def execute(self) -> None:
        self.event = self._load_event()
        self.origin = self.event.preferred_origin() or self.event.origins[0]
        self.start = self.origin.time - self.config.before
        self.end = self.origin.time + self.config.after
        catalog = Catalog(events=[self.event])
        self._write(self.out_dir / "event.xml", lambda p: catalog.write(p, format="QUAKEML"))

        source = self._source()
        sites = self._sites(source.metadata())
        for sid, failure in source.blocked.items():
            if sid in sites:
                del sites[sid]
                self._fail(sid, failure["reason"], failure["detail"], file=failure.get("file"))
        for sid in sorted(source.data_stations() - set(sites) - set(self.failed)):
            self._fail(sid, "no_metadata", "data but no station metadata for the channels asked")
        picks = self._choose(source, sites)
        for sid in sorted(picks):
            written: list[Path] = []
            try:
                self._deliver(picks[sid], written)
            except BaseException as exc:
                for path in written:  # a station is delivered whole or not at all
                    with contextlib.suppress(OSError):
                        path.unlink()
                    self.files.remove(str(path.relative_to(self.out_dir)))
                self.stations.pop(sid, None)
                self.flags = [f for f in self.flags if f["station"] != sid]
                if not isinstance(exc, Exception):
                    raise
                reason = "write_failed" if isinstance(exc, OSError) else "error"
                self._fail(sid, reason, f"{type(exc).__name__}: {exc}")
        self.status = "complete"

    def _load_event(self) -> Event:
        config = self.config
        if config.quakeml:
            path = Path(config.quakeml)
            return select_event(_read_quakeml(path), config.event_id, where=f"QuakeML {path}")
        if config.event_id:
            try:
                catalog = self.client().get_events(eventid=config.event_id)
            except FDSNNoDataException:
                raise RAError(
                    f"event {config.event_id!r} not found at FDSN provider {config.provider!r} "
                    "(the event service returned no data)"
                ) from None
            except (FDSNException, OSError, ValueError) as exc:
                raise RAError(
                    f"event {config.event_id!r}: the event service of {config.provider!r} "
                    f"failed: {_first_line(exc)}"
                ) from exc
            return select_event(
                catalog, config.event_id, where=f"event service of {config.provider!r}"
            )
        default = Path(config.directory or ".") / "event.xml"
        if not default.is_file():
            raise ConfigError(
                f"[download] no event: set 'event_id' or 'quakeml' (no {default} either)"
            )
        return select_event(_read_quakeml(default), None, where=f"QuakeML {default}")

    def client(self) -> Any:
        if self._client is None:
            from obspy.clients.fdsn import Client

            try:
                self._client = Client(self.config.provider, timeout=FDSN_TIMEOUT_S)
            except (FDSNException, OSError, ValueError) as exc:
                raise RAError(
                    f"cannot use FDSN provider {self.config.provider!r}: {_first_line(exc)}"
                ) from exc
        return self._client

    def _source(self) -> _Source:
        if self.config.source == "fdsn":
            return _FDSNSource(self)
        if self.config.source == "sds":
            return _SDSSource(self)
        return _LocalSource(self)

    def _sites(self, inventory: Inventory) -> dict[str, _Site]:
        """Stations of the metadata within the radius, with channels matching the patterns."""
        assert self.start is not None and self.end is not None
        config, origin = self.config, self.origin
        radius = kilometers2degrees(config.radius_km)
        sites: dict[str, _Site] = {}
        for network in inventory:
            if not _matches(network.code, config.networks):
                continue
            for station in network:
                channels = {
                    (c.location_code, c.code): c
                    for c in station
                    if any(fnmatch.fnmatchcase(c.code, p) for p in config.channels)
                    and _active(c, self.start, self.end)
                }
                if not channels:
                    continue
                sid = f"{network.code}.{station.code}"
                if sid in sites:
                    for key, channel in channels.items():
                        sites[sid].channels.setdefault(key, channel)
                    continue
                lat, lon = station.latitude, station.longitude
                degrees = locations2degrees(origin.latitude, origin.longitude, lat, lon)
                if degrees > radius + 1e-9:
                    distance = gps2dist_azimuth(origin.latitude, origin.longitude, lat, lon)[0]
                    self._fail(
                        sid,
                        "outside_radius",
                        f"{distance / 1e3:.1f} km from the epicentre (radius "
                        f"{config.radius_km:g} km)",
                    )
                    continue
                sites[sid] = _Site(
                    network.code,
                    station.code,
                    lat,
                    lon,
                    station.elevation,
                    channels,
                    (network, station),
                )
        return sites

    def _choose(self, source: _Source, sites: dict[str, _Site]) -> dict[str, _Pick]:
        """Try the channel patterns of every station in priority order, one round per pattern."""
        assert self.start is not None and self.end is not None
        pending = {
            sid: [
                p
                for p in self.config.channels
                if any(fnmatch.fnmatchcase(cha, p) for _, cha in site.channels)
            ]
            for sid, site in sites.items()
        }
        why: dict[str, list[str]] = {sid: [] for sid in sites}
        picks: dict[str, _Pick] = {}
        while pending:
            wanted = {sid: patterns[0] for sid, patterns in pending.items() if patterns}
            for sid in [s for s, patterns in pending.items() if not patterns]:
                del pending[sid]
                reasons = why[sid]
                reason = "no_response" if any("no response" in r for r in reasons) else "no_data"
                self._fail(sid, reason, "; ".join(reasons) or "no channel asked for")
            if not wanted:
                break
            results = source.fetch(
                [(sites[sid].network, sites[sid].station, p) for sid, p in wanted.items()]
            )
            for sid, pattern in wanted.items():
                site = sites[sid]
                result = results[(site.network, site.station, pattern)]
                if isinstance(result, _FileError):
                    self._fail(sid, result.reason, result.detail, file=result.file)
                    del pending[sid]
                    continue
                if isinstance(result, BaseException):
                    self._fail(sid, "request_failed", f"{pattern}: {_first_line(result)}")
                    del pending[sid]
                    continue
                try:
                    pick = self._pick(site, pattern, result, why[sid])
                except Exception as exc:  # e.g. traces of one channel at two sampling rates
                    self._fail(sid, "error", f"{pattern}: {type(exc).__name__}: {exc}")
                    del pending[sid]
                    continue
                if pick is not None:
                    picks[sid] = pick
                    del pending[sid]
                else:
                    pending[sid].pop(0)
        return picks

    def _pick(self, site: _Site, pattern: str, stream: Stream, why: list[str]) -> _Pick | None:
        assert self.start is not None and self.end is not None
        stream = stream.select(network=site.network, station=site.station, channel=pattern)
        stream.trim(self.start, self.end, nearest_sample=False)
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
                if _has_response(site.channels.get((location, tr.stats.channel))):
                    usable[location].append(tr)
                else:
                    why.append(f"{tr.id}: no response in the station metadata")
        # the location with the most channel codes usable; on a tie the first in sorted order
        best = max(usable, key=lambda loc: len({tr.stats.channel for tr in usable[loc]}))
        if not usable[best]:
            return None
        kept = {tr.id for tr in usable[best]}
        for tid in sorted({tr.id for tr in stream if tr.stats.location == best} - kept):
            self._flag(
                site.sid, tid, "no_response", "channel dropped: no response in the station metadata"
            )
        return _Pick(site, pattern, best, Stream(usable[best]))

    def _deliver(self, pick: _Pick, written: list[Path]) -> None:
        """Check coverage, write the waveforms and then the StationXML of one station."""
        assert self.start is not None and self.end is not None
        config, site, origin = self.config, pick.site, self.origin
        window = float(self.end - self.start)
        channels = []
        for tid in sorted({tr.id for tr in pick.stream}):
            traces = pick.stream.select(id=tid).sort()
            covered, fraction = coverage(traces, self.start, self.end)
            if fraction < config.min_coverage:
                self._flag(
                    site.sid,
                    tid,
                    "insufficient_coverage",
                    f"channel dropped: covers {covered:.1f} s of the {window:g} s window "
                    f"({fraction:.1%} < min_coverage {config.min_coverage:.0%})",
                )
                continue
            found = traces.get_gaps()
            gaps: list[dict[str, Any]] = [
                {
                    "last_sample_before": str(g[4]),
                    "first_sample_after": str(g[5]),
                    "missing_samples": int(g[7]),
                    "missing_s": round(g[7] * traces[0].stats.delta, 6),
                }
                for g in found
                if g[6] > 0
            ]
            missing = sum(g["missing_s"] for g in gaps)
            overlaps = sum(1 for g in found if g[6] < 0)
            if fraction < PARTIAL_BELOW:
                self._flag(
                    site.sid,
                    tid,
                    "partial_coverage",
                    f"kept: covers {covered:.1f} s of the {window:g} s window ({fraction:.1%})",
                )
            if gaps:
                self._flag(
                    site.sid, tid, "gaps", f"kept: {len(gaps)} gap(s), {missing:.2f} s missing"
                )
            loc, cha = tid.split(".")[2:]
            path = self.out_dir / "waveforms" / f"{tid}.mseed"
            self._write(path, functools.partial(_write_mseed, traces), written)
            channels.append(
                {
                    "id": tid,
                    "location": loc,
                    "channel": cha,
                    "start": str(traces[0].stats.starttime),
                    "end": str(max(tr.stats.endtime for tr in traces)),
                    "npts": sum(tr.stats.npts for tr in traces),
                    "sampling_rate": traces[0].stats.sampling_rate,
                    "segments": len(traces),
                    "covered_s": round(covered, 6),
                    "coverage": round(fraction, 6),
                    "gaps": gaps,
                    "overlaps": overlaps,
                    "file": f"waveforms/{tid}.mseed",
                }
            )
        if not channels:
            for path in written:
                path.unlink()
                self.files.remove(str(path.relative_to(self.out_dir)))
            written.clear()
            self.flags = [f for f in self.flags if f["station"] != site.sid]
            self._fail(
                site.sid,
                "insufficient_coverage",
                f"no channel covers min_coverage {config.min_coverage:.0%} of the window",
            )
            return
        kept = {(c["location"], c["channel"]) for c in channels}
        inventory = _station_inventory(site, kept)
        self._write(
            self.out_dir / "stations" / f"{site.sid}.xml",
            lambda p: inventory.write(p, format="STATIONXML"),
            written,
        )
        distance, azimuth, back_azimuth = gps2dist_azimuth(
            origin.latitude, origin.longitude, site.latitude, site.longitude
        )
        self.stations[site.sid] = {
            "network": site.network,
            "station": site.station,
            "latitude": site.latitude,
            "longitude": site.longitude,
            "elevation_m": site.elevation,
            "distance_km": round(distance / 1e3, 3),
            "distance_deg": round(
                locations2degrees(origin.latitude, origin.longitude, site.latitude, site.longitude),
                5,
            ),
            "azimuth_deg": round(azimuth, 3),
            "back_azimuth_deg": round(back_azimuth, 3),
            "channel_pattern": pick.pattern,
            "location": pick.location,
            "stationxml": f"stations/{site.sid}.xml",
            "channels": channels,
        }

    # -- records --------------------------------------------------------------------------

    def _fail(self, sid: str, reason: str, detail: str, *, file: str | None = None) -> None:
        if sid in self.failed:
            return
        entry = {"station": sid, "reason": reason, "detail": detail}
        if file is not None:
            entry["file"] = file
        self.failed[sid] = entry

    def _flag(self, sid: str, channel: str, flag: str, detail: str) -> None:
        self.flags.append({"station": sid, "channel": channel, "flag": flag, "detail": detail})

    def _write(
        self, path: Path, write: Callable[[str], object], written: list[Path] | None = None
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, write)
        self.files.append(str(path.relative_to(self.out_dir)))
        if written is not None:
            written.append(path)

    def manifest(self) -> dict[str, Any]:
        config, origin = self.config, self.origin
        event = None
        if self.event is not None:
            magnitude = self.event.preferred_magnitude() or (
                self.event.magnitudes[0] if self.event.magnitudes else None
            )
            event = {
                "id": str(self.event.resource_id),
                "time": str(origin.time),
                "latitude": origin.latitude,
                "longitude": origin.longitude,
                "depth_km": origin.depth / 1e3 if origin.depth is not None else None,
                "magnitude": magnitude.mag if magnitude else None,
                "magnitude_type": magnitude.magnitude_type if magnitude else None,
                "file": "event.xml",
            }
        window = None
        if self.start is not None and self.end is not None:
            window = {
                "start": str(self.start),
                "end": str(self.end),
                "duration_s": float(self.end - self.start),
            }
        region = None
        if origin is not None:
            region = {
                "latitude": origin.latitude,
                "longitude": origin.longitude,
                "maxradius_km": config.radius_km,
                "maxradius_deg": kilometers2degrees(config.radius_km),
            }
        return {
            "format": MANIFEST_FORMAT,
            "status": self.status,
            "error": self.error,
            "created": str(UTCDateTime()),
            "elapsed_s": round(time.time() - self.started, 3),
            "software": {"dare": _version("dare"), "obspy": obspy.__version__},
            "request": {"config": asdict(config), "window": window, "region": region},
            "event": event,
            "stations": dict(sorted(self.stations.items())),
            "failed": [self.failed[s] for s in sorted(self.failed)],
            "flags": self.flags,
            "bad_files": self.bad_files,
            "files": sorted(self.files),
        }


# -- sources ------------------------------------------------------------------------------------

_Key = tuple[str, str, str]  # network, station, channel pattern


class _Source:
    """Where metadata and waveforms come from."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        #: ``NET.STA`` -> failure, for stations ruled out before any request (a bad file).
        self.blocked: dict[str, dict[str, Any]] = {}

    def metadata(self) -> Inventory:
        raise NotImplementedError

    def data_stations(self) -> set[str]:
        """``NET.STA`` with data for the channels asked (for ``no_metadata`` reports)."""
        return set()

    def fetch(self, keys: list[_Key]) -> dict[_Key, Stream | BaseException]:
        raise NotImplementedError

    def _bad_file(self, path: Path, reason: str, exc: BaseException | None) -> None:
        station = _station_from_name(path.name)
        detail = f"{path}: " + ("empty file" if exc is None else _first_line(exc))
        self.run.bad_files.append(
            {"file": str(path), "station": station, "reason": reason, "detail": detail}
        )
        if station is not None:
            self.blocked.setdefault(
                station, {"reason": reason, "detail": detail, "file": str(path)}
            )

    def _read_stationxml(self, default: Path) -> Inventory:
        where = Path(self.run.config.stationxml) if self.run.config.stationxml else default
        if where.is_dir():
            paths = sorted(p for p in where.iterdir() if p.suffix.lower() == ".xml")
        elif where.is_file():
            paths = [where]
        else:
            raise RAError(f"StationXML {where} does not exist")
        if not paths:
            raise RAError(f"no StationXML file (*.xml) in {where}")
        inventory = Inventory(networks=[])
        for path in paths:
            if path.stat().st_size == 0:
                self._bad_file(path, "empty_file", None)
                continue
            try:
                inventory += obspy.read_inventory(str(path))
            except Exception as exc:
                self._bad_file(path, "corrupt_file", exc)
        return inventory


class _FDSNSource(_Source):
    def metadata(self) -> Inventory:
        run, config = self.run, self.run.config
        try:
            return run.client().get_stations(
                network=config.networks,
                station="*",
                location="*",
                channel=",".join(config.channels),
                starttime=run.start,
                endtime=run.end,
                latitude=run.origin.latitude,
                longitude=run.origin.longitude,
                maxradius=kilometers2degrees(config.radius_km),
                level="response",
            )
        except FDSNNoDataException:
            return Inventory(networks=[])
        except (FDSNException, OSError, ValueError) as exc:
            raise RAError(
                f"the station service of {config.provider!r} failed: {_first_line(exc)}"
            ) from exc

    def fetch(self, keys: list[_Key]) -> dict[_Key, Stream | BaseException]:
        run, client = self.run, self.run.client()
        bulk = [(net, sta, "*", cha, run.start, run.end) for net, sta, cha in keys]
        try:
            stream = client.get_waveforms_bulk(bulk)
        except FDSNNoDataException:
            stream = Stream()
        except (FDSNException, OSError, ValueError):
            return {key: self._one(key) for key in keys}
        return {
            (net, sta, cha): stream.select(network=net, station=sta, channel=cha)
            for net, sta, cha in keys
        }

    def _one(self, key: _Key) -> Stream | BaseException:
        net, sta, cha = key
        try:
            return self.run.client().get_waveforms(net, sta, "*", cha, self.run.start, self.run.end)
        except FDSNNoDataException:
            return Stream()
        except (FDSNException, OSError, ValueError) as exc:
            return exc


class _LocalSource(_Source):
    def __init__(self, run: _Run) -> None:
        super().__init__(run)
        self.root = Path(run.config.directory or ".")
        self.index: list[tuple[str, str, str, UTCDateTime, UTCDateTime, Path]] = []

    def metadata(self) -> Inventory:
        inventory = self._read_stationxml(self.root / "stations")
        folder = self.root / "waveforms"
        if not folder.is_dir():
            raise RAError(f"no waveforms folder {folder}")
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.suffix.lower() not in MSEED_SUFFIXES:
                continue
            if path.stat().st_size == 0:
                self._bad_file(path, "empty_file", None)
                continue
            try:
                headers = obspy.read(str(path), format="MSEED", headonly=True)
            except Exception as exc:
                self._bad_file(path, "corrupt_file", exc)
                continue
            for tr in headers:
                s = tr.stats
                self.index.append((s.network, s.station, s.channel, s.starttime, s.endtime, path))
        return inventory

    def data_stations(self) -> set[str]:
        config = self.run.config
        return {
            f"{net}.{sta}"
            for net, sta, cha, *_ in self.index
            if _matches(net, config.networks)
            and any(fnmatch.fnmatchcase(cha, p) for p in config.channels)
        }

    def fetch(self, keys: list[_Key]) -> dict[_Key, Stream | BaseException]:
        run = self.run
        out: dict[_Key, Stream | BaseException] = {}
        for net, sta, pattern in keys:
            paths = sorted(
                {
                    path
                    for n, s, c, t1, t2, path in self.index
                    if (n, s) == (net, sta)
                    and fnmatch.fnmatchcase(c, pattern)
                    and t2 >= run.start
                    and t1 <= run.end
                }
            )
            stream = Stream()
            try:
                for path in paths:
                    try:
                        stream += obspy.read(
                            str(path), format="MSEED", starttime=run.start, endtime=run.end
                        )
                    except Exception as exc:
                        raise _FileError(path, "corrupt_file", exc) from exc
            except _FileError as exc:
                out[(net, sta, pattern)] = exc
                continue
            out[(net, sta, pattern)] = stream
        return out


class _SDSSource(_Source):
    def __init__(self, run: _Run) -> None:
        super().__init__(run)
        from obspy.clients.filesystem.sds import Client

        self.root = Path(run.config.directory or ".")
        self.client = Client(str(self.root))

    def metadata(self) -> Inventory:
        return self._read_stationxml(self.root / "stations")

    def data_stations(self) -> set[str]:
        run, config = self.run, self.run.config
        found: set[str] = set()
        for when in (run.start, run.end):
            for net, sta, _, cha in self.client.get_all_nslc(datetime=when):
                if _matches(net, config.networks) and any(
                    fnmatch.fnmatchcase(cha, p) for p in config.channels
                ):
                    found.add(f"{net}.{sta}")
        return found

    def fetch(self, keys: list[_Key]) -> dict[_Key, Stream | BaseException]:
        run = self.run
        out: dict[_Key, Stream | BaseException] = {}
        for net, sta, pattern in keys:
            try:
                out[(net, sta, pattern)] = self.client.get_waveforms(
                    net, sta, "*", pattern, run.start, run.end
                )
            except Exception as exc:
                out[(net, sta, pattern)] = self._which_file(net, sta, pattern, exc)
        return out

    def _which_file(self, net: str, sta: str, pattern: str, exc: Exception) -> BaseException:
        """Name the archive file that cannot be read, if one can be found."""
        run, client = self.run, self.client
        assert run.start is not None and run.end is not None
        days = {(t.year, t.julday) for t in (run.start, run.end)}
        for year, doy in sorted(days):
            name = client.FMTSTR.format(
                network=net,
                station=sta,
                location="*",
                channel=pattern,
                year=year,
                doy=doy,
                sds_type=client.sds_type,
            )
            for path in sorted(glob.glob(str(self.root / name))):
                try:
                    obspy.read(path, format=client.format)
                except Exception as bad:
                    return _FileError(Path(path), "corrupt_file", bad)
        return exc


class _FileError(Exception):
    """A data file that cannot be read."""

    def __init__(self, path: Path, reason: str, exc: BaseException) -> None:
        self.file = str(path)
        self.reason = reason
        self.detail = f"{path}: {_first_line(exc)}"
        super().__init__(self.detail)


# -- small helpers ------------------------------------------------------------------------------


def _read_quakeml(path: Path) -> Catalog:
    if not path.is_file():
        raise RAError(f"QuakeML file {path} does not exist")
    try:
        return obspy.read_events(str(path))
    except Exception as exc:
        raise RAError(f"cannot read QuakeML file {path}: {_first_line(exc)}") from exc


def _id_matches(resource_id: str, wanted: str) -> bool:
    return resource_id == wanted or resource_id.endswith(("/" + wanted, "=" + wanted, ":" + wanted))


def _matches(code: str, patterns: str) -> bool:
    return any(fnmatch.fnmatchcase(code, p.strip()) for p in patterns.split(","))


def _active(channel: Any, start: UTCDateTime, end: UTCDateTime) -> bool:
    begins, ends = channel.start_date, channel.end_date
    return (begins is None or begins <= end) and (ends is None or ends >= start)


def _has_response(channel: Any) -> bool:
    response = getattr(channel, "response", None)
    return response is not None and bool(response.response_stages)


def _station_inventory(site: _Site, kept: set[tuple[str, str]]) -> Inventory:
    """StationXML of one station holding only the channels kept (their epochs in the window)."""
    network, station = (copy.copy(item) for item in site.metadata)
    station.channels = [site.channels[key] for key in sorted(kept)]
    network.stations = [station]
    return Inventory(networks=[network], source="dare ra download")


def _station_from_name(name: str) -> str | None:
    """``NET.STA`` from a file named like ``NET.STA.LOC.CHA...`` or ``NET.STA.xml``."""
    parts = name.split(".")
    if len(parts) >= 3 and parts[0] and parts[1]:
        return f"{parts[0]}.{parts[1]}"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Write through a temporary file in the same folder, then rename it into place."""
    with atomic_path(path) as temporary:
        write(str(temporary))


def _write_mseed(stream: Stream, path: str) -> None:
    stream.write(path, format="MSEED")


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    text = json.dumps(data, indent=2, default=str) + "\n"
    _atomic_write(path, lambda p: Path(p).write_text(text))


def _remove_previous(out_dir: Path) -> None:
    """Remove the files an earlier download listed in its manifest."""
    manifest = out_dir / "manifest.json"
    try:
        files = json.loads(manifest.read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return
    root = out_dir.resolve()
    for name in [*files, "manifest.json"]:
        path = (out_dir / str(name)).resolve()
        if path.is_relative_to(root) and path.is_file():
            path.unlink()
