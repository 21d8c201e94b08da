"""The Rapid Assessment as an engine pipeline: one stage per step, each on its own mapping.

Stages and the folders they write under the run directory::

    download    event.xml, stations/NET.STA.xml, waveforms/*.mseed, manifest.json
    simulate    NET.STA.mseed          synthetic displacement (m), channels HX? (embedded) or
                                       SPECFEM3D's own (?X?); specfem/ the SPECFEM3D run's
                                       DATA/ and logs when [simulate] solver = "specfem"
    preprocess  observed/NET.STA.Q.mseed, synthetic/NET.STA.Q.mseed   Q = ACC, VEL, DISP
    norm        observed/NET.STA.Q.mseed, synthetic/NET.STA.Q.mseed   vector norms
    match       pairs.json             observed/synthetic pairs per station, unmatched traces
    pgm         pgm.json, pgm.csv      peak motions of both, misfits log10(syn/obs)
    geojson     stationlist.json       ShakeMap-style FeatureCollection
    plot        pga_map.png, misfit_map.png, waveforms/NET.STA.png

Per-station steps run as PEs (:mod:`dare_cli.ra.pes`), so each stage scales with the mapping
chosen for it; files are written under temporary names and renamed, and stage folders are
renamed into place only when the stage succeeds.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import obspy.signal.invsim  # noqa: F401  (2 s to import: once here, not in every worker)
from obspy import Inventory, Stream, UTCDateTime, read, read_events, read_inventory
from obspy.core.event import Event
from obspy.geodetics import gps2dist_azimuth

from dare_cli import __version__
from dare_cli.ra import gmpe, outputs, plots
from dare_cli.ra import report as html_report
from dare_cli.ra.config import RAConfig
from dare_cli.ra.download import download, preflight_event
from dare_cli.ra.errors import ConfigError, RAError, StationError
from dare_cli.ra.names import check_station_id, station_path
from dare_cli.ra.norm import NORM_CODES, station_norms
from dare_cli.ra.pes import MatchStations, StationStep
from dare_cli.ra.pgm import misfit, psa_key, station_pgm
from dare_cli.ra.preprocess import QUANTITIES, Hypocentre, comparison_copies, process_record
from dare_cli.ra.runfolder import (
    RA_DELIVERABLES,
    RA_FILES,
    RA_FOLDERS,
    check_run_folder,
    prepare_run_folder,
    publish_outputs,
    record_files,
)
from dare_cli.ra.simulate.embedded import synthetics_for_station
from dare_cli.ra.source import double_couple_tensor, moment_from_magnitude, tensor_from_event
from engine import WorkflowGraph
from engine.files import atomic_path, write_atomic
from engine.pipeline import Pipeline, Stage, StageContext, StageWork
from engine.testing import Collect

__all__ = ["METRICS", "build_pipeline", "event_info", "run_assessment"]

METRICS = ("pga", "pgv", "pgd")


# -- small shared helpers ----------------------------------------------------------------------
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


def _summary(result: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
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


def _per_station(stage: str, step: Any, stations: Sequence[Any]) -> tuple[WorkflowGraph, Any]:
    graph = WorkflowGraph(f"ra-{stage}")
    graph.add(StationStep(stage, step, id="step"))
    return graph, {"step": list(stations)}


# -- stage steps (module-level functions, so worker processes can run them) --------------------
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


def read_inventories(download_dir: Path) -> Inventory:
    """Every station's StationXML of the download stage, as one Inventory."""
    inventory = Inventory(networks=[], source="dare")
    for station in stations_in(download_dir / "stations"):
        inventory.extend(station_inventory(download_dir, station).networks)
    return inventory


#: Why the ``kubernetes`` backend cannot run from dare, and what to do instead.
KUBERNETES_RUNS_NOTHING = (
    "[simulate.specfem] backend 'kubernetes' runs nothing from dare (it reaches no cluster): "
    "write the run's manifests with 'dare ra simulate --solver specfem --backend kubernetes "
    "--emit-manifests DIR', apply them with kubectl (DIR/README.md), then collect the "
    "seismograms with 'dare ra simulate --collect DIR/specfem/OUTPUT_FILES'")


def specfem_backend(config: RAConfig) -> Any:
    """The SPECFEM3D backend configured in ``[simulate.specfem]``."""
    from dare_cli.ra.simulate.specfem.backends import DockerBackend, LocalBackend

    specfem = config.specfem
    if specfem.backend == "docker":
        return DockerBackend(specfem)
    if specfem.backend == "kubernetes":
        raise ConfigError(KUBERNETES_RUNS_NOTHING)
    if not specfem.bin_dir:
        raise RAError("[simulate.specfem] bin_dir (or --specfem-bin DIR) is needed by the local "
                      "backend: the folder of xmeshfem3D, xgenerate_databases and xspecfem3D")
    return LocalBackend(specfem.bin_dir, launcher=specfem.launcher,
                        launcher_args=specfem.launcher_args)


