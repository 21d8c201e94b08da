"""Where a download's station metadata and waveforms come from: FDSN, a folder, SDS.

Each source lists the stations' metadata, the stations that have data, and fetches the
traces of ``(network, station, channel pattern)`` keys over the window; an unreadable or
damaged input file is reported once and rules out its stations (``blocked``).
"""

from __future__ import annotations

import fnmatch
import glob
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import obspy
from obspy import Inventory, Stream, UTCDateTime
from obspy.clients.fdsn.header import FDSNException, FDSNNoDataException
from obspy.geodetics import kilometers2degrees

from dare_cli.ra.download.channels import matches_codes
from dare_cli.ra.download.config import event_file
from dare_cli.ra.download.files import (
    MSEED_SUFFIXES,
    classify_file,
    first_line,
    station_from_name,
    walk_files,
)
from dare_cli.ra.errors import RAError
from dare_cli.ra.mseedcheck import Damage, DamagedFileError, check_framing, read_checked
from dare_cli.ra.names import is_station_id

if TYPE_CHECKING:
    from dare_cli.ra.download.run import DownloadRun

__all__ = ["FDSNSource", "FileError", "Key", "LocalSource", "SDSSource", "Source", "make_source"]

#: network, station, channel pattern
Key = tuple[str, str, str]


class Source:
    """Where metadata and waveforms come from."""

    def __init__(self, run: DownloadRun) -> None:
        self.run = run
        #: ``NET.STA`` -> failure, for stations ruled out before any request (a bad file).
        self.blocked: dict[str, dict[str, Any]] = {}
        #: Damage of a file that rules out only some of its stations.
        self.damage: dict[Path, Damage] = {}

    def metadata(self) -> Inventory:
        """Station metadata (with responses) of the stations asked for."""
        raise NotImplementedError

    def data_stations(self) -> set[str]:
        """``NET.STA`` with data for the channels asked (for ``no_metadata`` reports)."""
        return set()

    def fetch(self, keys: list[Key]) -> dict[Key, Stream | BaseException]:
        """The traces of each key over the window, or what prevented them."""
        raise NotImplementedError

    def _bad_file(self, path: Path, reason: str, detail: str,
                  stations: Iterable[str] | None = None) -> None:
        """Report an unreadable or damaged file and block its stations.

        The stations are those named, else the station of the file name ``NET.STA.*``.
        """
        named = sorted({s for s in stations if is_station_id(s)}) if stations is not None \
            else [s for s in [station_from_name(path.name)] if s is not None]
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
                kind = "STATIONXML" if classify_file(path) == "stationxml" else None
                inventory += obspy.read_inventory(str(path), format=kind)
            except Exception as exc:
                self._bad_file(path, "corrupt_file", f"{path}: {first_line(exc)}")
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
            self._bad_file(path, "corrupt_file", f"{path}: {first_line(exc)}")
            return None
        if detail is None:
            return headers, set()
        in_file = {f"{tr.stats.network}.{tr.stats.station}" for tr in headers}
        if damage is not None and damage.station in in_file:
            affected = {damage.station}  # the damaged record names its station
            self.damage[path] = damage
        else:
            affected = in_file | {s for s in [station_from_name(path.name)] if s}
        self._bad_file(path, "corrupt_file", f"{path}: {detail}", affected)
        return headers, affected


class FDSNSource(Source):
    """An FDSN web service provider (obspy's FDSN client, timeout ``FDSN_TIMEOUT_S``)."""

    def metadata(self) -> Inventory:
        """The station service's stations within the radius, with responses."""
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
                f"the station service of {config.provider!r} failed: {first_line(exc)}"
            ) from exc

    def fetch(self, keys: list[Key]) -> dict[Key, Stream | BaseException]:
        """One bulk request for every key; one request per key if it fails."""
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

    def _one(self, key: Key) -> Stream | BaseException:
        net, sta, cha = key
        try:
            return self.run.client().get_waveforms(net, sta, "*", cha, self.run.start, self.run.end)
        except FDSNNoDataException:
            return Stream()
        except (FDSNException, OSError, ValueError) as exc:
            return exc


