"""The match stage: observed and synthetic traces of each station paired by component."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from obspy import Stream

from dare_cli.ra.names import station_path
from dare_cli.ra.pes import MatchStations, StationStep
from dare_cli.ra.stages.common import read_station_stream, stations_in, write_json
from engine import WorkflowGraph
from engine.pipeline import StageContext, StageWork
from engine.sinks import Collect

__all__ = ["build", "load_for_match", "station_streams"]


def station_streams(run_dir: Path, kind: str, station: str, quantity: str) -> Stream:
    """Components and norms (where the station has them) of one station, kind and quantity."""
    stream = read_station_stream(run_dir / "preprocess" / kind, station, quantity)
    if station_path(run_dir / "norm" / kind, station, f".{quantity}.mseed").exists():
        stream += read_station_stream(run_dir / "norm" / kind, station, quantity)
    return stream


def load_for_match(station: str, *, run_dir: Path, kind: str) -> tuple[str, Stream]:
    """``(station, acceleration traces and norms)`` of one kind, for the match stage."""
    return station, station_streams(run_dir, kind, station, "ACC")


def build(context: StageContext) -> StageWork:
    """Both kinds loaded per station, joined by station; ``pairs.json`` of the pairs."""
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
