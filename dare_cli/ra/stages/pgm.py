"""The pgm stage: peak motions of the record and of both comparison copies, and misfits.

Rows of ``pgm.json``/``pgm.csv``: one per station, kind (observed, synthetic, gmpe), band
(``record``: the record as processed at its own rate; ``common``: the band observed and
synthetic share) and component; misfits ``log10(syn/obs)`` per metric in the common band.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from obspy import Stream

from dare_cli.ra import gmpe, outputs
from dare_cli.ra.config import RAConfig
from dare_cli.ra.errors import StationError
from dare_cli.ra.norm import NORM_CODES
from dare_cli.ra.pgm import misfit, psa_key, station_pgm
from dare_cli.ra.preprocess import QUANTITIES
from dare_cli.ra.stages.common import (
    event_info,
    per_station,
    read_event,
    read_station_stream,
    station_info,
    station_inventory,
    step_summary,
    write_json,
)
from dare_cli.ra.stages.predictions import gmpe_earthquake, gmpe_residuals, gmpe_rows
from engine.pipeline import StageContext, StageWork

__all__ = ["METRICS", "PGM_SOURCES", "build", "pgm_station"]

METRICS = ("pga", "pgv", "pgd")

#: Rows of the pgm stage: (kind, band, folder of the preprocess stage).
PGM_SOURCES = (("observed", "record", "record"), ("observed", "common", "observed"),
               ("synthetic", "common", "synthetic"))


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
    return {"station": station, "rows": rows,
            "misfits": _misfits(station, by_kind, periods)}


def _misfits(station: str, by_kind: Mapping[str, Mapping[str, Mapping[str, Any]]],
             periods: Sequence[float]) -> list[dict[str, Any]]:
    """``log10(syn/obs)`` of every metric both common-band rows of a component hold."""
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
    return misfits


def build(context: StageContext, *, config: RAConfig) -> StageWork:
    """Peak motions of every matched station, GMPE predictions, ``pgm.json`` and ``pgm.csv``."""
    run_dir = context.run_dir
    event = event_info(read_event(context.stage_dir("download")))
    pairs = {p["station"]: p for p in
             json.loads((context.stage_dir("match") / "pairs.json").read_text())}
    stations = sorted(s for s, p in pairs.items() if p["pairs"])
    infos = {s: station_info(station_inventory(context.stage_dir("download"), s), event)
             for s in stations}
    step = functools.partial(pgm_station, run_dir=run_dir, pairs=pairs, infos=infos,
                             config=config)
    graph, inputs = per_station("pgm", step, stations)
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
        return step_summary(result, {"gmpe": config.gmpe.model if predictions else None})

    return StageWork(graph, inputs, finish)
