"""``dare ra``: the Rapid Assessment of an earthquake, whole (``run``) or stage by stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from dare_cli.context import EXIT_FAILED, CLIState, exit_on_error, get_state, report_error
from dare_cli.errors import DareUsageError
from dare_cli.progress import RunReporter

app = typer.Typer(help="Rapid Assessment of an earthquake: observed vs simulated ground motion.",
                  no_args_is_help=True)

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "ra" / "examples"

ConfigArgument = Annotated[
    Path | None,
    typer.Argument(metavar="[CONFIG]", help="TOML configuration of the run.", show_default=False),
]
ExampleOption = Annotated[
    str | None,
    typer.Option("--example", metavar="NAME",
                 help="Run a bundled example instead of CONFIG (see 'dare ra examples')."),
]
OutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help="Run directory (default: [run] out).")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Redo stages even if current.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


def examples() -> dict[str, Path]:
    """Bundled examples: ``{name: config file}``."""
    return {folder.name: config for folder in sorted(EXAMPLES_DIR.iterdir())
            if folder.is_dir() and (config := folder / f"{folder.name}.toml").exists()}


def _load(config: Path | None, example: str | None, out: Path | None,
          mappings: dict[str, tuple[str, int | None]]) -> Any:
    from dare_cli.ra.config import load_config
    from dare_cli.ra.errors import ConfigError

    if (config is None) == (example is None):
        raise DareUsageError("give a CONFIG file or --example NAME (one of them)")
    if example is not None:
        found = examples()
        if example not in found:
            raise DareUsageError(f"unknown example {example!r}; examples: {', '.join(found)}")
        config = found[example]
    try:
        loaded = load_config(config)
    except ConfigError as error:
        raise DareUsageError(str(error)) from error
    return loaded.with_overrides(out=out, mappings=mappings)


def _parse_mappings(values: list[str] | None) -> dict[str, tuple[str, int | None]]:
    from dare_cli.ra.config import parse_mapping
    from dare_cli.ra.errors import ConfigError

    parsed = {}
    for value in values or []:
        try:
            stage, choice = parse_mapping(value)
        except ConfigError as error:
            raise DareUsageError(str(error)) from error
        parsed[stage] = choice
    return parsed


def _check_mappings(mappings: dict[str, tuple[str, int | None]]) -> None:
    from engine.mappings import get_mapping

    for name, _ in mappings.values():
        get_mapping(name)  # MappingNotFound lists the installed ones


def _observers(state: CLIState) -> Any:
    def make(stage: Any) -> list[RunReporter]:
        if not state.quiet:
            state.stderr.print(f"[bold]{stage.name}[/bold]", highlight=False)
        return [RunReporter(state.stderr, live=state.show_progress)]
    return make


def _stations_table(report: dict[str, Any], run_dir: Path) -> Table:
    table = Table(title=f"Rapid Assessment: {run_dir}")
    for column in ("station", "status", "obs PGA %g", "syn PGA %g", "misfit PGA", "notes"):
        table.add_column(column, justify="right" if "PGA" in column else "left")
    peaks: dict[str, dict[str, float]] = {}
    pgm_file = run_dir / "pgm" / "pgm.json"
    if pgm_file.exists():
        pgm = json.loads(pgm_file.read_text())
        for row in pgm["rows"]:
            if row.get("component") == "maxh":
                peaks.setdefault(row["station"], {})[row["kind"]] = row["pga"] / 9.80665 * 100
        for item in pgm["misfits"]:
            if item["component"] == "maxh" and item["metric"] == "pga":
                peaks.setdefault(item["station"], {})["misfit"] = item["misfit"]
    for station, entry in report["stations"].items():
        values = peaks.get(station, {})
        flags = entry.get("flags", [])
        notes = entry.get("reason") or (
            flags[-1] + (f" (+{len(flags) - 1} more in report.json)" if len(flags) > 1 else "")
            if flags else "")
        if entry.get("stage") and entry.get("status") == "rejected":
            notes = f"{entry['stage']}: {notes}"
        table.add_row(station, entry.get("status", "?"),
                      *(f"{values[k]:.3g}" if k in values else "-"
                        for k in ("observed", "synthetic", "misfit")), notes)
    return table


def _finish(state: CLIState, report: dict[str, Any], run_dir: Path, json_output: bool) -> None:
    failed = report.pop("failed_stage", None)
    if json_output:
        typer.echo(json.dumps(report, indent=2, default=str))
    elif not state.quiet:
        typer.echo(f"run directory: {run_dir}")
        for name in ("report.json", "pgm.csv", "stationlist.json", "pga_map.png",
                     "misfit_map.png"):
            if (run_dir / name).exists():
                typer.echo(f"  {run_dir / name}")
    if not json_output and not state.quiet:
        state.stderr.print(_stations_table(report, run_dir))
    if failed is not None:
        report_error(state, f"stage {failed.name} failed: {failed.error}", failed.exception)
        raise typer.Exit(EXIT_FAILED)
    rejected = [s for s, e in report["stations"].items() if e.get("status") == "rejected"]
    if rejected:
        report_error(state, f"{len(rejected)} station(s) rejected: {', '.join(rejected)} "
                            f"(reasons in {run_dir / 'report.json'})")
        raise typer.Exit(EXIT_FAILED)


def _dry_run(state: CLIState, config: Any, only: list[str] | None) -> None:
    from dare_cli.ra.pipeline import build_pipeline

    pipeline = build_pipeline(config)
    run_dir = Path(config.out)
    table = Table(title=f"plan of {run_dir}")
    for column in ("stage", "mapping", "workers", "status"):
        table.add_column(column)
    for stage in pipeline.stages:
        if only is not None and stage.name not in only:
            continue
        mapping, workers = config.mappings.get(stage.name, ("simple", None))
        status = "current (skip)" if pipeline.is_current(stage, run_dir) else "to run"
        table.add_row(stage.name, mapping, str(workers or "auto"), status)
    typer.echo(f"config: {config.source_file}")
    typer.echo(f"run directory: {run_dir}")
    typer.echo(f"event: {config.download.quakeml or config.download.event_id}")
    typer.echo(f"waveforms: {config.download.source} {config.download.directory or ''}")
    state.stderr.print(table)


@app.command("run")
def run(
    ctx: typer.Context,
    config: ConfigArgument = None,
    example: ExampleOption = None,
    out: OutOption = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--mapping", "-m", metavar="STAGE=MAPPING[:N]",
                     help="Mapping (and workers) of a stage; repeatable."),
    ] = None,
    force: ForceOption = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; run nothing.")]
    = False,
    json_output: JsonOption = False,
) -> None:
    """Run every stage: download, simulate, preprocess, norm, match, pgm, geojson, plot.

    Stages whose inputs and parameters did not change since the last run are skipped.
    Exit codes: 0 ok, 1 a stage failed or a station was rejected, 2 usage error.
    """
    state = get_state(ctx)
    with exit_on_error(state):
        mappings = _parse_mappings(mapping)
        _check_mappings(mappings)
        loaded = _load(config, example, out, mappings)
        _check_mappings(dict(loaded.mappings))
        if dry_run:
            _dry_run(state, loaded, None)
            return
        from dare_cli.ra.pipeline import run_assessment

        report = run_assessment(loaded, force=force, observers=_observers(state))
        _finish(state, report, Path(loaded.out), json_output)


def _stage_command(stage: str, summary: str) -> None:
    def command(
        ctx: typer.Context,
        config: ConfigArgument = None,
        example: ExampleOption = None,
        out: OutOption = None,
        mapping: Annotated[
            str | None,
            typer.Option("--mapping", "-m", metavar="MAPPING[:N]",
                         help="Mapping (and workers) of this stage."),
        ] = None,
        force: ForceOption = False,
        json_output: JsonOption = False,
    ) -> None:
        state = get_state(ctx)
        with exit_on_error(state):
            mappings = _parse_mappings([f"{stage}={mapping}"] if mapping else None)
            _check_mappings(mappings)
            loaded = _load(config, example, out, mappings)
            from dare_cli.ra.pipeline import run_assessment

            report = run_assessment(loaded, only=[stage], force=force,
                                    observers=_observers(state))
            _finish(state, report, Path(loaded.out), json_output)

    command.__doc__ = (f"{summary}\n\nRuns only this stage; the stages before it must have "
                       "run (with the same --out).")
    app.command(stage)(command)


for _name, _summary in (
    ("download", "Fetch the event, stations and waveforms (FDSN, local folder or SDS)."),
    ("simulate", "Compute synthetic seismograms at the stations."),
    ("preprocess", "Process observed and synthetic traces alike (response, filter, window)."),
    ("norm", "Vector norms of three components and of the two horizontals."),
    ("match", "Pair each observed trace with its synthetic."),
    ("pgm", "Peak ground motion (PGA, PGV, PGD, PSA) and misfits; pgm.csv."),
    ("geojson", "ShakeMap-style station list (GeoJSON)."),
    ("plot", "Maps of PGA and misfit, and waveform plots."),
):
    _stage_command(_name, _summary)


@app.command("examples")
def list_examples(json_output: JsonOption = False) -> None:
    """List the bundled examples."""
    found = {name: str(path) for name, path in examples().items()}
    if json_output:
        typer.echo(json.dumps(found, indent=2))
    else:
        for name, path in found.items():
            typer.echo(f"{name}\t{path}")
