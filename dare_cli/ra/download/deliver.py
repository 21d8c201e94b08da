"""Delivering one station: its channels checked for coverage, written, then its StationXML.

A channel covering less than ``min_coverage`` of the window is dropped (flagged); gaps and
partial coverage are flagged on the channels kept. The StationXML is written after the
waveforms, so a ``stations/NET.STA.xml`` marks a complete station; a station left without a
channel fails ``insufficient_coverage`` and nothing of it stays.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obspy import Stream
from obspy.geodetics import gps2dist_azimuth, locations2degrees

from dare_cli.ra.download.channels import PARTIAL_BELOW, coverage, response_kind, sensitivity_entry
from dare_cli.ra.download.stations import Pick, Site, station_inventory
from dare_cli.ra.names import station_path

if TYPE_CHECKING:
    from dare_cli.ra.download.run import DownloadRun

__all__ = ["deliver", "gaps_of"]


def _write_mseed(stream: Stream, path: str) -> None:
    stream.write(path, format="MSEED")


def gaps_of(traces: Stream) -> tuple[list[dict[str, Any]], int]:
    """The gaps between a channel's segments (manifest entries), and how many overlap."""
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
    return gaps, sum(1 for g in found if g[6] < 0)


def deliver(run: DownloadRun, pick: Pick, written: list[Path]) -> None:
    """Check coverage, write the waveforms and then the StationXML of one station.

    Every file written is appended to ``written`` (so that a failure can remove them).
    """
    site = pick.site
    channels = []
    for tid in sorted({tr.id for tr in pick.stream}):
        channel = _deliver_channel(run, site, tid, pick.stream.select(id=tid).sort(), written)
        if channel is not None:
            channels.append(channel)
    if not channels:
        for path in written:
            path.unlink()
            run.files.remove(str(path.relative_to(run.out_dir)))
        written.clear()
        run.flags = [f for f in run.flags if f["station"] != site.sid]
        run.fail(
            site.sid,
            "insufficient_coverage",
            f"no channel covers min_coverage {run.config.min_coverage:.0%} of the window",
        )
        return
    kept = {(c["location"], c["channel"]) for c in channels}
    inventory = station_inventory(site, kept)
    stationxml = station_path(run.out_dir / "stations", site.sid, ".xml", root=run.out_dir)
    run.write(stationxml, lambda p: inventory.write(p, format="STATIONXML"), written)
    run.stations[site.sid] = _station_entry(run, pick, stationxml, channels)


def _deliver_channel(run: DownloadRun, site: Site, tid: str, traces: Stream,
                     written: list[Path]) -> dict[str, Any] | None:
    """Write one channel's traces and return its manifest entry; None if it was dropped."""
    assert run.start is not None and run.end is not None
    config = run.config
    window = float(run.end - run.start)
    covered, fraction = coverage(traces, run.start, run.end)
    if fraction < config.min_coverage:
        run.flag(
            site.sid,
            tid,
            "insufficient_coverage",
            f"channel dropped: covers {covered:.1f} s of the {window:g} s window "
            f"({fraction:.1%} < min_coverage {config.min_coverage:.0%})",
        )
        return None
    gaps, overlaps = gaps_of(traces)
    missing = sum(g["missing_s"] for g in gaps)
    if fraction < PARTIAL_BELOW:
        run.flag(
            site.sid,
            tid,
            "partial_coverage",
            f"kept: covers {covered:.1f} s of the {window:g} s window ({fraction:.1%})",
        )
    if gaps:
        run.flag(site.sid, tid, "gaps", f"kept: {len(gaps)} gap(s), {missing:.2f} s missing")
    loc, cha = tid.split(".")[2:]
    path = station_path(run.out_dir / "waveforms", tid, ".mseed", root=run.out_dir)
    kind, detail = response_kind(site.channels[(loc, cha)])
    if kind == "sensitivity_only":
        run.flag(site.sid, tid, "sensitivity_only", detail)
    run.write(path, functools.partial(_write_mseed, traces), written)
    response: dict[str, Any] = {"response": kind}
    if kind == "sensitivity_only":
        response["sensitivity"] = sensitivity_entry(site.channels[(loc, cha)])
    return {
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
        "file": str(path.relative_to(run.out_dir)),
        **response,
    }


def _station_entry(run: DownloadRun, pick: Pick, stationxml: Path,
                   channels: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest entry of a delivered station: where it is, what was chosen, its files."""
    site, origin = pick.site, run.origin
    distance, azimuth, back_azimuth = gps2dist_azimuth(
        origin.latitude, origin.longitude, site.latitude, site.longitude
    )
    return {
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
        "stationxml": str(stationxml.relative_to(run.out_dir)),
        "channels": channels,
    }
