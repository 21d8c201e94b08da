"""Download stage of the Rapid Assessment: the event, station metadata and waveforms of a window.

``[download]`` configuration (:class:`DownloadConfig`)
-----------------------------------------------------
``source``
    Where stations and waveforms come from (below). ``channels`` (patterns in priority order),
    ``networks``, ``radius_km``, ``before``/``after`` (s around the origin) and
    ``min_coverage`` select what is kept.
``event``
    The event file, in any of the formats of :mod:`dare_cli.ra.events`, detected by content:
    QuakeML, a USGS ComCat GeoJSON ``event.json`` (preferred origin and magnitude, and the
    moment tensor of its preferred ``moment-tensor`` product), or gmprocess's simple
    ``event.json``. ``quakeml`` is the older name of the same key (one of the two).
    ``event_id`` alone fetches the event from ``provider``'s FDSN event service; with a file,
    it picks the event of a file holding several. Without any, ``local``/``sds`` read
    ``<directory>/event.xml`` (else ``<directory>/event.json``). Implausible events (depth
    outside -10..800 km, magnitude outside -2..10, latitude/longitude out of range, no origin
    time) are refused with :class:`~dare_cli.ra.errors.ConfigError` naming the file and value.

Three sources fill the same folder:

``fdsn``
    An FDSN web service provider through obspy's :class:`obspy.clients.fdsn.Client`: the event
    by id (event service), stations within the radius with responses (station service,
    ``level="response"``), waveforms in one bulk request per round (dataselect service).
``sds``
    A SeisComP Data Structure archive read with :class:`obspy.clients.filesystem.sds.Client`,
    with StationXML in ``<root>/stations/*.xml`` or the ``stationxml`` path.
``local``
    A folder of miniSEED and StationXML files in any layout: any sub-folders, any file names,
    files holding several traces or stations, StationXML of many stations in one file. Files
    are told apart by content (miniSEED records; the ``FDSNStationXML`` root element) and
    matched to stations by trace id and time. With a ``waveforms/`` sub-folder, the layout of
    earlier versions is used: miniSEED under ``waveforms/``, StationXML under ``stations/``.
    ``stationxml`` (a file or folder of ``*.xml``) replaces the StationXML found in the
    folder. Hidden files and folders (``.*``) and dare run folders inside it are skipped;
    other files (QuakeML, README, JSON...) are listed as ``ignored_files``.

The output folder holds::

    event.xml                       QuakeML of the event (with its moment tensor, if any)
    stations/NET.STA.xml            StationXML with responses of the channels kept
    waveforms/NET.STA.LOC.CHA.mseed the window, every segment as recorded (gaps are not filled)
    manifest.json                   what was asked, what came, what failed and why

A station's StationXML is written after its waveforms, so a ``stations/NET.STA.xml`` marks a
complete station. Every file is written under a temporary name in its folder and renamed into
place, so no partial file is ever left; when the run stops on an exception, the manifest of
what was done is still written. One station failing never stops the others. File names are
built by :func:`dare_cli.ra.names.station_path` from checked SEED codes only, inside the output
folder: a station whose codes could not safely be part of a file name (``/``, ``..``...) is
rejected with reason ``unsafe_name``.

The manifest (``MANIFEST_FORMAT``) holds ``status`` ("complete" or "failed", with ``error``),
``request`` (config, window, region), ``event`` (with its ``file`` and ``format``),
``stations`` (per ``NET.STA``: coordinates, ``distance_km``, ``azimuth_deg``,
``back_azimuth_deg``, the channel code and location chosen, and per channel: start, end, npts,
segments, ``covered_s``, ``coverage``, gaps, file, ``response`` — ``"full"`` or
``"sensitivity_only"`` — and for the latter ``sensitivity``: ``value``, ``frequency_hz``,
``input_units``, ``output_units``), ``failed`` (stations not delivered:
``{station, reason, detail[, file]}`` with reason one of ``outside_radius``, ``no_data``,
``no_response``, ``no_metadata``, ``insufficient_coverage``, ``corrupt_file``, ``empty_file``,
``unsafe_name``, ``request_failed``, ``write_failed``, ``error``), ``flags`` (delivered but
marked: ``{station, channel, flag, detail}`` with flag ``partial_coverage``, ``gaps``,
``sensitivity_only``, ``no_response`` or ``insufficient_coverage`` for a channel dropped),
``bad_files`` (every unreadable or damaged input file, attributed to the station of the damaged
record, or of the file name ``NET.STA.*``), ``ignored_files`` (``local``: files that are
neither miniSEED nor StationXML) and ``files`` (every file written, relative to the folder).

Damaged miniSEED (:mod:`dare_cli.ra.mseedcheck`): a file cut short in its last record, a
record with a corrupted header, or data that do not decode, which obspy would otherwise read
silently short or with gaps, is reported ``corrupt_file`` with what is wrong
(``<path>: truncated: 2 of 512 bytes of the last record (at byte 3584)``), and rejects its
station (``local``, ``sds``).

Channel choice: for each station the first code of ``channels`` (in priority order) with data in
the window and a response in the metadata wins; of its location codes, the one with the most
such channels (on a tie the first in sorted order, so ``""`` before ``"00"``). Data of a chosen
channel without a response is dropped and flagged ``no_response``. A response is full (stages
to remove it), or, for accelerometers (instrument code ``N`` or sensitivity input units
m/s**2), an ``InstrumentSensitivity`` without stages, as strong-motion networks often publish:
such a channel is kept and flagged ``sensitivity_only`` (the preprocessing divides by the
sensitivity); for other instruments it is ``no_response``.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import functools
import glob
import importlib.metadata
import json
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import obspy
from lxml import etree
from obspy import Catalog, Inventory, Stream, UTCDateTime
from obspy.clients.fdsn.header import FDSNException, FDSNNoDataException
from obspy.core.event import Event
from obspy.geodetics import gps2dist_azimuth, kilometers2degrees, locations2degrees
from obspy.io.mseed.core import _is_mseed

from dare_cli.ra.errors import ConfigError, RAError
from dare_cli.ra.events import (
    check_event,
    detect_event_format,
    event_summary,
    read_event_file,
    select_event,
)
from dare_cli.ra.mseedcheck import Damage, DamagedFileError, check_framing, read_checked
from dare_cli.ra.names import (
    OutsideRunFolderError,
    UnsafeNameError,
    check_code,
    contained_path,
    is_station_id,
    station_path,
)
from dare_cli.ra.runfolder import RUN_MARKER
from engine.files import atomic_path

__all__ = [
    "MANIFEST_FORMAT",
    "PARTIAL_BELOW",
    "SOURCES",
    "DownloadConfig",
    "DownloadResult",
    "coverage",
    "download",
    "event_file",
    "preflight_event",
    "response_kind",
    "select_event",
]

SOURCES = ("fdsn", "local", "sds")
#: File name endings of miniSEED: such a file that is not miniSEED is reported, not ignored.
MSEED_SUFFIXES = (".mseed", ".miniseed", ".ms", ".msd")
#: Input units of an accelerometer's sensitivity (normalised: upper case, no spaces).
ACCELERATION_UNITS = ("M/S**2", "M/S^2", "M/S2", "M/SEC**2", "M/SEC2", "M/S/S")
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
        base URL; used for ``fdsn`` and for ``event_id`` without an event file.
    event_id
        Event id at the provider's event service; with an event file, the event to pick from
        it.
    event
        Event file: QuakeML, USGS ComCat GeoJSON or gmprocess ``event.json`` (detected by
        content). For ``local``/``sds`` without ``event``, ``quakeml`` or ``event_id``,
        ``<directory>/event.xml`` (else ``<directory>/event.json``) is read.
    quakeml
        The older name of ``event`` (give one of them).
    directory
        ``local``: the folder of miniSEED and StationXML files (any layout); ``sds``: the
        archive root.
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
    event: str | None = None
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
        if self.event and self.quakeml:
            raise ConfigError("[download] give the event file as 'event' or 'quakeml', not both")


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


def event_file(config: DownloadConfig) -> Path | None:
    """The event file the configuration names (``event``, ``quakeml``, or the folder's own).

    ``None`` when the event comes from the FDSN event service (``event_id`` alone), or when
    ``local``/``sds`` have neither an id nor ``<directory>/event.xml`` nor ``event.json``.
    """
    given = config.event or config.quakeml
    if given:
        return Path(given)
    if config.event_id or not config.directory or config.source == "fdsn":
        return None
    for name in ("event.xml", "event.json"):
        default = Path(config.directory) / name
        if default.is_file():
            return default
    return None


def preflight_event(config: DownloadConfig) -> Event | None:
    """Read and check the event file before anything runs (nothing for an FDSN event id).

    Returns
    -------
    obspy.core.event.Event or None
        The event of the file, or ``None`` when it is fetched by id (checked when fetched) or
        the file cannot be read (the download stage reports that).

    Raises
    ------
    ConfigError
        The event is implausible (:func:`dare_cli.ra.events.check_event`); the message names
        the file and the value.
    """
    path = event_file(config)
    if path is None:
        return None
    try:
        event = read_event_file(path, config.event_id)
    except RAError:
        return None
    check_event(event, f"event file {path}")
    return event


def response_kind(channel: Any) -> tuple[str | None, str]:
    """How a channel's instrument response can be removed.

    Returns
    -------
    kind, detail
        ``("full", "")`` with response stages; ``("sensitivity_only", detail)`` for an
        accelerometer (instrument code ``N`` or sensitivity input units m/s**2) whose
        StationXML has an ``InstrumentSensitivity`` but no stages; else ``(None, why)``.
    """
    response = getattr(channel, "response", None)
    if response is None:
        return None, "no response in the station metadata"
    if response.response_stages:
        return "full", ""
    sensitivity = response.instrument_sensitivity
    value = getattr(sensitivity, "value", None)
    if sensitivity is None or value is None or not np.isfinite(value) or value <= 0:
        return None, "no response in the station metadata"
    units = (sensitivity.input_units or "").upper().replace(" ", "")
    code = str(getattr(channel, "code", ""))
    accelerometer = (len(code) == 3 and code[1] == "N") or units in ACCELERATION_UNITS
    if accelerometer and units in ACCELERATION_UNITS:
        frequency = sensitivity.frequency
        return "sensitivity_only", (
            f"kept: sensitivity only ({value:g} {sensitivity.output_units or 'counts'} per "
            f"{sensitivity.input_units}"
            + (f" at {frequency:g} Hz" if frequency is not None else "")
            + "), no response stages: the preprocessing divides by the sensitivity")
    if accelerometer:
        return None, (f"sensitivity only, in {sensitivity.input_units or 'no units'} (not "
                      "m/s**2), no response stages")
    return None, "sensitivity only, no response stages (only accelerometers are accepted so)"


def _sensitivity(channel: Any) -> dict[str, Any]:
    sensitivity = channel.response.instrument_sensitivity
    return {"value": float(sensitivity.value), "frequency_hz": sensitivity.frequency,
            "input_units": sensitivity.input_units, "output_units": sensitivity.output_units}


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
        The configuration misses what its source needs (a folder, an event), or the event is
        implausible.
    RAError
        The event cannot be had (unknown id, no data, missing or unreadable file), or the
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
    if config.source == "fdsn" and not (config.event_id or config.event or config.quakeml):
        raise ConfigError("[download] source 'fdsn' needs 'event_id' or 'event'")


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
        self.ignored_files: list[str] = []
        self.event_source: dict[str, Any] = {}
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
        with_data = source.data_stations()
        for sid, failure in sorted(source.blocked.items()):
            if sid in sites or sid in with_data:
                sites.pop(sid, None)
                self._fail(sid, failure["reason"], failure["detail"], file=failure.get("file"))
        for sid in sorted(with_data - set(sites) - set(self.failed)):
            if not is_station_id(sid):
                self._fail(sid, "unsafe_name", _unsafe_detail(sid))
                continue
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
                if isinstance(exc, UnsafeNameError):
                    self._fail(sid, "unsafe_name", exc.reason)
                    continue
                reason = "write_failed" if isinstance(exc, OSError) else "error"
                self._fail(sid, reason, f"{type(exc).__name__}: {exc}")
        self.status = "complete"

    def _load_event(self) -> Event:
        config = self.config
        path = event_file(config)
        if path is not None:
            self.event_source = {"file": str(path), "format": None}
            event = read_event_file(path, config.event_id)
            self.event_source["format"] = detect_event_format(path)
            check_event(event, f"event file {path}")
            return event
        if not config.event_id:
            raise ConfigError(
                "[download] no event: set 'event' (a QuakeML, USGS or gmprocess event file) or "
                f"'event_id' (no event.xml or event.json in {config.directory} either)")
        self.event_source = {"fdsn": config.provider, "event_id": config.event_id}
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
        where = f"event service of {config.provider!r}"
        event = select_event(catalog, config.event_id, where=where)
        check_event(event, f"event {config.event_id!r} from the {where}")
        return event

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
                unsafe = _unsafe_codes(network.code, station.code, channels)
                if unsafe:
                    sites.pop(sid, None)
                    self._fail(sid, "unsafe_name", unsafe)
                    continue
                if sid in self.failed and self.failed[sid]["reason"] == "unsafe_name":
                    continue
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
            self._flag(site.sid, tid, "no_response",
                       f"channel dropped: {response_kind(channel)[1]}")
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
            path = station_path(self.out_dir / "waveforms", tid, ".mseed", root=self.out_dir)
            kind, detail = response_kind(site.channels[(loc, cha)])
            if kind == "sensitivity_only":
                self._flag(site.sid, tid, "sensitivity_only", detail)
            self._write(path, functools.partial(_write_mseed, traces), written)
            response: dict[str, Any] = {"response": kind}
            if kind == "sensitivity_only":
                response["sensitivity"] = _sensitivity(site.channels[(loc, cha)])
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
                    "file": str(path.relative_to(self.out_dir)),
                    **response,
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
        stationxml = station_path(self.out_dir / "stations", site.sid, ".xml", root=self.out_dir)
        self._write(stationxml, lambda p: inventory.write(p, format="STATIONXML"), written)
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
            "stationxml": str(stationxml.relative_to(self.out_dir)),
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
        contained_path(path, self.out_dir)  # before any folder or file is made
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, write)
        self.files.append(str(path.relative_to(self.out_dir)))
        if written is not None:
            written.append(path)

    def manifest(self) -> dict[str, Any]:
        config, origin = self.config, self.origin
        event = None
        if self.event is not None:
            event = {**event_summary(self.event), "file": "event.xml",
                     "source": self.event_source}
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
            "ignored_files": self.ignored_files,
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
        #: Damage of a file that rules out only some of its stations.
        self.damage: dict[Path, Damage] = {}

    def metadata(self) -> Inventory:
        raise NotImplementedError

    def data_stations(self) -> set[str]:
        """``NET.STA`` with data for the channels asked (for ``no_metadata`` reports)."""
        return set()

    def fetch(self, keys: list[_Key]) -> dict[_Key, Stream | BaseException]:
        raise NotImplementedError

    def _bad_file(self, path: Path, reason: str, detail: str,
                  stations: Iterable[str] | None = None) -> None:
        """Report an unreadable or damaged file and block its stations.

        The stations are those named, else the station of the file name ``NET.STA.*``.
        """
        named = sorted({s for s in stations if is_station_id(s)}) if stations is not None \
            else [s for s in [_station_from_name(path.name)] if s is not None]
        self.run.bad_files.append({
            "file": str(path), "station": named[0] if len(named) == 1 else None,
            "stations": named, "reason": reason, "detail": detail,
        })
        for station in named:
            self.blocked.setdefault(
                station, {"reason": reason, "detail": detail, "file": str(path)})

    def _read_stationxml(self, default: Path | Iterable[Path]) -> Inventory:
        """Read the ``stationxml`` path if configured, else ``default`` (a folder or files)."""
        if self.run.config.stationxml or isinstance(default, Path):
            where = (Path(self.run.config.stationxml) if self.run.config.stationxml
                     else Path(str(default)))
            if where.is_dir():
                paths = sorted(p for p in where.iterdir()
                               if p.suffix.lower() == ".xml" and not p.name.startswith("."))
            elif where.is_file():
                paths = [where]
            else:
                raise RAError(f"StationXML {where} does not exist")
            if not paths:
                raise RAError(f"no StationXML file (*.xml) in {where}")
        else:
            paths = sorted(default)
            if not paths:
                raise RAError(f"no StationXML file in {self.run.config.directory} (files whose "
                              "root element is FDSNStationXML, in any folder)")
        inventory = Inventory(networks=[])
        for path in paths:
            if path.stat().st_size == 0:
                self._bad_file(path, "empty_file", f"{path}: empty file")
                continue
            try:
                # a file whose root is FDSNStationXML is read as such, for obspy's own error
                kind = "STATIONXML" if _classify(path) == "stationxml" else None
                inventory += obspy.read_inventory(str(path), format=kind)
            except Exception as exc:
                self._bad_file(path, "corrupt_file", f"{path}: {_first_line(exc)}")
        return inventory

    def _check_mseed(self, path: Path) -> tuple[Stream, set[str]] | None:
        """Headers of a miniSEED file, and the stations ruled out by damage in it.

        Returns ``None`` (after reporting the file) when nothing of it can be used. A damage
        attributed to some stations of the file is kept in ``self.damage`` for later reads.
        """
        try:
            damage = check_framing(path)
        except OSError as exc:
            self._bad_file(path, "corrupt_file", f"{path}: cannot read: {exc.strerror or exc}")
            return None
        detail = damage.detail if damage is not None else None
        try:
            headers = read_checked(path, headonly=True)
        except DamagedFileError as exc:
            detail = detail or exc.detail
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    headers = obspy.read(str(path), format="MSEED", headonly=True)
                except Exception:
                    headers = Stream()
        except Exception as exc:
            self._bad_file(path, "corrupt_file", f"{path}: {_first_line(exc)}")
            return None
        if detail is None:
            return headers, set()
        in_file = {f"{tr.stats.network}.{tr.stats.station}" for tr in headers}
        if damage is not None and damage.station in in_file:
            affected = {damage.station}  # the damaged record names its station
            self.damage[path] = damage
        else:
            affected = in_file | {s for s in [_station_from_name(path.name)] if s}
        self._bad_file(path, "corrupt_file", f"{path}: {detail}", affected)
        return headers, affected


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
    """A folder of miniSEED and StationXML files, in any layout (see the module docstring)."""

    def __init__(self, run: _Run) -> None:
        super().__init__(run)
        self.root = Path(run.config.directory or ".")
        #: network, station, channel, start, end, file of every trace header.
        self.index: list[tuple[str, str, str, UTCDateTime, UTCDateTime, Path]] = []
        self.layout = "split" if (self.root / "waveforms").is_dir() else "flat"

    def metadata(self) -> Inventory:
        stationxml: list[Path] = []
        if self.layout == "split":
            waveforms = self._classify_all(self.root / "waveforms", stationxml, accept_xml=False)
            inventory = self._read_stationxml(self.root / "stations")
        else:
            waveforms = self._classify_all(self.root, stationxml, accept_xml=True)
            if self.run.config.stationxml:  # replaces the StationXML found in the folder
                self.run.ignored_files.extend(str(p) for p in stationxml)
                inventory = self._read_stationxml(Path(self.run.config.stationxml))
            else:
                inventory = self._read_stationxml(stationxml)
        for path in waveforms:
            checked = self._check_mseed(path)
            if checked is None:
                continue
            headers, ruled_out = checked
            for tr in headers:
                s = tr.stats
                if f"{s.network}.{s.station}" not in ruled_out:
                    self.index.append(
                        (s.network, s.station, s.channel, s.starttime, s.endtime, path))
        return inventory

    def _classify_all(self, top: Path, stationxml: list[Path], *, accept_xml: bool
                      ) -> list[Path]:
        """Sort the files under ``top``: return the miniSEED ones.

        StationXML files go to ``stationxml`` (if accepted), bad ones are reported, others
        listed as ignored.
        """
        waveforms: list[Path] = []
        event = event_file(self.run.config)
        event_path = event.resolve() if event is not None else None
        for path in _walk(top, self.run.out_dir):
            if path.resolve() == event_path:
                continue  # the event file, read already
            kind = _classify(path)
            suffix = path.suffix.lower()
            data_like = suffix in MSEED_SUFFIXES or (suffix == ".xml" and accept_xml)
            if kind == "mseed":
                waveforms.append(path)
            elif kind == "stationxml" and accept_xml:
                stationxml.append(path)
            elif kind == "empty" and data_like:
                self._bad_file(path, "empty_file", f"{path}: empty file")
            elif kind == "unreadable":
                self._bad_file(path, "corrupt_file", f"{path}: cannot be read")
            elif suffix in MSEED_SUFFIXES:
                self._bad_file(path, "corrupt_file",
                               f"{path}: not miniSEED (no valid record header at byte 0)")
            elif kind == "broken-xml" and suffix == ".xml" and accept_xml:
                self._bad_file(path, "corrupt_file", f"{path}: not well-formed XML")
            else:
                self.run.ignored_files.append(str(path))
        return waveforms

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
                        stream += read_checked(path, self.damage.get(path),
                                               starttime=run.start, endtime=run.end,
                                               sourcename=f"{net}.{sta}.*.{pattern}")
                    except DamagedFileError as exc:
                        raise _FileError(path, "corrupt_file", exc.detail) from exc
                    except Exception as exc:
                        raise _FileError(path, "corrupt_file", _first_line(exc)) from exc
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
            damaged = self._damaged_file(net, sta, pattern)
            if damaged is not None:
                out[(net, sta, pattern)] = damaged
                continue
            try:
                out[(net, sta, pattern)] = self.client.get_waveforms(
                    net, sta, "*", pattern, run.start, run.end
                )
            except Exception as exc:
                out[(net, sta, pattern)] = self._damaged_file(net, sta, pattern) or exc
        return out

    def _files(self, net: str, sta: str, pattern: str) -> list[Path]:
        """The archive's day files of a station and channel pattern over the window."""
        run, client = self.run, self.client
        assert run.start is not None and run.end is not None
        days = {(t.year, t.julday) for t in (run.start, run.end)}
        found: list[Path] = []
        for year, doy in sorted(days):
            name = client.FMTSTR.format(network=net, station=sta, location="*",
                                        channel=pattern, year=year, doy=doy,
                                        sds_type=client.sds_type)
            found.extend(Path(p) for p in sorted(glob.glob(str(self.root / name))))
        return found

    def _damaged_file(self, net: str, sta: str, pattern: str) -> _FileError | None:
        """The first day file of the station that is damaged or unreadable, if any."""
        for path in self._files(net, sta, pattern):
            try:
                damage = check_framing(path)
                if damage is not None:
                    return _FileError(path, "corrupt_file", damage.detail)
                read_checked(path, sourcename=f"{net}.{sta}.*.{pattern}")
            except DamagedFileError as exc:
                return _FileError(path, "corrupt_file", exc.detail)
            except Exception as exc:
                return _FileError(path, "corrupt_file", _first_line(exc))
        return None


class _FileError(Exception):
    """A data file that cannot be read, or is damaged."""

    def __init__(self, path: Path, reason: str, detail: str) -> None:
        self.file = str(path)
        self.reason = reason
        self.detail = f"{path}: {detail}"
        super().__init__(self.detail)


# -- small helpers ------------------------------------------------------------------------------


def _matches(code: str, patterns: str) -> bool:
    return any(fnmatch.fnmatchcase(code, p.strip()) for p in patterns.split(","))


def _active(channel: Any, start: UTCDateTime, end: UTCDateTime) -> bool:
    begins, ends = channel.start_date, channel.end_date
    return (begins is None or begins <= end) and (ends is None or ends >= start)


def _station_inventory(site: _Site, kept: set[tuple[str, str]]) -> Inventory:
    """StationXML of one station holding only the channels kept (their epochs in the window)."""
    network, station = (copy.copy(item) for item in site.metadata)
    station.channels = [site.channels[key] for key in sorted(kept)]
    network.stations = [station]
    return Inventory(networks=[network], source="dare ra download")


def _station_from_name(name: str) -> str | None:
    """``NET.STA`` from a file named like ``NET.STA.LOC.CHA...`` or ``NET.STA.xml``."""
    parts = name.split(".")
    if len(parts) >= 3 and is_station_id(f"{parts[0]}.{parts[1]}"):
        return f"{parts[0]}.{parts[1]}"
    return None


def _unsafe_codes(network: str, station: str, channels: Mapping[tuple[str, str], Any]
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


def _unsafe_detail(station_id: str) -> str:
    network, _, station = station_id.partition(".")
    return _unsafe_codes(network, station, {}) or f"station id {station_id!r} is not NET.STA"


def _walk(top: Path, out_dir: Path) -> list[Path]:
    """Files under ``top`` (sorted), not following folder links.

    Hidden entries, dare run folders (``.dare-run.json``) and the output folder are skipped.
    """
    skip = out_dir.resolve()
    found: list[Path] = []
    for folder, subfolders, names in os.walk(top):
        here = Path(folder)
        subfolders[:] = sorted(
            name for name in subfolders
            if not name.startswith(".") and not (here / name / RUN_MARKER).exists()
            and (here / name).resolve() != skip
        )
        found.extend(here / name for name in sorted(names)
                     if not name.startswith(".") and (here / name).is_file())
    return found


def _classify(path: Path) -> str:
    """What a file holds, by content, not by name.

    One of ``mseed``, ``stationxml``, ``xml`` (another document), ``broken-xml``, ``empty``,
    ``unreadable`` or ``other``.
    """
    try:
        if path.stat().st_size == 0:
            return "empty"
        if _is_mseed(str(path)):
            return "mseed"
        with open(path, "rb") as handle:
            head = handle.read(512).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return "unreadable"
    except Exception:  # obspy's sniffing of odd files
        return "other"
    if not head.startswith(b"<"):
        return "other"
    try:
        for _, element in etree.iterparse(str(path), events=("start",)):
            root = etree.QName(element).localname
            return "stationxml" if root == "FDSNStationXML" else "xml"
    except etree.XMLSyntaxError:
        return "broken-xml"
    return "broken-xml"


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
    for name in [*files, "manifest.json"]:
        relative = Path(str(name))
        if relative.is_absolute() or ".." in relative.parts:
            continue
        path = out_dir / relative
        try:
            contained_path(path.parent, out_dir)  # no folder of it leads out of out_dir
        except OutsideRunFolderError:
            continue
        if path.is_file() and not path.is_symlink():  # dare writes files, never links
            path.unlink()