def plan_specfem(config: RAConfig) -> Any | None:
    """The SPECFEM3D run the simulate stage would make, prepared in a temporary folder.

    For ``--dry-run``: the mesh, the set-up checks and the run-time estimate, from the
    download stage's event and stations in ``config.out`` (None if it has not run), or from
    ``[simulate.specfem] data_dir``. Nothing in the run folder is written.

    Raises
    ------
    ConfigError
        A check failed (the message lists each).
    """
    import tempfile

    from dare_cli.ra.simulate.specfem.backends import prepare_data_dir

    with tempfile.TemporaryDirectory(prefix="dare-plan-") as folder:
        work = Path(folder) / "specfem"
        if config.specfem.data_dir:
            return prepare_data_dir(work, config.specfem.data_dir, config.specfem)
        download_dir = Path(config.out) / "download"
        if not (download_dir / "event.xml").is_file():
            return None
        return prepare_specfem(download_dir, work, config)


def prepare_specfem(download_dir: Path, work_dir: Path, config: RAConfig) -> Any:
    """Write and check the inputs of the run's SPECFEM3D simulation in ``work_dir``."""
    from dare_cli.ra.simulate.specfem.backends import prepare_run, source_solution

    event = read_event(download_dir)
    source = config.source
    cmt = source_solution(event, strike=source.strike, dip=source.dip, rake=source.rake,
                          magnitude=source.magnitude, use_event_tensor=source.use_event_tensor)
    return prepare_run(work_dir, cmt=cmt, inventory=read_inventories(download_dir),
                       config=config.specfem, duration=config.simulate.duration)


