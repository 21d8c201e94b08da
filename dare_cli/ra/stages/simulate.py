"""The simulate stage: synthetic displacement at every station.

The embedded analytical solver runs per station as PEs (:func:`simulate_station`); SPECFEM3D
runs once for all stations (:mod:`dare_cli.ra.stages.specfem`). Either way the stage writes
``NET.STA.mseed`` per station and
:data:`~dare_cli.ra.stages.common.SYNTHETICS_FILE`, the band its synthetics resolve.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from obspy.core.event import Event

from dare_cli.ra.config import RAConfig
from dare_cli.ra.errors import RAError
from dare_cli.ra.names import station_path
from dare_cli.ra.simulate.embedded import synthetics_for_station
from dare_cli.ra.source import double_couple_tensor, moment_from_magnitude, tensor_from_event
from dare_cli.ra.stages.common import (
    SYNTHETICS_FILE,
    event_info,
    per_station,
    read_event,
    station_inventory,
    stations_in,
    step_summary,
    write_json,
    write_stream,
)
from dare_cli.ra.stages.specfem import simulate_specfem
from engine.pipeline import StageContext, StageWork

__all__ = ["build", "moment_tensor", "simulate_station"]


def moment_tensor(event: Event, config: RAConfig) -> np.ndarray:
    """The source's moment tensor: the event's own, or the configured double couple."""
    source = config.source
    if source.use_event_tensor:
        tensor = tensor_from_event(event)
        if tensor is not None:
            return tensor
    if source.strike is None or source.dip is None or source.rake is None:
        raise RAError("the event has no moment tensor: give strike, dip and rake in [source]")
    magnitude = source.magnitude
    if magnitude is None:
        info = event_info(event)
        if info["magnitude"] is None:
            raise RAError("the event has no magnitude: give [source] magnitude")
        magnitude = info["magnitude"]
    return double_couple_tensor(source.strike, source.dip, source.rake,
                                moment_from_magnitude(magnitude))


def simulate_station(
    station: str, *, download_dir: Path, out_dir: Path, origin: Any, tensor: np.ndarray,
    config: RAConfig,
) -> dict[str, Any]:
    """Synthetic displacement at one station, written to ``out_dir/NET.STA.mseed``."""
    inventory = station_inventory(download_dir, station)
    network = inventory.networks[0]
    site = network.stations[0]
    if site.channels:  # channel coordinates carry the sensor's local depth
        channel = site.channels[0]
        coordinates = inventory.get_coordinates(
            f"{network.code}.{site.code}.{channel.location_code}.{channel.code}",
            channel.start_date)
    else:
        coordinates = {"latitude": site.latitude, "longitude": site.longitude,
                       "elevation": site.elevation or 0.0}
    stream = synthetics_for_station(origin, tensor, coordinates, network.code, site.code,
                                    config.simulate)
    write_stream(station_path(out_dir, station, ".mseed"), stream)
    return {"station": station}


def build(context: StageContext, *, config: RAConfig,
          log: Callable[[str], None] | None = None) -> StageWork:
    """SPECFEM3D once in the calling process, or the embedded solver per station."""
    download_dir = context.stage_dir("download")
    if config.solver == "specfem":
        return StageWork(None, finish=lambda result: simulate_specfem(
            download_dir, context.out_dir, config, log=log))
    event = read_event(download_dir)
    origin = event.preferred_origin() or event.origins[0]
    step = functools.partial(simulate_station, download_dir=download_dir,
                             out_dir=context.out_dir, origin=origin,
                             tensor=moment_tensor(event, config), config=config)
    graph, inputs = per_station("simulate", step, stations_in(download_dir / "stations"))

    def finish(result: Any) -> dict[str, Any]:
        # the analytical solution holds at every frequency; the sampling bounds it
        band = [0.0, 0.4 * config.simulate.sampling_rate]
        write_json(context.out_dir / SYNTHETICS_FILE,
                   {"solver": "embedded", "band_hz": band, "quantity": "DISP"})
        return step_summary(result, {"band_hz": band})

    return StageWork(graph, inputs, finish)
