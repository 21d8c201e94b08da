"""What a download is asked to do (``[download]``), and what it hands back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obspy.core.event import Event

from dare_cli.ra.errors import ConfigError, RAError
from dare_cli.ra.events import check_event, read_event_file

__all__ = [
    "FDSN_TIMEOUT_S",
    "SOURCES",
    "DownloadConfig",
    "DownloadResult",
    "check_inputs",
    "event_file",
    "preflight_event",
]

SOURCES = ("fdsn", "local", "sds")
#: Seconds before an FDSN request is abandoned.
FDSN_TIMEOUT_S = 60.0


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


def check_inputs(config: DownloadConfig) -> None:
    """Refuse a configuration that misses what its source needs (a folder, an event)."""
    if config.source in ("local", "sds"):
        if not config.directory:
            raise ConfigError(f"[download] source {config.source!r} needs 'directory'")
        if not Path(config.directory).is_dir():
            raise ConfigError(f"[download] directory {config.directory!r} is not a folder")
    if config.source == "fdsn" and not (config.event_id or config.event or config.quakeml):
        raise ConfigError("[download] source 'fdsn' needs 'event_id' or 'event'")
