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
renamed into place only when the stage succeeds. Each stage is a module of
:mod:`dare_cli.ra.stages`; this one declares them for :mod:`engine.pipeline` and runs them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import obspy.signal.invsim  # noqa: F401  (2 s to import: once here, not in every worker)

from dare_cli.ra import report as html_report
from dare_cli.ra.config import RAConfig
from dare_cli.ra.download import preflight_event
from dare_cli.ra.runfolder import (
    RA_DELIVERABLES,
    RA_FILES,
    RA_FOLDERS,
    check_run_folder,
    prepare_run_folder,
    publish_outputs,
    record_files,
)
from dare_cli.ra.stages import download, geojson, match, pgm, plot, preprocess, simulate
from dare_cli.ra.stages.common import stage_params, write_json
from engine.pipeline import Pipeline, Stage, StageReport

__all__ = ["DELIVERABLES", "build_pipeline", "run_assessment", "station_outcomes"]


def build_pipeline(config: RAConfig, *, log: Callable[[str], None] | None = None) -> Pipeline:
    """The eight stages of a Rapid Assessment configured by ``config``.

    ``log`` receives the lines of external programs (SPECFEM3D's logs), for the progress
    display.
    """
    download_inputs = tuple(
        Path(p) for p in (config.download.directory, config.download.event,
                          config.download.quakeml, config.download.stationxml)
        if p and "://" not in str(p)
    )
    # a hand-made SPECFEM3D DATA folder brings its own source and receivers
    own_data = config.solver == "specfem" and config.specfem.data_dir is not None
    simulate_depends: tuple[str, ...] = () if own_data else ("download",)
    simulate_inputs = (Path(str(config.specfem.data_dir)),) if own_data else ()
    specfem = (config.specfem.fingerprinted(),) if config.solver == "specfem" else ()
    return Pipeline([
        Stage("download", functools.partial(download.build, config=config),
              params=stage_params(config.download), inputs=download_inputs),
        Stage("simulate", functools.partial(simulate.build, config=config, log=log),
              depends=simulate_depends,
              params=stage_params(config.solver, config.source, config.simulate, *specfem),
              inputs=simulate_inputs),
        Stage("preprocess", functools.partial(preprocess.build, config=config),
              depends=("download", "simulate"), params=stage_params(config.preprocess)),
        Stage("norm", preprocess.build_norm, depends=("preprocess",), params=stage_params()),
        Stage("match", match.build, depends=("preprocess", "norm"), params=stage_params()),
        Stage("pgm", functools.partial(pgm.build, config=config),
              depends=("download", "preprocess", "norm", "match"),
              params=stage_params(config.pgm, config.gmpe, config.source)),
        Stage("geojson", geojson.build, depends=("download", "preprocess", "pgm"),
              params=stage_params()),
        Stage("plot", functools.partial(plot.build, config=config),
              depends=("preprocess", "pgm"), params=stage_params(config.plot)),
    ])


#: Files copied to the top of the run directory while their stage's output is current (see
#: :func:`dare_cli.ra.runfolder.publish_outputs`: a stale copy is removed, never kept as new).
DELIVERABLES = RA_DELIVERABLES


def station_outcomes(stages: Sequence[StageReport]) -> dict[str, dict[str, Any]]:
    """Per station, from the stage summaries: processed or rejected (where, why), its flags."""
    stations: dict[str, dict[str, Any]] = {}
    for stage in stages:
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
    return stations


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
    stations = station_outcomes(report.stages)
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
