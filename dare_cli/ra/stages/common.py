"""What the Rapid Assessment's stages share: the run folder's files, and stage summaries.

Streams are written as float64 miniSEED with a JSON sidecar (what miniSEED cannot hold), so
that provenance and coverage survive from one stage to the next.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from obspy import Inventory, Stream, read, read_events, read_inventory
from obspy.core.event import Event
from obspy.geodetics import gps2dist_azimuth

from dare_cli import __version__
from dare_cli.ra.errors import RAError, StationError
from dare_cli.ra.names import station_path
from dare_cli.ra.pes import StationStep
from engine import WorkflowGraph
from engine.files import atomic_path, write_atomic

__all__ = [
    "SIDECAR_KEYS",
    "SYNTHETICS_FILE",
    "event_info",
    "per_station",
    "read_event",
    "read_inventories",
    "read_station_stream",
    "read_stream",
    "stage_params",
    "station_info",
    "station_inventory",
    "stations_in",
    "step_summary",
    "synthetic_band",
    "write_json",
    "write_stream",
]

#: Trace header entries miniSEED cannot hold, kept in a JSON file beside it.
SIDECAR_KEYS = ("processing", "coverage", "dare")


def write_stream(path: Path, stream: Stream) -> None:
    """Write a Stream as miniSEED (float64, exact) atomically.

    What miniSEED cannot hold (``stats.processing``, ``stats.coverage``) goes to
    ``<path>.json`` beside it, so that provenance and coverage survive between stages.
    """
    for trace in stream:
        trace.data = np.require(trace.data, dtype=np.float64)
    sidecar = {
        trace.id: {key: _plain(trace.stats[key]) for key in SIDECAR_KEYS if key in trace.stats}
        for trace in stream
    }
    with atomic_path(path) as temporary:
        stream.write(str(temporary), format="MSEED", encoding="FLOAT64")
        write_json(path.with_name(path.name + ".json"), sidecar)


def _plain(value: Any) -> Any:
    """Plain dicts for obspy's AttribDicts (``stats.dare``), for JSON."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def read_stream(path: Path) -> Stream:
    """Read a Stream written by :func:`write_stream`, with its sidecar entries."""
    stream = read(str(path), format="MSEED")  # named: no probing of every format plugin
    sidecar = path.with_name(path.name + ".json")
    if sidecar.exists():
        extra = json.loads(sidecar.read_text())
        for trace in stream:
            for key, value in extra.get(trace.id, {}).items():
                trace.stats[key] = value
    return stream


def write_json(path: Path, data: Any) -> None:
    """Write JSON (sorted keys, stable) atomically."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_event(download_dir: Path) -> Event:
    """The event of the run, from the download stage's QuakeML."""
    path = download_dir / "event.xml"
    try:
        return read_events(str(path), format="QUAKEML")[0]
    except Exception as error:
        raise RAError(f"cannot read the event from {path}: {error}") from error


def event_info(event: Event) -> dict[str, Any]:
    """Id, origin time and place, magnitude of an event, for outputs and plots."""
    origin = event.preferred_origin() or event.origins[0]
    magnitude = event.preferred_magnitude() or (event.magnitudes[0] if event.magnitudes else None)
    return {
        "id": str(event.resource_id).split("/")[-1].split("=")[-1],
        "time": str(origin.time),
        "latitude": float(origin.latitude),
        "longitude": float(origin.longitude),
        "depth_km": float(origin.depth or 0.0) / 1000.0,
        "magnitude": float(magnitude.mag) if magnitude is not None else None,
    }


def station_inventory(download_dir: Path, station: str) -> Inventory:
    """StationXML of one station from the download stage."""
    path = station_path(download_dir / "stations", station, ".xml")
    try:
        return read_inventory(str(path), format="STATIONXML")
    except Exception as error:
        raise StationError(station, f"cannot read StationXML {path.name}: {error}") from error


def read_inventories(download_dir: Path) -> Inventory:
    """Every station's StationXML of the download stage, as one Inventory."""
    inventory = Inventory(networks=[], source="dare")
    for station in stations_in(download_dir / "stations"):
        inventory.extend(station_inventory(download_dir, station).networks)
    return inventory


def station_info(inventory: Inventory, event: dict[str, Any]) -> dict[str, Any]:
    """Code, name, coordinates and epicentral distance of a station."""
    network = inventory.networks[0]
    station = network.stations[0]
    distance, azimuth, _ = gps2dist_azimuth(event["latitude"], event["longitude"],
                                            station.latitude, station.longitude)
    return {
        "station": f"{network.code}.{station.code}",
        "network": network.code,
        "code": station.code,
        "name": (station.site.name if station.site and station.site.name else station.code),
        "latitude": float(station.latitude),
        "longitude": float(station.longitude),
        "elevation": float(station.elevation or 0.0),
        "distance_km": round(distance / 1000.0, 3),
        "azimuth": round(azimuth, 2),
    }


def read_station_stream(folder: Path, station: str, quantity: str) -> Stream:
    """The traces of one station and quantity written by an earlier stage."""
    path = station_path(folder, station, f".{quantity}.mseed")
    try:
        return read_stream(path)
    except Exception as error:
        raise StationError(station, f"cannot read {path}: {error}") from error


def stations_in(folder: Path, suffix: str = ".xml") -> list[str]:
    """``NET.STA`` codes of the files ``NET.STA<suffix>`` in a folder, sorted."""
    return sorted(p.name[: -len(suffix)] for p in folder.glob(f"*{suffix}"))


#: What the simulate stage writes about its synthetics (solver, resolved band).
SYNTHETICS_FILE = "synthetics.json"


def synthetic_band(simulate_dir: Path) -> tuple[float, float]:
    """``(fmin, fmax)`` (Hz) that the synthetics resolve, as the simulate stage recorded it."""
    try:
        band = json.loads((simulate_dir / SYNTHETICS_FILE).read_text())["band_hz"]
    except (OSError, ValueError, KeyError) as error:
        raise RAError(f"the simulate stage did not record the band of its synthetics "
                      f"({simulate_dir / SYNTHETICS_FILE}): {error}; re-run it") from error
    return float(band[0]), math.inf if band[1] is None else float(band[1])


# -- stage plumbing ------------------------------------------------------------------------------
def per_station(stage: str, step: Any, stations: Sequence[Any]) -> tuple[WorkflowGraph, Any]:
    """A graph of one :class:`~dare_cli.ra.pes.StationStep` (id ``step``) and its inputs."""
    graph = WorkflowGraph(f"ra-{stage}")
    graph.add(StationStep(stage, step, id="step"))
    return graph, {"step": list(stations)}


def step_summary(result: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A per-station stage's summary: stations processed, rejected (why) and flagged."""
    records = result.output("step", "output") if result is not None else []
    rejected = result.output("step", "rejected") if result is not None else []
    summary = {
        "processed": sorted(r["station"] for r in records),
        "rejected": sorted(rejected, key=lambda r: r["station"]),
        "flags": sorted((f for r in records for f in r.get("flags", [])),
                        key=lambda f: (f["station"], f["flag"])),
    }
    summary.update(extra or {})
    return summary


def stage_params(*objects: Any) -> dict[str, Any]:
    """Fingerprinted parameters of a stage: its settings, and the version of the code."""
    params: dict[str, Any] = {"dare": __version__}
    params.update({f"p{i}": dataclasses.asdict(o)
                   if dataclasses.is_dataclass(o) and not isinstance(o, type) else o
                   for i, o in enumerate(objects)})
    return params
