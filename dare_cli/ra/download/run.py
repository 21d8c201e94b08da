"""One download: its state, its steps, and its manifest (:func:`download`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import obspy
from obspy import Catalog, UTCDateTime
from obspy.clients.fdsn.header import FDSNException, FDSNNoDataException
from obspy.core.event import Event
from obspy.geodetics import kilometers2degrees

from dare_cli.ra.download.config import (
    FDSN_TIMEOUT_S,
    DownloadConfig,
    DownloadResult,
    check_inputs,
    event_file,
)
from dare_cli.ra.download.deliver import deliver
from dare_cli.ra.download.files import (
    atomic_write,
    first_line,
    package_version,
    remove_previous,
    write_manifest_json,
)
from dare_cli.ra.download.sources import make_source
from dare_cli.ra.download.stations import Pick, choose_channels, find_sites, unsafe_detail
from dare_cli.ra.errors import ConfigError, RAError
from dare_cli.ra.events import (
    check_event,
    detect_event_format,
    event_summary,
    read_event_file,
    select_event,
)
from dare_cli.ra.names import UnsafeNameError, contained_path, is_station_id

__all__ = ["MANIFEST_FORMAT", "DownloadRun", "download"]

MANIFEST_FORMAT = "dare-ra-download/1"


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
    check_inputs(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_previous(out_dir)
    run = DownloadRun(config, out_dir)
    try:
        run.execute()
    except BaseException as exc:
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
        write_manifest_json(out_dir / "manifest.json", run.manifest())
        raise
    manifest = run.manifest()
    write_manifest_json(out_dir / "manifest.json", manifest)
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


class DownloadRun:
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

    def execute(self) -> None:
        """Fetch the event, choose the stations and channels, deliver each station whole."""
        self.event = self._load_event()
        self.origin = self.event.preferred_origin() or self.event.origins[0]
        self.start = self.origin.time - self.config.before
        self.end = self.origin.time + self.config.after
        catalog = Catalog(events=[self.event])
        self.write(self.out_dir / "event.xml", lambda p: catalog.write(p, format="QUAKEML"))

        source = make_source(self)
        sites = find_sites(self, source.metadata())
        with_data = source.data_stations()
        for sid, failure in sorted(source.blocked.items()):
            if sid in sites or sid in with_data:
                sites.pop(sid, None)
                self.fail(sid, failure["reason"], failure["detail"], file=failure.get("file"))
        for sid in sorted(with_data - set(sites) - set(self.failed)):
            if not is_station_id(sid):
                self.fail(sid, "unsafe_name", unsafe_detail(sid))
                continue
            self.fail(sid, "no_metadata", "data but no station metadata for the channels asked")
        picks = choose_channels(self, source, sites)
        for sid in sorted(picks):
            self._deliver_whole(sid, picks[sid])
        self.status = "complete"

    def _deliver_whole(self, sid: str, pick: Pick) -> None:
        """Deliver one station, or on an error remove what was written of it and say why."""
        written: list[Path] = []
        try:
            deliver(self, pick, written)
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
                self.fail(sid, "unsafe_name", exc.reason)
                return
            reason = "write_failed" if isinstance(exc, OSError) else "error"
            self.fail(sid, reason, f"{type(exc).__name__}: {exc}")

    def _load_event(self) -> Event:
        """The event of the file, or of ``provider``'s event service by id; checked."""
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
                f"failed: {first_line(exc)}"
            ) from exc
        where = f"event service of {config.provider!r}"
        event = select_event(catalog, config.event_id, where=where)
        check_event(event, f"event {config.event_id!r} from the {where}")
        return event

    def client(self) -> Any:
        """The FDSN client of ``provider``, made once."""
        if self._client is None:
            from obspy.clients.fdsn import Client

            try:
                self._client = Client(self.config.provider, timeout=FDSN_TIMEOUT_S)
            except (FDSNException, OSError, ValueError) as exc:
                raise RAError(
                    f"cannot use FDSN provider {self.config.provider!r}: {first_line(exc)}"
                ) from exc
        return self._client

    def fail(self, sid: str, reason: str, detail: str, *, file: str | None = None) -> None:
        """Record that a station failed (its first failure only)."""
        if sid in self.failed:
            return
        entry = {"station": sid, "reason": reason, "detail": detail}
        if file is not None:
            entry["file"] = file
        self.failed[sid] = entry

    def flag(self, sid: str, channel: str, flag: str, detail: str) -> None:
        """Record a flag on a delivered channel."""
        self.flags.append({"station": sid, "channel": channel, "flag": flag, "detail": detail})

    def write(
        self, path: Path, write: Callable[[str], object], written: list[Path] | None = None
    ) -> None:
        """Write a file of the output folder whole (listed; appended to ``written``)."""
        contained_path(path, self.out_dir)  # before any folder or file is made
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, write)
        self.files.append(str(path.relative_to(self.out_dir)))
        if written is not None:
            written.append(path)

    def manifest(self) -> dict[str, Any]:
        """The content of ``manifest.json`` (see the package docstring)."""
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
            "software": {"dare": package_version("dare"), "obspy": obspy.__version__},
            "request": {"config": asdict(config), "window": window, "region": region},
            "event": event,
            "stations": dict(sorted(self.stations.items())),
            "failed": [self.failed[s] for s in sorted(self.failed)],
            "flags": self.flags,
            "bad_files": self.bad_files,
            "ignored_files": self.ignored_files,
            "files": sorted(self.files),
        }
