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

The package, one module per step: :mod:`~dare_cli.ra.download.config` (what is asked),
:mod:`~dare_cli.ra.download.sources` (FDSN, local folder, SDS),
:mod:`~dare_cli.ra.download.stations` (which stations and channels),
:mod:`~dare_cli.ra.download.channels` (response and coverage of a channel),
:mod:`~dare_cli.ra.download.deliver` (writing a station whole),
:mod:`~dare_cli.ra.download.files` (what an input file holds; atomic writes) and
:mod:`~dare_cli.ra.download.run` (the state of one download, its manifest).
"""

from __future__ import annotations

from dare_cli.ra.download.channels import PARTIAL_BELOW, coverage, response_kind
from dare_cli.ra.download.config import (
    SOURCES,
    DownloadConfig,
    DownloadResult,
    event_file,
    preflight_event,
)
from dare_cli.ra.download.run import MANIFEST_FORMAT, download
from dare_cli.ra.events import select_event

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
