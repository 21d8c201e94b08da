"""The plot stage: maps, waveform figures (one PE unit each) and the run's HTML report."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

from obspy import UTCDateTime

from dare_cli.ra import plots
from dare_cli.ra import report as html_report
from dare_cli.ra.config import RAConfig
from dare_cli.ra.names import station_path
from dare_cli.ra.stages.common import per_station, read_station_stream
from engine.pipeline import StageContext, StageWork

__all__ = ["build", "plot_task", "plot_tasks"]


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


def plot_tasks(pgm: dict[str, Any], config: RAConfig) -> list[tuple[str, str]]:
    """The figures to draw: the maps (residuals with a GMPE), a waveform figure per station."""
    tasks: list[tuple[str, str]] = []
    if config.plot.maps:
        tasks += [("map", "pga"), ("map", "misfit")]
        if pgm.get("residuals"):
            tasks.append(("map", "residuals"))
    if config.plot.waveforms:
        tasks += [("waveforms", s) for s in sorted({r["station"] for r in pgm["rows"]})]
    return tasks


def build(context: StageContext, *, config: RAConfig) -> StageWork:
    """Draw the figures, then write ``report.html`` with them (its failure only noted)."""
    pgm = json.loads((context.stage_dir("pgm") / "pgm.json").read_text())
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
                                     stages=[this_stage],
                                     plot_failures=summary["plot_failures"])
            summary["report"] = "report.html"
        except Exception as error:  # the figures stand without the page: say why
            summary["report_error"] = f"{type(error).__name__}: {error}"
        return summary

    graph, inputs = per_station("plot", step, plot_tasks(pgm, config))
    return StageWork(graph, inputs, finish)
