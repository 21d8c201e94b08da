"""The preprocess and norm stages: each station's record, its comparison copies, their norms.

preprocess writes ``record/`` (the observed channels processed at their own rate, what
gmprocess would report), ``observed/`` and ``synthetic/`` (both in the common band on the
comparison grid), one file per station and quantity; norm adds the vector norms of each.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from obspy import Stream, read
from obspy.core.event import Event

from dare_cli.ra.config import RAConfig
from dare_cli.ra.errors import RAError, StationError
from dare_cli.ra.names import check_station_id, station_path
from dare_cli.ra.norm import station_norms
from dare_cli.ra.preprocess import QUANTITIES, Hypocentre, comparison_copies, process_record
from dare_cli.ra.stages.common import (
    event_info,
    per_station,
    read_event,
    read_station_stream,
    read_stream,
    station_inventory,
    stations_in,
    step_summary,
    synthetic_band,
    write_stream,
)
from engine.pipeline import StageContext, StageWork

__all__ = [
    "KINDS",
    "build",
    "build_norm",
    "hypocentre",
    "norm_station",
    "observed_stream",
    "preprocess_station",
]

#: Folders of the preprocess stage: the record, and the two comparison copies.
KINDS = ("record", "observed", "synthetic")


def observed_stream(download_dir: Path, station: str) -> Stream:
    """Every downloaded trace of one station."""
    stream = Stream()
    check_station_id(station)
    files = sorted((download_dir / "waveforms").glob(f"{station}.*.mseed"))
    if not files:
        raise StationError(station, "no waveform file was downloaded")
    for path in files:
        try:
            stream += read(str(path), format="MSEED")
        except Exception as error:
            raise StationError(station, f"cannot read {path.name}: {error}") from error
    return stream


def hypocentre(event: Event, config: RAConfig) -> Hypocentre:
    """Origin time and place, and moment magnitude, of the event (for the record windows)."""
    origin = event.preferred_origin() or event.origins[0]
    magnitude = config.source.magnitude
    if magnitude is None:
        magnitude = event_info(event)["magnitude"]
    if magnitude is None:
        raise RAError("the event has no magnitude: give [source] magnitude")
    return Hypocentre(origin.time, float(origin.latitude), float(origin.longitude),
                      float(origin.depth or 0.0) / 1000.0, float(magnitude))


def _flag_records(station: str, traces: Stream, flags: Sequence[Mapping[str, str]],
                  rejected: Mapping[str, str]) -> list[dict[str, str]]:
    """The stage summary's flags: the record's channel flags and rejected channels."""
    records = [{"station": station, "trace": f["trace"], "name": f["flag"],
                "flag": f"{f['flag']}: {f['detail']}"} for f in flags]
    records += [{"station": station, "trace": trace, "name": "rejected_channel",
                 "flag": f"rejected channel: {reason}"} for trace, reason in rejected.items()]
    return records


def preprocess_station(
    station: str, *, download_dir: Path, simulate_dir: Path, out_dir: Path,
    hypo: Hypocentre, band: tuple[float, float], config: RAConfig,
) -> dict[str, Any]:
    """The station's record (``record/``) and its comparison copies with the synthetics.

    ``record/NET.STA.Q.mseed``: the observed channels processed at their own rate (what
    gmprocess would report); ``observed/`` and ``synthetic/``: both in the common band on the
    comparison grid.
    """
    inventory = station_inventory(download_dir, station)
    record = process_record(observed_stream(download_dir, station), inventory, hypo,
                            config.preprocess)
    observed, synthetic = comparison_copies(record, _synthetic(simulate_dir, station),
                                            inventory, hypo.time, band, config.preprocess)
    for quantity in QUANTITIES:
        suffix = f".{quantity}.mseed"
        write_stream(station_path(out_dir / "record", station, suffix),
                     record.streams[quantity])
        write_stream(station_path(out_dir / "observed", station, suffix), observed[quantity])
        write_stream(station_path(out_dir / "synthetic", station, suffix),
                     synthetic[quantity])
    return {"station": station,
            "flags": _flag_records(station, record.streams["ACC"], record.flags,
                                   record.rejected)}


def _synthetic(simulate_dir: Path, station: str) -> Stream:
    path = station_path(simulate_dir, station, ".mseed")
    try:
        return read_stream(path)
    except Exception as error:
        raise StationError(station, f"no synthetic seismograms ({path.name}): {error}") from error


def norm_station(station: str, *, preprocess_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Vector norms (two horizontals, three components) of each kind, per quantity.

    A station with fewer components has fewer norms (none with one component): no file.
    """
    for kind in KINDS:
        for quantity in QUANTITIES:
            stream = read_station_stream(preprocess_dir / kind, station, quantity)
            norms = station_norms(stream)
            if norms:
                write_stream(station_path(out_dir / kind, station, f".{quantity}.mseed"), norms)
    return {"station": station}


def build(context: StageContext, *, config: RAConfig) -> StageWork:
    """Preprocess every station the simulate stage wrote synthetics for."""
    download_dir = context.stage_dir("download")
    simulate_dir = context.stage_dir("simulate")
    step = functools.partial(preprocess_station, download_dir=download_dir,
                             simulate_dir=simulate_dir, out_dir=context.out_dir,
                             hypo=hypocentre(read_event(download_dir), config),
                             band=synthetic_band(simulate_dir), config=config)
    graph, inputs = per_station("preprocess", step,
                                stations_in(context.stage_dir("simulate"), ".mseed"))
    return StageWork(graph, inputs, step_summary)


def build_norm(context: StageContext) -> StageWork:
    """Norms of every station the preprocess stage kept a record of."""
    preprocess_dir = context.stage_dir("preprocess")
    step = functools.partial(norm_station, preprocess_dir=preprocess_dir,
                             out_dir=context.out_dir)
    stations = stations_in(preprocess_dir / "record", ".ACC.mseed")
    graph, inputs = per_station("norm", step, stations)
    return StageWork(graph, inputs, step_summary)