def simulate_specfem(
    download_dir: Path, out_dir: Path, config: RAConfig, *,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One SPECFEM3D run for every station; per-station miniSEED like the embedded solver's.

    Three ways: dare writes the inputs from the downloaded event and stations (the default);
    ``[simulate.specfem] data_dir`` runs a hand-made ``DATA`` folder as it is (its source and
    receivers; the download stage is not needed); ``collect_from`` only collects the
    seismograms of a run made elsewhere. The run's folder is ``out_dir/specfem`` (inside the
    stage's temporary folder, so a failed run leaves nothing behind); after success it keeps
    ``DATA/`` and SPECFEM's logs and seismograms, and drops ``OUTPUT_FILES/DATABASES_MPI``
    unless ``keep_databases``.
    """
    from dare_cli.ra.simulate.specfem.backends import (
        collect_seismograms,
        prepare_data_dir,
        provenance,
    )
    from dare_cli.ra.simulate.specfem.cmtsolution import read_cmtsolution, simulation_origin_time

    log = log or (lambda line: None)
    specfem = config.specfem
    work_dir = out_dir / "specfem"
    rejected: list[dict[str, Any]] = []
    run = None
    if specfem.collect_from:
        stations = stations_in(download_dir / "stations")
        event = read_event(download_dir)
        origin_time = (event.preferred_origin() or event.origins[0]).time
        output_dir = Path(specfem.collect_from)
        if not output_dir.is_dir():
            raise RAError(f"[simulate.specfem] collect_from: no folder {output_dir}")
        notes = [f"dare {__version__}: SPECFEM3D Cartesian synthetics collected from "
                 f"{output_dir}, displacement in m"]
        backend_name = "collected"
        if (output_dir.parent / "DATA" / "CMTSOLUTION").is_file():
            origin_time = simulation_origin_time(
                read_cmtsolution(output_dir.parent / "DATA" / "CMTSOLUTION"))
    else:
        if specfem.data_dir:
            run = prepare_data_dir(work_dir, specfem.data_dir, specfem)
            for line, where in run.outside:
                rejected.append({"station": f"{line.network}.{line.station}",
                                 "stage": "simulate", "category": "quality",
                                 "reason": f"outside the SPECFEM3D mesh ({where})"})
            outside = {(line.network, line.station) for line, _ in run.outside}
            stations = [f"{line.network}.{line.station}" for line in run.stations
                        if (line.network, line.station) not in outside]
            for note in run.notes:
                log(f"SPECFEM3D: {note}")
        else:
            stations = stations_in(download_dir / "stations")
            run = prepare_specfem(download_dir, work_dir, config)
            for note in run.notes:
                log(f"SPECFEM3D mesh: {note}")
        backend = specfem_backend(config)
        mesh = (f"mesh NEX {run.mesh.nex_xi}x{run.mesh.nex_eta}" if run.mesh is not None
                else "hand-made mesh")
        log(f"SPECFEM3D: {len(stations)} stations, NPROC {run.nproc}, NSTEP "
            f"{run.par_values['NSTEP']}, DT {run.par_values['DT']} s, {mesh} "
            f"({backend.name} backend)")
        for text in specfem_check_lines(run):
            log(text)
        backend.run(run.work_dir, run.nproc, log)
        output_dir = run.output_dir
        notes = provenance(run, backend.name)
        backend_name = backend.name
        # SPECFEM's time axis starts at the CMTSOLUTION's origin plus its (smallest) shift.
        origin_time = simulation_origin_time(run.cmt)
    streams, missing = collect_seismograms(output_dir, origin_time, stations, processing=notes)
    for station, stream in streams.items():
        write_stream(station_path(out_dir, station, ".mseed"), stream)
    # the period SPECFEM itself printed for its mesh, else dare's estimate of it
    min_period = _resolved_period(output_dir)
    if min_period is None and run is not None and run.resolution is not None:
        min_period = run.resolution.min_period
    band = [0.0, 1.0 / min_period if min_period else None]
    write_json(out_dir / SYNTHETICS_FILE, {"solver": "specfem", "band_hz": band,
                                           "quantity": "DISP"})
    if not specfem.keep_databases:
        shutil.rmtree(work_dir / "OUTPUT_FILES" / "DATABASES_MPI", ignore_errors=True)
    return {
        "processed": sorted(streams),
        "rejected": rejected + [{"station": s, "stage": "simulate",
                                 "reason": f"SPECFEM3D wrote no seismogram for {s}"}
                                for s in missing],
        "flags": [],
        "solver": "specfem",
        "backend": backend_name,
        "band_hz": band,
        "checks": [finding.as_dict() for finding in run.findings] if run is not None else [],
        "estimate": run.estimate.as_dict() if run is not None and run.estimate else None,
    }


def specfem_check_lines(run: Any) -> list[str]:
    """Log lines of a prepared SPECFEM3D run's set-up checks and its cost estimate."""
    lines = [f"SPECFEM3D warning ({finding.check}): {finding.message}"
             if finding.level == "warning" else
             f"SPECFEM3D check {finding.check}: {finding.level}: {finding.message}"
             for finding in run.findings]
    if run.estimate is not None:
        lines.append(f"SPECFEM3D estimate: {run.estimate.describe()}")
    return lines


def _resolved_period(output_dir: Path) -> float | None:
    """The shortest period a SPECFEM3D mesh resolves, from xgenerate_databases' log."""
    log = output_dir / "output_generate_databases.txt"
    try:
        found = re.search(r"Minimum period resolved\s*=\s*([0-9.eE+-]+)", log.read_text())
    except OSError:
        return None
    return float(found.group(1)) if found else None


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


#: Folders of the preprocess stage: the record, and the two comparison copies.
KINDS = ("record", "observed", "synthetic")


def _psa_outside_band(periods: Sequence[float], freqmin: float | None,
                      freqmax: float | None) -> set[str]:
    """PSA keys whose oscillator frequency lies outside the band observed and synthetic share.

    Above the band's high corner the oscillator rides on the filtered ground motion (its PSA
    tends to the band-limited PGA, already compared); below 1.25 times the low corner (the
    usable-period rule of gmprocess and the NGA-West2 processing) the filter removed what it
    would respond to. Such PSA values stay in the rows; they are not compared as misfits. A
    simulation resolving periods >= 2.6 s (a 4 km SPECFEM3D mesh) thus compares PSA(3 s) but not
    PSA(0.3 s) or PSA(1 s).
    """
    outside = set()
    for period in periods:
        frequency = 1.0 / float(period)
        if ((freqmax is not None and frequency > float(freqmax))
                or (freqmin is not None and frequency < 1.25 * float(freqmin))):
            outside.add(psa_key(period))
    return outside


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


def station_streams(run_dir: Path, kind: str, station: str, quantity: str) -> Stream:
    """Components and norms (where the station has them) of one station, kind and quantity."""
    stream = read_station_stream(run_dir / "preprocess" / kind, station, quantity)
    if station_path(run_dir / "norm" / kind, station, f".{quantity}.mseed").exists():
        stream += read_station_stream(run_dir / "norm" / kind, station, quantity)
    return stream


def load_for_match(station: str, *, run_dir: Path, kind: str) -> tuple[str, Stream]:
    """``(station, acceleration traces and norms)`` of one kind, for the match stage."""
    return station, station_streams(run_dir, kind, station, "ACC")


#: Rows of the pgm stage: (kind, band, folder of the preprocess stage).
PGM_SOURCES = (("observed", "record", "record"), ("observed", "common", "observed"),
               ("synthetic", "common", "synthetic"))


def _row_details(stream: Stream, component: str, periods: Sequence[float]
                 ) -> dict[str, Any]:
    """Band, flags and unusable metrics of a pgm row, from its traces' ``stats.dare``."""
    components = [tr for tr in stream if tr.stats.channel[-1:] not in NORM_CODES]
    if component in ("maxh", "rotd50", "H"):
        used = [tr for tr in components if tr.stats.channel[-1:] != "Z"]
    elif component == "3":
        used = components
    else:
        used = [tr for tr in components if tr.stats.channel[-1:] == component]
    infos = [tr.stats.get("dare", {}) for tr in used]
    if not infos or not all("highpass" in info for info in infos):
        return {"flags": []}
    highpass = max(float(info["highpass"]) for info in infos)
    lowpass = min(float(info["lowpass"]) for info in infos)
    flags = sorted({flag for info in infos for flag in info.get("flags", [])})
    longest = 1.0 / (1.25 * highpass)
    unusable = [psa_key(period) for period in periods
                if period > longest or period < 1.0 / lowpass]
    if unusable:
        flags = sorted({*flags, "snr_limited"})
    return {"freqmin": highpass, "freqmax": lowpass, "flags": flags, "unusable": unusable}


def pgm_station(
    station: str, *, run_dir: Path, pairs: Mapping[str, Any],
    infos: Mapping[str, Mapping[str, Any]], config: RAConfig,
) -> dict[str, Any]:
    """Peak motions of the record, and of the matched copies with their misfits."""
    info = infos[station]
    matched = pairs[station]
    components = {pair["component"] for pair in matched["pairs"]}
    if not components:
        raise StationError(station, "no observed trace matched a synthetic")
    periods = config.pgm.periods
    rows: list[dict[str, Any]] = []
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, band, folder in PGM_SOURCES:
        streams = [read_station_stream(run_dir / "preprocess" / folder, station, q)
                   for q in QUANTITIES]
        acc, vel, disp = streams
        values = station_pgm(acc, vel, disp, periods=periods, damping=config.pgm.damping)
        horizontals = {c for c in components if c not in ("Z", *NORM_CODES)}
        for value in values:
            component = str(value["component"])
            if band == "common" and component not in components and not (
                component in ("maxh", "rotd50") and horizontals
            ):
                continue
            channel = component if component in ("maxh", "rotd50") else value["channel"]
            row = {**info, "kind": kind, "band": band, "channel": channel,
                   "component": component, "location": value.get("location", "")}
            row.update({k: v for k, v in value.items()
                        if k not in ("id", "component", "channel", "location")})
            row.update(_row_details(streams[0], component, periods))
            rows.append(row)
            if band == "common":
                by_kind.setdefault(kind, {})[component] = row
    misfits = []
    metrics = [*METRICS, *(psa_key(p) for p in periods)]
    for component, observed in sorted(by_kind.get("observed", {}).items()):
        synthetic = by_kind.get("synthetic", {}).get(component)
        if synthetic is None:
            continue
        outside = _psa_outside_band(periods, observed.get("freqmin"), observed.get("freqmax"))
        for metric in metrics:
            if metric in outside:
                continue  # an oscillator tuned outside the compared band: not a comparison
            if metric in observed and metric in synthetic:
                misfits.append({"station": station, "channel": observed["channel"],
                                "component": component, "band": "common", "metric": metric,
                                "band_hz": [observed.get("freqmin"), observed.get("freqmax")],
                                "misfit": misfit(synthetic[metric], observed[metric])})
    return {"station": station, "rows": rows, "misfits": misfits}


def gmpe_earthquake(event: Event, config: RAConfig) -> gmpe.Earthquake:
    """The event for the ground-motion model: Mw, hypocentre, and rake and dip if known.

    The rake and dip are those of ``[source]`` when given, else of the event's preferred
    focal mechanism (its first nodal plane).
    """
    hypo = hypocentre(event, config)
    rake, dip = config.source.rake, config.source.dip
    if rake is None:
        mechanism = event.preferred_focal_mechanism() or (
            event.focal_mechanisms[0] if event.focal_mechanisms else None)
        planes = getattr(mechanism, "nodal_planes", None)
        plane = getattr(planes, "nodal_plane_1", None)
        if plane is not None and plane.rake is not None and plane.dip is not None:
            rake, dip = float(plane.rake), float(plane.dip)
    if dip is not None and not 0 < dip <= 90:  # a horizontal plane: no dip for the model
        dip = None
    return gmpe.Earthquake(hypo.magnitude, hypo.latitude, hypo.longitude,
                           max(hypo.depth_km, 0.0), rake, dip)


def gmpe_rows(predictions: Sequence[gmpe.Prediction],
              infos: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The predicted medians as pgm rows (kind ``gmpe``), with their sigmas."""
    rows = []
    for prediction in predictions:
        motions = {k: m for k, m in prediction.motions.items() if m is not None}
        rows.append({
            **infos[prediction.station], "kind": "gmpe", "band": "record",
            "channel": "rotd50", "component": "rotd50", "location": "",
            **{key: motion.median for key, motion in motions.items()},
            "sigma_log10": {key: motion.sigma_log10 for key, motion in motions.items()},
            "gmpe": {"model": prediction.model, "library": prediction.library,
                     "component": prediction.component, "vs30": prediction.vs30,
                     "mechanism": prediction.mechanism,
                     "rjb_km": round(prediction.distances.rjb, 3),
                     "rrup_km": round(prediction.distances.rrup, 3),
                     "outside_range": list(prediction.outside_range),
                     "notes": list(prediction.notes)},
        })
    return rows


def gmpe_residuals(rows: Sequence[Mapping[str, Any]],
                   predictions: Sequence[gmpe.Prediction]) -> list[dict[str, Any]]:
    """Observed (record band) and synthetic RotD50 against the predicted medians."""
    by_station = {p.station: p for p in predictions}
    out = []
    for row in rows:
        prediction = by_station.get(row["station"])
        if prediction is None or row["component"] != "rotd50" or row["kind"] == "gmpe":
            continue
        if (row["kind"], row["band"]) not in (("observed", "record"), ("synthetic", "common")):
            continue
        for metric, motion in prediction.motions.items():
            value = row.get(metric)
            if motion is None or value is None or not value > 0:
                continue
            result = gmpe.residual(float(value), motion)
            out.append({"station": row["station"], "kind": row["kind"], "band": row["band"],
                        "metric": metric, "log10": result.log10,
                        "normalized": result.normalized, "model": prediction.model})
    return out


def plot_task(
    task: tuple[str, str], *, run_dir: Path, out_dir: Path, config: RAConfig,
) -> dict[str, Any]:
    """Draw one figure of the plot stage.

    ``("map", "pga")``, ``("map", "misfit")``, ``("map", "residuals")`` (the GMPE residuals
    versus distance) or ``("waveforms", "NET.STA")``.
    """
    kind, name = task
    pgm = json.loads((run_dir / "pgm" / "pgm.json").read_text())
    event = pgm["event"]
    if kind == "map" and name == "pga":
        path = plots.plot_pga_map(out_dir / "pga_map.png", event, pgm["rows"])
    elif kind == "map" and name == "misfit":
        path = plots.plot_misfit_map(out_dir / "misfit_map.png", event, pgm["misfits"],
                                     rows=pgm["rows"])
    elif kind == "map" and name == "residuals":
        path = plots.plot_residuals(out_dir / "residuals.png", event,
                                    pgm.get("residuals", []), pgm["rows"])
    else:
        quantity = config.plot.quantity
        row: dict[str, Any] = next((r for r in pgm["rows"] if r["station"] == name), {})
        path = plots.plot_waveforms(
            station_path(out_dir / "waveforms", name, ".png"), name,
            read_station_stream(run_dir / "preprocess" / "observed", name, quantity),
            read_station_stream(run_dir / "preprocess" / "synthetic", name, quantity),
            quantity=quantity, origin_time=UTCDateTime(event["time"]),
            distance_km=row.get("distance_km"), azimuth=row.get("azimuth"),
            name=row.get("name"),
        )
    return {"station": name, "file": str(Path(path).relative_to(out_dir))}


# -- stage builders ----------------------------------------------------------------------------
def _params(*objects: Any) -> dict[str, Any]:
    """Fingerprinted parameters of a stage: its settings, and the version of the code."""
    params: dict[str, Any] = {"dare": __version__}
    params.update({f"p{i}": dataclasses.asdict(o)
                   if dataclasses.is_dataclass(o) and not isinstance(o, type) else o
                   for i, o in enumerate(objects)})
    return params


def build_pipeline(config: RAConfig, *, log: Callable[[str], None] | None = None) -> Pipeline:
    """The eight stages of a Rapid Assessment configured by ``config``.

    ``log`` receives the lines of external programs (SPECFEM3D's logs), for the progress
    display.
    """

    def build_download(context: StageContext) -> StageWork:
        def finish(result: Any) -> dict[str, Any]:
            outcome = download(config.download, context.out_dir)
            manifest = outcome.manifest
            failed = manifest.get("failed", [])
            return {
                "processed": stations_in(context.out_dir / "stations"),
                "rejected": [
                    {"station": f["station"], "stage": "download",
                     "reason": f"{f['reason']}: {f.get('detail', '')}".rstrip(": ")}
                    for f in failed if f["reason"] != "outside_radius"
                ],
                "excluded": [f["station"] for f in failed if f["reason"] == "outside_radius"],
                "flags": [{"station": f["station"],
                           "flag": f"{f.get('channel', '')} {f.get('flag', '')}: "
                                   f"{f.get('detail', '')}".strip(": ")}
                          for f in manifest.get("flags", [])],
                # trace ids kept with an InstrumentSensitivity only (divide, do not deconvolve)
                "sensitivity_only": sorted(f["channel"] for f in manifest.get("flags", [])
                                           if f.get("flag") == "sensitivity_only"),
            }

        return StageWork(None, finish=finish)

    def build_simulate(context: StageContext) -> StageWork:
        download_dir = context.stage_dir("download")
        if config.solver == "specfem":
            return StageWork(None, finish=lambda result: simulate_specfem(
                download_dir, context.out_dir, config, log=log))
        event = read_event(download_dir)
        origin = event.preferred_origin() or event.origins[0]
        step = functools.partial(simulate_station, download_dir=download_dir,
                                 out_dir=context.out_dir, origin=origin,
                                 tensor=moment_tensor(event, config), config=config)
        graph, inputs = _per_station("simulate", step, stations_in(download_dir / "stations"))

        def finish(result: Any) -> dict[str, Any]:
            # the analytical solution holds at every frequency; the sampling bounds it
            band = [0.0, 0.4 * config.simulate.sampling_rate]
            write_json(context.out_dir / SYNTHETICS_FILE,
                       {"solver": "embedded", "band_hz": band, "quantity": "DISP"})
            return _summary(result, {"band_hz": band})

        return StageWork(graph, inputs, finish)

    def build_preprocess(context: StageContext) -> StageWork:
        download_dir = context.stage_dir("download")
        simulate_dir = context.stage_dir("simulate")
        step = functools.partial(preprocess_station, download_dir=download_dir,
                                 simulate_dir=simulate_dir, out_dir=context.out_dir,
                                 hypo=hypocentre(read_event(download_dir), config),
                                 band=synthetic_band(simulate_dir), config=config)
        graph, inputs = _per_station("preprocess", step,
                                     stations_in(context.stage_dir("simulate"), ".mseed"))
        return StageWork(graph, inputs, _summary)

    def build_norm(context: StageContext) -> StageWork:
        preprocess_dir = context.stage_dir("preprocess")
        step = functools.partial(norm_station, preprocess_dir=preprocess_dir,
                                 out_dir=context.out_dir)
        stations = stations_in(preprocess_dir / "record", ".ACC.mseed")
        graph, inputs = _per_station("norm", step, stations)
        return StageWork(graph, inputs, _summary)

    def build_match(context: StageContext) -> StageWork:
        run_dir = context.run_dir
        stations = stations_in(context.stage_dir("preprocess") / "observed", ".ACC.mseed")
        graph = WorkflowGraph("ra-match")
        observed = StationStep("match", functools.partial(load_for_match, run_dir=run_dir,
                                                          kind="observed"), id="observed")
        synthetic = StationStep("match", functools.partial(load_for_match, run_dir=run_dir,
                                                           kind="synthetic"), id="synthetic")
        joiner, sink = MatchStations(), Collect(id="pairs")
        graph.connect(observed, "output", joiner, "observed")
        graph.connect(synthetic, "output", joiner, "synthetic")
        graph.connect(joiner, "output", sink, "input")

        def finish(result: Any) -> dict[str, Any]:
            pairs = sorted(result.output("pairs"), key=lambda r: r["station"])
            write_json(context.out_dir / "pairs.json", pairs)
            rejected = result.output("observed", "rejected") + result.output("synthetic",
                                                                             "rejected")
            unmatched = [{"station": p["station"], **u} for p in pairs for u in p["unmatched"]]
            return {"processed": [p["station"] for p in pairs if p["pairs"]],
                    "rejected": sorted(rejected, key=lambda r: r["station"]),
                    "unmatched": unmatched, "flags": []}

        return StageWork(graph, {observed: stations, synthetic: stations}, finish)

    def build_pgm(context: StageContext) -> StageWork:
        run_dir = context.run_dir
        event = event_info(read_event(context.stage_dir("download")))
        pairs = {p["station"]: p for p in
                 json.loads((context.stage_dir("match") / "pairs.json").read_text())}
        stations = sorted(s for s, p in pairs.items() if p["pairs"])
        infos = {s: station_info(station_inventory(context.stage_dir("download"), s), event)
                 for s in stations}
        step = functools.partial(pgm_station, run_dir=run_dir, pairs=pairs, infos=infos,
                                 config=config)
        graph, inputs = _per_station("pgm", step, stations)
        predictions: list[gmpe.Prediction] = []
        if config.gmpe.enabled and stations:
            earthquake = gmpe_earthquake(read_event(context.stage_dir("download")), config)
            predictions = gmpe.predict(
                earthquake, [gmpe.Station(s, infos[s]["latitude"], infos[s]["longitude"])
                             for s in stations], config.pgm.periods, config.gmpe)

        def finish(result: Any) -> dict[str, Any]:
            records = sorted(result.output("step", "output"), key=lambda r: r["station"])
            done = {r["station"] for r in records}
            rows = [row for r in records for row in r["rows"]]
            rows += gmpe_rows([p for p in predictions if p.station in done], infos)
            misfits = [m for r in records for m in r["misfits"]]
            residuals = gmpe_residuals(rows, predictions)
            write_json(context.out_dir / "pgm.json",
                       {"event": event, "rows": rows, "misfits": misfits,
                        "residuals": residuals})
            outputs.write_pgm_csv(context.out_dir / "pgm.csv", rows, misfits, residuals)
            return _summary(result, {"gmpe": config.gmpe.model if predictions else None})

        return StageWork(graph, inputs, finish)

    def build_geojson(context: StageContext) -> StageWork:
        def finish(result: Any) -> dict[str, Any]:
            pgm = json.loads((context.stage_dir("pgm") / "pgm.json").read_text())
            rejected = rejected_so_far(context.run_dir)
            outputs.write_stationlist(context.out_dir / "stationlist.json", pgm["event"],
                                      pgm["rows"], pgm["misfits"], rejected,
                                      pgm.get("residuals", []))
            return {"processed": sorted({r["station"] for r in pgm["rows"]}), "rejected": [],
                    "flags": []}

        return StageWork(None, finish=finish)

    def build_plot(context: StageContext) -> StageWork:
        pgm = json.loads((context.stage_dir("pgm") / "pgm.json").read_text())
        tasks: list[tuple[str, str]] = []
        if config.plot.maps:
            tasks += [("map", "pga"), ("map", "misfit")]
            if pgm.get("residuals"):
                tasks.append(("map", "residuals"))
        if config.plot.waveforms:
            tasks += [("waveforms", s) for s in sorted({r["station"] for r in pgm["rows"]})]
        step = functools.partial(plot_task, run_dir=context.run_dir, out_dir=context.out_dir,
                                 config=config)
        started = time.perf_counter()

        def finish(result: Any) -> dict[str, Any]:
            records = result.output("step", "output")
            failures = [{"plot": ":".join(r["station"]), "reason": r["reason"]}
                        for r in result.output("step", "rejected")]
            # a figure that cannot be drawn is no reason to reject a station: listed apart
            summary: dict[str, Any] = {
                "files": sorted(r["file"] for r in records),
                "plot_failures": sorted(failures, key=lambda r: r["plot"]),
                "rejected": [], "flags": []}
            # the HTML report of the run, figures embedded; the figures that failed listed in it
            mapping = dict(config.mappings).get("plot", ("simple", None))[0]
            this_stage = {"name": "plot", "status": "ran", "mapping": mapping,
                          "workers": result.summary.workers,
                          "seconds": time.perf_counter() - started, "summary": summary}
            try:
                html_report.write_report(context.out_dir / "report.html", context.run_dir,
                                    plot_dir=context.out_dir, config=config,
                                    stages=[this_stage], plot_failures=summary["plot_failures"])
                summary["report"] = "report.html"
            except Exception as error:  # the figures stand without the page: say why
                summary["report_error"] = f"{type(error).__name__}: {error}"
            return summary

        graph, inputs = _per_station("plot", step, tasks)
        return StageWork(graph, inputs, finish)

    download_inputs = tuple(
        Path(p) for p in (config.download.directory, config.download.event,
                          config.download.quakeml, config.download.stationxml)
        if p and "://" not in str(p)
    )
    common = _params(config.download)
    # a hand-made SPECFEM3D DATA folder brings its own source and receivers
    own_data = config.solver == "specfem" and config.specfem.data_dir is not None
    simulate_depends: tuple[str, ...] = () if own_data else ("download",)
    simulate_inputs = (Path(str(config.specfem.data_dir)),) if own_data else ()
    return Pipeline([
        Stage("download", build_download, params=common, inputs=download_inputs),
        Stage("simulate", build_simulate, depends=simulate_depends,
              params=_params(config.solver, config.source, config.simulate,
                             *((config.specfem.fingerprinted(),)
                               if config.solver == "specfem" else ())),
              inputs=simulate_inputs),
        Stage("preprocess", build_preprocess, depends=("download", "simulate"),
              params=_params(config.preprocess)),
        Stage("norm", build_norm, depends=("preprocess",), params=_params()),
        Stage("match", build_match, depends=("preprocess", "norm"), params=_params()),
        Stage("pgm", build_pgm, depends=("download", "preprocess", "norm", "match"),
              params=_params(config.pgm, config.gmpe, config.source)),
        Stage("geojson", build_geojson, depends=("download", "preprocess", "pgm"),
              params=_params()),
        Stage("plot", build_plot, depends=("preprocess", "pgm"), params=_params(config.plot)),
    ])


def rejected_so_far(run_dir: Path) -> list[dict[str, Any]]:
    """Stations rejected by any finished stage (from the stage markers)."""
    rejected: dict[str, dict[str, Any]] = {}
    for name in ("download", "simulate", "preprocess", "norm", "match", "pgm"):
        marker = run_dir / name / ".stage.json"
        if marker.exists():
            for record in json.loads(marker.read_text()).get("summary", {}).get("rejected", []):
                rejected.setdefault(record["station"], record)
    return sorted(rejected.values(), key=lambda r: r["station"])


#: Files copied to the top of the run directory while their stage's output is current (see
#: :func:`dare_cli.ra.runfolder.publish_outputs`: a stale copy is removed, never kept as new).
DELIVERABLES = RA_DELIVERABLES


def run_assessment(
    config: RAConfig,
    *,
    only: Sequence[str] | None = None,
    force: bool | Sequence[str] = False,
    observers: Any = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the stages (all, or ``only`` some) and write ``report.json`` in the run folder.

    Returns the report: stage reports, and per station whether it was processed, rejected
    (stage, reason, and ``category``: ``"quality"`` when its record failed a quality check,
    ``"error"`` for bad input) or flagged. ``ok`` is true when no stage failed, no station was
    rejected for an error, and at least one station was processed: rejections by quality
    checks are a routine outcome of processing real records, reported but not a failure.
    """
    run_dir = Path(config.out)
    pipeline = build_pipeline(config, log=log)
    # refused before anything is written: a folder that is not dare's, an implausible event
    check_run_folder(run_dir, stages=pipeline.names, files=RA_FILES, folders=RA_FOLDERS,
                     force=bool(force))
    if only is None or "download" in only:
        preflight_event(config.download)
    prepare_run_folder(run_dir, stages=pipeline.names, files=RA_FILES, folders=RA_FOLDERS,
                       force=bool(force))
    report = pipeline.run(run_dir, mappings=config.mappings, only=only, force=force,
                          observers=observers)
    outputs = publish_outputs(pipeline, report, run_dir, DELIVERABLES)
    stations: dict[str, dict[str, Any]] = {}
    for stage in report.stages:
        summary = stage.summary
        for station in summary.get("processed", []):
            stations.setdefault(station, {"status": "processed", "flags": []})
        for record in summary.get("rejected", []):
            entry = stations.setdefault(record["station"], {"flags": []})
            entry.update(status="rejected", stage=record.get("stage", stage.name),
                         reason=record["reason"], category=record.get("category", "error"))
        for flag in summary.get("flags", []):
            stations.setdefault(flag["station"], {"status": "processed", "flags": []})
            stations[flag["station"]]["flags"].append(flag["flag"])
    errors = [s for s in stations.values()
              if s.get("status") == "rejected" and s.get("category") != "quality"]
    processed = [s for s in stations.values() if s.get("status") == "processed"]
    document: dict[str, Any] = {
        "ok": report.ok and not errors and (bool(processed) or not stations),
        "config": str(config.source_file) if config.source_file else None,
        "stages": [stage.as_dict() for stage in report.stages],
        "stations": dict(sorted(stations.items())),
        "outputs": outputs,
    }
    write_json(run_dir / "report.json", document)
    if outputs.get("report.html", {}).get("status") == "current" and any(
            stage.status == "ran" for stage in report.stages):
        # the page at the top of the run shows every stage's timing (the plot stage's own copy
        # knows only the plot stage's)
        html_report.write_report(run_dir / "report.html", run_dir, config=config,
                                 stages=document["stages"])
    record_files(run_dir, ["report.json", *(n for n, o in outputs.items()
                                            if o["status"] == "current")],
                 removed=[n for n, o in outputs.items() if o["status"] != "current"])
    document["failed_stage"] = next(
        (stage for stage in report.stages if stage.status == "failed"), None
    )
    return document