class LocalSource(Source):
    """A folder of miniSEED and StationXML files, in any layout (see the module docstring)."""

    def __init__(self, run: DownloadRun) -> None:
        super().__init__(run)
        self.root = Path(run.config.directory or ".")
        #: network, station, channel, start, end, file of every trace header.
        self.index: list[tuple[str, str, str, UTCDateTime, UTCDateTime, Path]] = []
        self.layout = "split" if (self.root / "waveforms").is_dir() else "flat"

    def metadata(self) -> Inventory:
        """The folder's StationXML; its miniSEED files indexed by trace header."""
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
        for path in walk_files(top, self.run.out_dir):
            if path.resolve() == event_path:
                continue  # the event file, read already
            kind = classify_file(path)
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
        """``NET.STA`` of the indexed traces matching the networks and channels."""
        config = self.run.config
        return {
            f"{net}.{sta}"
            for net, sta, cha, *_ in self.index
            if matches_codes(net, config.networks)
            and any(fnmatch.fnmatchcase(cha, p) for p in config.channels)
        }

    def fetch(self, keys: list[Key]) -> dict[Key, Stream | BaseException]:
        """The indexed files' traces of each key over the window."""
        run = self.run
        out: dict[Key, Stream | BaseException] = {}
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
                        raise FileError(path, "corrupt_file", exc.detail) from exc
                    except Exception as exc:
                        raise FileError(path, "corrupt_file", first_line(exc)) from exc
            except FileError as exc:
                out[(net, sta, pattern)] = exc
                continue
            out[(net, sta, pattern)] = stream
        return out


class SDSSource(Source):
    """A SeisComP Data Structure archive (obspy's SDS client)."""

    def __init__(self, run: DownloadRun) -> None:
        super().__init__(run)
        from obspy.clients.filesystem.sds import Client

        self.root = Path(run.config.directory or ".")
        self.client = Client(str(self.root))

    def metadata(self) -> Inventory:
        """StationXML of ``<root>/stations`` (or ``stationxml``)."""
        return self._read_stationxml(self.root / "stations")

    def data_stations(self) -> set[str]:
        """``NET.STA`` with archive files on the window's first or last day."""
        run, config = self.run, self.run.config
        found: set[str] = set()
        for when in (run.start, run.end):
            for net, sta, _, cha in self.client.get_all_nslc(datetime=when):
                if matches_codes(net, config.networks) and any(
                    fnmatch.fnmatchcase(cha, p) for p in config.channels
                ):
                    found.add(f"{net}.{sta}")
        return found

    def fetch(self, keys: list[Key]) -> dict[Key, Stream | BaseException]:
        """The archive's traces of each key; a damaged day file is reported."""
        run = self.run
        out: dict[Key, Stream | BaseException] = {}
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

    def _damaged_file(self, net: str, sta: str, pattern: str) -> FileError | None:
        """The first day file of the station that is damaged or unreadable, if any."""
        for path in self._files(net, sta, pattern):
            try:
                damage = check_framing(path)
                if damage is not None:
                    return FileError(path, "corrupt_file", damage.detail)
                read_checked(path, sourcename=f"{net}.{sta}.*.{pattern}")
            except DamagedFileError as exc:
                return FileError(path, "corrupt_file", exc.detail)
            except Exception as exc:
                return FileError(path, "corrupt_file", first_line(exc))
        return None


class FileError(Exception):
    """A data file that cannot be read, or is damaged."""

    def __init__(self, path: Path, reason: str, detail: str) -> None:
        self.file = str(path)
        self.reason = reason
        self.detail = f"{path}: {detail}"
        super().__init__(self.detail)


def make_source(run: DownloadRun) -> Source:
    """The source ``[download] source`` names."""
    if run.config.source == "fdsn":
        return FDSNSource(run)
    if run.config.source == "sds":
        return SDSSource(run)
    return LocalSource(run)
