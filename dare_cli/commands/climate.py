"""``dare climate``: icclim climate indices computed tile by tile through the engine."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from dare_cli.commands.run import choose_mapping
from dare_cli.context import EXIT_FAILED, CLIState, exit_on_error, get_state, report_error
from dare_cli.errors import DareUsageError

app = typer.Typer(help="Climate indices (icclim) over netCDF, streamed in tiles.",
                  no_args_is_help=True)

# xclim redefines pint units on import and pint logs each as a warning: noise for our users.
logging.getLogger("pint.util").setLevel(logging.ERROR)

MappingOption = Annotated[
    str | None,
    typer.Option("--mapping", "-m", metavar="NAME[:N]",
                 help="Mapping of the computation, and N worker processes (default: simple, or "
                      "the file's \\[run] mapping)."),
]
WorkersOption = Annotated[int | None, typer.Option("--workers", "-n", min=1,
                                                   help="Worker processes (the N of --mapping "
                                                        "NAME:N).")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print the plan; compute nothing.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def parse_tile(text: str | None) -> dict[str, int] | None:
    """``lat=10,lon=10`` -> ``{"lat": 10, "lon": 10}``."""
    if not text:
        return None
    sizes: dict[str, int] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            sizes[name.strip()] = int(value)
        except ValueError:
            raise DareUsageError(f"--tile: expected DIM=SIZE[,DIM=SIZE], not {text!r}") from None
        if sizes[name.strip()] < 1:
            raise DareUsageError(f"--tile: size of {name.strip()!r} must be >= 1")
    return sizes


def _usage(error: Exception) -> DareUsageError:
    return DareUsageError(str(error))


def _execute(state: CLIState, job: Any, dry_run: bool, json_output: bool) -> None:
    from dare_cli.climate.errors import ClimateError, ClimateUsageError
    from dare_cli.climate.pipeline import plan_job, run_job
    from dare_cli.climate.remote import default_cache_dir, resolve_inputs
    from dare_cli.progress import RunReporter
    from engine.mappings import get_mapping

    get_mapping(job.mapping)  # an unknown mapping is a usage error listing the others
    try:
        local = resolve_inputs(list(job.inputs), default_cache_dir())
        plan = plan_job(job, local)
    except ClimateUsageError as error:
        raise _usage(error) from error
    except ClimateError as error:
        report_error(state, str(error), error)
        raise typer.Exit(EXIT_FAILED) from error
    if dry_run:
        description = plan.describe()
        if json_output:
            typer.echo(json.dumps(description, indent=2))
        else:
            for key, value in description.items():
                typer.echo(f"{key}: {value}")
        return
    reporter = RunReporter(state.stderr, live=state.show_progress)
    try:
        records = run_job(plan, observers=[reporter])
    except ClimateUsageError as error:
        raise _usage(error) from error
    except ClimateError as error:
        reporter.close()
        report_error(state, str(error), error)
        raise typer.Exit(EXIT_FAILED) from error
    finally:
        reporter.close()
    if json_output:
        typer.echo(json.dumps(records, indent=2))
    else:
        for record in records:
            typer.echo(record["output"])


@app.command("list")
def list_indices(json_output: JsonOption = False) -> None:
    """List every index icclim offers: its variables, parameters and definition.

    With --json: per index its name, group, category, definition, variables,
    parameters ({keyword: icclim's value}), percentile_based, needs_base_period, spell
    and reference.
    """
    from rich.table import Table

    from dare_cli.climate.indices import list_indices as available

    indices = [_info(info) for info in available()]
    if json_output:
        typer.echo(json.dumps(indices, indent=2, default=str))
        return
    table = Table(title=f"{len(indices)} icclim indices")
    for column in ("name", "group", "variables", "parameters", "description"):
        table.add_column(column, overflow="fold")
    for item in indices:
        table.add_row(item["name"], item["group"], ", ".join(item["variables"]) or "any",
                      parameters_text(item), item["definition"])
    from rich.console import Console

    Console().print(table)


def parameters_text(item: dict[str, Any]) -> str:
    """The parameters of an index as one cell: ``keyword: value; ...``, then the base period.

    >>> parameters_text({"parameters": {"threshold": "> 25 degree_Celsius", "out_unit": ""},
    ...                  "needs_base_period": False})
    'threshold: > 25 degree_Celsius; out_unit'
    """
    parts = [f"{key}: {value}" if value else key for key, value in item["parameters"].items()]
    if item.get("needs_base_period"):
        parts.append("base period (--base-period)")
    return "; ".join(parts)


def _info(info: Any) -> dict[str, Any]:
    """An ``IndexInfo`` as JSON data; its parameters as ``{keyword: value}``."""
    import dataclasses

    data = (dataclasses.asdict(info)
            if dataclasses.is_dataclass(info) and not isinstance(info, type) else dict(vars(info)))
    item = {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
    item["parameters"] = {str(key): value for key, value in data.get("parameters", ())}
    return item


@app.command("index")
def index(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="icclim index name, e.g. SU, TX90p, CDD.")],
    inputs: Annotated[list[str], typer.Option("--input", "-i", metavar="FILE_OR_URL",
                                              help="netCDF file, OPeNDAP URL or WebDAV path "
                                              "(repeatable).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="netCDF file to write.")],
    var: Annotated[list[str] | None, typer.Option("--var", help="Input variable(s).")] = None,
    slice_mode: Annotated[str, typer.Option("--slice-mode",
                                            help="year, month, DJF, JJA, ...")] = "year",
    time_range: Annotated[tuple[str, str] | None,
                          typer.Option("--time-range", metavar="START END")] = None,
    base_period: Annotated[tuple[str, str] | None,
                           typer.Option("--base-period", metavar="START END",
                                        help="Base period of percentile indices.")] = None,
    threshold: Annotated[list[str] | None,
                         typer.Option("--threshold", help="e.g. '> 25 degC' (repeatable).")]
    = None,
    out_unit: Annotated[str | None, typer.Option("--out-unit")] = None,
    mapping: MappingOption = None,
    workers: WorkersOption = None,
    tile: Annotated[str | None, typer.Option("--tile", metavar="DIM=N[,DIM=N]",
                                             help="Tile size, e.g. lat=10,lon=10.")] = None,
    stage_out: Annotated[str | None, typer.Option("--stage-out", metavar="WEBDAV_URL",
                                                  help="Upload the output there.")] = None,
    dry_run: DryRunOption = False,
    json_output: JsonOption = False,
) -> None:
    """Compute one index and write it as CF netCDF (identical to icclim's own output)."""
    from dare_cli.climate.compute import IndexRequest
    from dare_cli.climate.pipeline import IndexJob

    state = get_state(ctx)
    with exit_on_error(state):
        mapping_name, workers = choose_mapping(mapping, workers, None, None)
        request = IndexRequest(index=name, var_name=tuple(var or ()), slice_mode=slice_mode,
                               time_range=time_range, base_period=base_period,
                               threshold=tuple(threshold) if threshold else None,
                               out_unit=out_unit)
        job = IndexJob(inputs=tuple(inputs), requests=(request,), outputs=(output,),
                       tile=parse_tile(tile), mapping=mapping_name, workers=workers,
                       command=f"dare climate index {name}",
                       stage_out=(stage_out,) if stage_out else ())
        _execute(state, job, dry_run, json_output)


@app.command("run")
def run_config(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="TOML file with [run] and [[index]] tables.")],
    mapping: MappingOption = None,
    workers: WorkersOption = None,
    dry_run: DryRunOption = False,
    json_output: JsonOption = False,
) -> None:
    """Compute several indices over the same inputs, reading each tile once."""
    from dare_cli.climate.config import load_job
    from dare_cli.climate.errors import ClimateUsageError

    state = get_state(ctx)
    with exit_on_error(state):
        try:
            job = load_job(config)
        except ClimateUsageError as error:
            raise _usage(error) from error
        if mapping or workers:
            import dataclasses

            name, count = choose_mapping(mapping, workers, job.mapping, job.workers)
            job = dataclasses.replace(job, mapping=name, workers=count)
        _execute(state, job, dry_run, json_output)


@app.command("plot")
def plot(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="netCDF file written by 'dare climate index'.")],
    png: Annotated[Path, typer.Option("--png", help="PNG file to write.")],
    variable: Annotated[str | None, typer.Option("--var")] = None,
    time: Annotated[str | None, typer.Option("--time", help="Time step (date or number).")]
    = None,
) -> None:
    """Map an index (gridded data) or plot its time series (station data)."""
    state = get_state(ctx)
    with exit_on_error(state):
        import xarray as xr

        from dare_cli.climate.plots import plot_index

        try:
            dataset = xr.open_dataset(path)
        except (OSError, ValueError) as error:
            raise DareUsageError(f"cannot open {str(path)!r}: {error}") from error
        step: str | int | None = int(time) if time is not None and time.isdigit() else time
        try:
            written = plot_index(png, dataset, variable, step)
        except (KeyError, ValueError) as error:
            raise DareUsageError(str(error)) from error
        typer.echo(str(written))
